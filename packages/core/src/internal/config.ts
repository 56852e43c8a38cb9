import type { Backend, OptionalDataMethod } from '../backend.js';
import type { CallRunner } from '../backend-kit/call-runner.js';
import type { Codec } from '../codec.js';
import { ValidationError } from '../errors.js';
import { optionalDuration } from './validate.js';

/** A store's configuration after validation; immutable once configured. */
export interface ResolvedConfig {
  /** The head of the chain: proxies[0], or the backend itself. */
  readonly chain: Backend;
  readonly mangle: (key: string) => string;
  readonly locking: boolean;
  readonly lockTimeoutMs: number;
  readonly lockSafetyWindowMs: number;
  readonly lockWaitMs: number;
  readonly ttlMs: number | undefined;
  readonly codec: Codec;
  readonly operationTimeoutMs: number;
  readonly maxKeyBytes: number | undefined;
  readonly maxValueBytes: number | undefined;
  /** The backend's expiry granularity; above 1 ms, deletes first check the envelope's expiry. */
  readonly ttlResolutionMs: number;
  /**
   * Runs every backend call of the store under `operationTimeoutMs` — whatever the chain
   * declares, since any proxy may stall — with one timer for all calls in flight. The hot
   * data calls skip it for a promise a `CallRunner` no slower than the store already bounds.
   */
  readonly calls: CallRunner;
  /** Which optional data methods the backend beneath the proxies implements (the chain passes them on). */
  readonly dataMethods: Readonly<Record<OptionalDataMethod, boolean>>;
  /** True when keys are stored as given (`keyMangler: null`): a stored key is its user key. */
  readonly keysAsGiven: boolean;
  /** The constructor name of the backend beneath the proxies, for diagnostics messages. */
  readonly backendName: string;
  /** Whether diagnostics messages carry user keys (`traceKeys`). */
  readonly traceKeys: boolean;
}

/** What a lock needs from its store. */
export interface LockHost {
  readonly name: string;
  /** The configuration. @throws {NotConfiguredError} when unconfigured or closed. */
  resolved(): ResolvedConfig;
  /** True once the store was closed (its backend chain is gone, and every lease with it). */
  isClosed(): boolean;
  /** Validates and mangles a user key. @throws {InvalidKeyError} */
  storedKey(key: unknown): string;
  /** A lock of this store became active (`true`) or let go (`false`); the store gives back the active ones at close. */
  track(lock: { giveBackAtClose(): Promise<void> }, active: boolean): void;
}

/** Default lock lease when `lockTimeoutMs` is not configured. */
export const DEFAULT_LOCK_TIMEOUT_MS = 5000;
/** Default margin by which a lock counts as expired before its lease lapses. */
export const DEFAULT_LOCK_SAFETY_WINDOW_MS = 1000;
/** Default time `acquire`, `withLock` and `getOrCreate` wait for a lock. */
export const DEFAULT_LOCK_WAIT_MS = 10_000;
/** Default backstop deadline of every backend call (backends have shorter ones of their own). */
export const DEFAULT_OPERATION_TIMEOUT_MS = 15_000;

/**
 * The lease rule of locks, the one place that decides a lease length: for the store's
 * `lockTimeoutMs` (configure), a lock's own (getLock) and a renewal's (extend).
 *
 * The backend is asked for a lease of exactly `lockTimeoutMs` (`0`: it never lapses). The core
 * does not round it to the backend's `minLeaseMs` or `ttlResolutionMs`: backends round up
 * themselves, so the lease lasts at least `lockTimeoutMs`. The client trusts the lock for
 * {@link trustedForMs} of that; a lease no longer than the safety window would be untrusted
 * from the start, so it is refused.
 *
 * @returns `value` checked, or `fallback` when `value` is undefined.
 * @throws {ValidationError} for a negative or non-finite value, or one inside the safety window.
 */
export function leaseLengthMs(value: unknown, fallback: number, lockSafetyWindowMs: number): number {
  const lockTimeoutMs = optionalDuration('lockTimeoutMs', value) ?? fallback;
  if (lockTimeoutMs !== 0 && lockTimeoutMs <= lockSafetyWindowMs) {
    throw new ValidationError(
      `lockTimeoutMs (${lockTimeoutMs}) must be 0 or exceed the store's lockSafetyWindowMs (${lockSafetyWindowMs}).`,
    );
  }
  return lockTimeoutMs;
}

/**
 * How long after its start the client trusts a lease of `lockTimeoutMs` (see
 * {@link leaseLengthMs}): the lease minus the safety window; `Infinity` for a lease that never
 * lapses. A lock turns `expired` after it, and auto-extension renews within it.
 */
export function trustedForMs(lockTimeoutMs: number, lockSafetyWindowMs: number): number {
  return lockTimeoutMs === 0 ? Infinity : lockTimeoutMs - lockSafetyWindowMs;
}
