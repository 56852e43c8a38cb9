export type {
  AcquireLockOptions,
  Backend,
  BackendBatchWriteOptions,
  BackendCapabilities,
  BackendDeleteOptions,
  BackendWriteOptions,
  DeleteOutcome,
  Lease,
  LockingBackend,
  LockScope,
  StoredValue,
  WriteOutcome,
} from './backend.js';
export { hasOwnLocks } from './backend.js';
export { decodeWith, encodeWith, jsonCodec, v8Codec, type Codec } from './codec.js';
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
  type GetOrCreateOptions,
  type ProxyBackendClass,
  type SetManyOptions,
  type SetOptions,
  type WithLockOptions,
} from './key-value-store.js';
export { KeyValueStoreLock, type AcquireOptions, type LockOptions } from './key-value-store-lock.js';
export { LocalLockTable } from './local-lock-table.js';
export { ProxyBackend } from './proxy-backend.js';
export { getKeyValueStore, registerBackend, type BackendFactory } from './registry.js';
