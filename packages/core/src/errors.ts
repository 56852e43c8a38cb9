/**
 * Every error latchkey throws is a {@link LatchkeyError} with a stable `code`. Driver and
 * codec errors never escape unwrapped: they travel as `cause`.
 *
 * @packageDocumentation
 */

/** The stable machine-readable codes of latchkey errors. */
export type LatchkeyErrorCode =
  | 'NOT_FOUND'
  | 'LOCK_TIMEOUT'
  | 'LOCK_KEY_MISMATCH'
  | 'LOCK_NOT_ACTIVE'
  | 'LOCK_ACQUIRE_TIMEOUT'
  | 'ALREADY_CONFIGURED'
  | 'NOT_CONFIGURED'
  | 'VALIDATION'
  | 'INVALID_KEY'
  | 'VALUE_TOO_LARGE'
  | 'SERIALIZATION'
  | 'BACKEND_UNAVAILABLE'
  | 'BACKEND_TIMEOUT'
  | 'BACKEND_ERROR'
  | 'BACKEND_CLOSED'
  | 'NOT_SUPPORTED';

/** Options every latchkey error accepts. */
export interface LatchkeyErrorOptions {
  /** The underlying error (driver, codec, abort reason). */
  readonly cause?: unknown;
}

/** Base class of every error latchkey throws. Test with `instanceof` or by `code`. */
export class LatchkeyError extends Error {
  /** Stable code; safe to switch on across versions. */
  readonly code: LatchkeyErrorCode;

  constructor(code: LatchkeyErrorCode, message: string, options?: LatchkeyErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.name = new.target.name;
  }
}

function describeTarget(target: string | readonly string[]): string {
  return typeof target === 'string' ? target : target.join(', ');
}

/** A key (or, from `getMany`, every missing key in input order) is missing or expired. */
export class NotFoundError extends LatchkeyError {
  /** The missing key, or for `getMany` the list of all missing keys in input order. */
  readonly target: string | string[];

  constructor(target: string | string[], options?: LatchkeyErrorOptions) {
    super('NOT_FOUND', `Could not find: ${describeTarget(target)}.`, options);
    this.target = target;
  }
}

/**
 * A write or delete under a lock that has expired on the client, or that the backend found
 * lapsed or held by someone else. Nothing was written.
 */
export class LockTimeoutError extends LatchkeyError {
  /** The key the lock was for. */
  readonly target: string;

  constructor(target: string, options?: LatchkeyErrorOptions) {
    super('LOCK_TIMEOUT', `Lock Timeout occurred for key, ${target}`, options);
    this.target = target;
  }
}

/** A write or delete was given a lock for a different key. */
export class LockKeyMismatchError extends LatchkeyError {
  /** The key written. */
  readonly key: string;
  /** The key the lock is for. */
  readonly lockKey: string;

  constructor(key: string, lockKey: string) {
    super('LOCK_KEY_MISMATCH', `Lock is for key "${lockKey}", not for "${key}".`);
    this.key = key;
    this.lockKey = lockKey;
  }
}

/** A write or delete was given a lock that was never acquired or was already released. */
export class LockNotActiveError extends LatchkeyError {
  /** The key the lock is for. */
  readonly target: string;

  constructor(target: string) {
    super('LOCK_NOT_ACTIVE', `Lock for key "${target}" is not active (never acquired, or released).`);
    this.target = target;
  }
}

/** `acquire` waited its whole `waitMs` without getting the lock. */
export class LockAcquireTimeoutError extends LatchkeyError {
  /** The key the lock is for. */
  readonly target: string;
  /** How long the caller was willing to wait. */
  readonly waitMs: number;

  constructor(target: string, waitMs: number, options?: LatchkeyErrorOptions) {
    super('LOCK_ACQUIRE_TIMEOUT', `Could not acquire the lock for key "${target}" within ${waitMs} ms.`, options);
    this.target = target;
    this.waitMs = waitMs;
  }
}

/** `configure` was called on a store that is already configured. */
export class AlreadyConfiguredError extends LatchkeyError {
  constructor(storeName: string) {
    super('ALREADY_CONFIGURED', `KeyValueStore "${storeName}" is already configured.`);
  }
}

