export type {
  AcquireLockOptions,
  Backend,
  BackendBatchWriteOptions,
  BackendCapabilities,
  BackendCompareAndSetOptions,
  BackendDeleteOptions,
  DataMethodProxy,
  BackendWriteOptions,
  DeleteOutcome,
  Lease,
  LockingBackend,
  LockScope,
  OptionalDataMethod,
  StoredValue,
  WriteOutcome,
} from './backend.js';
export { hasDataMethod, hasOwnLocks } from './backend.js';
export { decodeWith, encodeWith, jsonCodec, taggedCodec, v8Codec, type Codec } from './codec.js';
export {
  AlreadyConfiguredError,
  BackendClosedError,
  BackendError,
  BackendTimeoutError,
  BackendUnavailableError,
  InvalidKeyError,
  LatchkeyError,
  LockAcquireTimeoutError,
  LockKeyMismatchError,
  LockNotActiveError,
  LockTimeoutError,
  NotConfiguredError,
  NotFoundError,
  NotSupportedError,
  SerializationError,
  ValidationError,
  ValueTooLargeError,
  type LatchkeyErrorCode,
  type LatchkeyErrorOptions,
} from './errors.js';
export { lengthConditionalMangler, sha1KeyMangler, type KeyMangler } from './key-mangler.js';
export {
  KeyValueStore,
  type ConfigureOptions,
  type DeleteOptions,
  type GetManyOptions,
  type GetOrCreateOptions,
  type ProxyBackendClass,
  type SetManyEntry,
  type SetManyEntryOptions,
  type SetManyOptions,
  type SetOptions,
  type WithLockOptions,
} from './key-value-store.js';
export { KeyValueStoreLock, type AcquireOptions, type LockOptions } from './key-value-store-lock.js';
export { LocalLockTable } from './local-lock-table.js';
export { ProxyBackend } from './proxy-backend.js';
export { getKeyValueStore, registerBackend, type BackendFactory } from './registry.js';
export {
  LOCK_ACQUIRE_CHANNEL,
  LOCK_RELEASE_CHANNEL,
  lockAcquireChannel,
  lockReleaseChannel,
  STORE_OPERATION_CHANNEL,
  storeOperationChannel,
  type LatchkeyTraceSubscribers,
  type LatchkeyTracingChannel,
  type LockAcquireMessage,
  type LockAcquireOperation,
  type LockAcquireOutcome,
  type LockReleaseMessage,
  type StoreOperation,
  type StoreOperationMessage,
  type StoreOperationOutcome,
} from './tracing.js';

// The backend kit: plumbing for backend authors (see "Writing a backend" in the README).
export {
  CallRunner,
  withDeadline,
  type Call,
  type CallInfo,
  type CallRunnerOptions,
  type ConnectionState,
  type ErrorMapper,
  type RunOptions,
} from './backend-kit/call-runner.js';
export {
  checkAcquireOptions,
  checkDuration,
  checkExpiresAt,
  checkLease,
  checkStoredEntries,
  checkStoredKey,
  checkStoredKeys,
  checkStoredValue,
} from './backend-kit/guards.js';
export { LockWaiters, type AttemptOutcome, type LockProtocol, type LockWaitersOptions } from './backend-kit/lock-waiters.js';
export {
  ReleaseListener,
  type ReleaseConnection,
  type ReleaseEvents,
  type ReleaseListenerOptions,
  type ReleaseTarget,
} from './backend-kit/release-listener.js';
export {
  backoffRetry,
  wakeUpRetry,
  type BackoffRetryOptions,
  type RetryContext,
  type RetryPolicy,
  type WakeUpRetryOptions,
} from './backend-kit/retry-policy.js';
export { GIVE_BACK_FAILED_WARNING, reportGiveBackFailure } from './backend-kit/warnings.js';
export { MAX_TIMER_MS, timerDelay } from './internal/timers.js';