/** A data or lock call reached a store that is not configured (or has been closed). */
export class NotConfiguredError extends LatchkeyError {
  constructor(storeName: string, detail = 'is not configured; call configure() first') {
    super('NOT_CONFIGURED', `KeyValueStore "${storeName}" ${detail}.`);
  }
}

/** An option or argument is invalid. Raised before any I/O. */
export class ValidationError extends LatchkeyError {
  constructor(message: string, options?: LatchkeyErrorOptions) {
    super('VALIDATION', message, options);
  }
}

/** A key is not a non-empty string, or the backend cannot store it. Raised before any I/O. */
export class InvalidKeyError extends LatchkeyError {
  /** The offending key, as given. */
  readonly key: unknown;

  constructor(key: unknown, reason: string, options?: LatchkeyErrorOptions) {
    super('INVALID_KEY', `Invalid key ${describeKey(key)}: ${reason}.`, options);
    this.key = key;
  }
}

function describeKey(key: unknown): string {
  if (typeof key === 'string') return JSON.stringify(key.length > 80 ? `${key.slice(0, 80)}…` : key);
  if (typeof key === 'symbol') return key.toString();
  if (typeof key === 'object' && key !== null) return `(${Array.isArray(key) ? 'array' : 'object'})`;
  return `(${typeof key}) ${String(key)}`;
}

/** An encoded value is larger than the backend accepts. Raised before any I/O. */
export class ValueTooLargeError extends LatchkeyError {
  /** Encoded size in bytes. */
  readonly size: number;
  /** The backend's limit in bytes (values must be smaller than or equal to it). */
  readonly limit: number;

  constructor(size: number, limit: number, key?: string) {
    super(
      'VALUE_TOO_LARGE',
      `Value ${key === undefined ? '' : `for key "${key}" `}is ${size} bytes encoded; the backend accepts at most ${limit}.`,
    );
    this.size = size;
    this.limit = limit;
  }
}

/** A value cannot be encoded, or stored bytes cannot be decoded. */
export class SerializationError extends LatchkeyError {
  constructor(message: string, options?: LatchkeyErrorOptions) {
    super('SERIALIZATION', message, options);
  }
}

/**
 * The backend's server could not be reached, or the connection was lost before the answer.
 * In the first case the operation did not happen; in the second a write may have happened
 * (a lease-conditional write is still checked against its lease on the server).
 */
export class BackendUnavailableError extends LatchkeyError {
  constructor(message: string, options?: LatchkeyErrorOptions) {
    super('BACKEND_UNAVAILABLE', message, options);
  }
}

/** The operation's deadline passed. A write may or may not have happened. */
export class BackendTimeoutError extends LatchkeyError {
  /** The deadline that passed, in milliseconds. */
  readonly timeoutMs: number;

  constructor(message: string, timeoutMs: number, options?: LatchkeyErrorOptions) {
    super('BACKEND_TIMEOUT', message, options);
    this.timeoutMs = timeoutMs;
  }
}

/**
 * The backend failed in a way that is neither unavailability nor a timeout (for example the
 * server rejected a command). The driver's error is the `cause`.
 */
export class BackendError extends LatchkeyError {
  constructor(message: string, options?: LatchkeyErrorOptions) {
    super('BACKEND_ERROR', message, options);
  }
}

/**
 * The backend (or the store over it) was closed: every call made after `close()` rejects with
 * this, and so does every lock wait that `close()` interrupted. Nothing was sent to the server.
 * Not retryable on the same object: configure a new store or build a new backend.
 */
export class BackendClosedError extends LatchkeyError {
  constructor(message: string, options?: LatchkeyErrorOptions) {
    super('BACKEND_CLOSED', message, options);
  }
}

/**
 * The backend cannot do what was asked: `keys()` over a backend that cannot list its keys
 * (memcached), or `clear()` over one that can neither clear nor list. Raised before any I/O;
 * retrying cannot help.
 */
export class NotSupportedError extends LatchkeyError {
  /** The store operation that is not supported (`'keys'`, `'clear'`). */
  readonly operation: string;

  constructor(operation: string, message: string, options?: LatchkeyErrorOptions) {
    super('NOT_SUPPORTED', message, options);
    this.operation = operation;
  }
}
