/**
 * Input guards every backend needs, with one answer per kind of bad input on every backend:
 * the same error class and the same wording, raised before any I/O.
 */

import type { AcquireLockOptions, Lease, StoredValue } from '../backend.js';
import { InvalidKeyError, ValidationError, ValueTooLargeError } from '../errors.js';

const utf8 = new TextEncoder();

/**
 * Asserts `key` is a stored key a backend can take: a non-empty string, and at most
 * `maxKeyBytes` UTF-8 bytes when a bound is given.
 * @throws {InvalidKeyError} otherwise.
 */
export function checkStoredKey(key: unknown, maxKeyBytes?: number): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) throw new InvalidKeyError(key, 'backend keys must be non-empty strings');
  // A UTF-8 byte is at most one UTF-16 unit's worth of length, so short keys skip the count.
  if (maxKeyBytes !== undefined && key.length * 3 > maxKeyBytes && utf8.encode(key).byteLength > maxKeyBytes) {
    throw new InvalidKeyError(key, `the backend accepts keys of at most ${maxKeyBytes} UTF-8 bytes`);
  }
}

/**
 * Asserts `keys` is an array of stored keys ({@link checkStoredKey} for each).
 * @throws {ValidationError} when it is not an array; {@link InvalidKeyError} for a bad key.
 */
export function checkStoredKeys(keys: unknown, maxKeyBytes?: number): asserts keys is readonly string[] {
  if (!Array.isArray(keys)) throw new ValidationError(`keys must be an array, got ${typeName(keys)}.`);
  for (const key of keys) checkStoredKey(key, maxKeyBytes);
}

/**
 * Asserts `value` is encoded bytes of at most `maxValueBytes`.
 * @throws {ValidationError} when it is not a `Uint8Array`; {@link ValueTooLargeError} when too large.
 */
export function checkStoredValue(value: unknown, maxValueBytes: number | undefined, key?: string): asserts value is StoredValue {
  if (!(value instanceof Uint8Array)) throw new ValidationError(`backends store Uint8Array values only, got ${typeName(value)}.`);
  if (maxValueBytes !== undefined && value.byteLength > maxValueBytes) throw new ValueTooLargeError(value.byteLength, maxValueBytes, key);
}

/**
 * Asserts `entries` is an array of `[key, value]` pairs, each passing {@link checkStoredKey}
 * and {@link checkStoredValue}.
 * @throws {ValidationError} | {@link InvalidKeyError} | {@link ValueTooLargeError}
 */
export function checkStoredEntries(
  entries: unknown,
  maxValueBytes: number | undefined,
  maxKeyBytes?: number,
): asserts entries is readonly (readonly [string, StoredValue])[] {
  if (!Array.isArray(entries)) throw new ValidationError(`entries must be an array of [key, value] pairs, got ${typeName(entries)}.`);
  for (const entry of entries) {
    if (!Array.isArray(entry)) throw new ValidationError(`entries must be [key, value] pairs, got ${typeName(entry)}.`);
    const [key, value] = entry as unknown[];
    checkStoredKey(key, maxKeyBytes);
    checkStoredValue(value, maxValueBytes, key);
  }
}

/**
 * Asserts `lease` has the shape of a {@link Lease}: an object with a non-empty string `key`
 * and `token` and a bigint `fencingToken`. This is the one answer to a malformed lease, in
 * `releaseLock`, `extendLock` and lease-conditional writes alike. (A well-formed lease that no
 * longer holds its key is not malformed: that is `false` or `'lease-lost'`.)
 * @throws {ValidationError} otherwise.
 */
export function checkLease(lease: unknown): asserts lease is Lease {
  const candidate = lease as Partial<Record<keyof Lease, unknown>> | null;
  if (
    typeof candidate !== 'object' ||
    candidate === null ||
    typeof candidate.key !== 'string' ||
    candidate.key.length === 0 ||
    typeof candidate.token !== 'string' ||
    candidate.token.length === 0 ||
    typeof candidate.fencingToken !== 'bigint'
  ) {
    throw new ValidationError(`not a lease: expected { key, token, fencingToken } as returned by acquireLock, got ${typeName(lease)}.`);
  }
}

/**
 * Asserts `value` is a duration in ms: a finite number `>= 0` (or `Infinity` too, with
 * `allowInfinity`).
 * @throws {ValidationError} naming `name` otherwise.
 */
export function checkDuration(name: string, value: unknown, options?: { readonly allowInfinity?: boolean }): asserts value is number {
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0 || (value === Infinity && options?.allowInfinity !== true)) {
    throw new ValidationError(`${name} must be a ${options?.allowInfinity === true ? '' : 'finite '}number >= 0, got ${typeName(value)}.`);
  }
}

/**
 * Asserts `expiresAt` is absent or epoch milliseconds (`Infinity`: never expires). An expiry
 * already in the past is valid: the write then leaves nothing readable (see `backend.ts`).
 * @throws {ValidationError} otherwise.
 */
// Stryker disable next-line BlockStatement: the Backend contract does not require a backend to reject a malformed expiresAt (the store never passes one, and MongoBackend does not check it), so no conformance check may ask for it.
export function checkExpiresAt(expiresAt: unknown): asserts expiresAt is number | undefined {
  if (expiresAt === undefined) return;
  // Stryker disable next-line LogicalOperator,BlockStatement: the Backend contract does not require a backend to reject a malformed expiresAt (the store never passes one, and MongoBackend does not check it), so no conformance check may ask for it.
  if (typeof expiresAt !== 'number' || Number.isNaN(expiresAt)) {
    // Stryker disable next-line StringLiteral: the Backend contract does not require a backend to reject a malformed expiresAt (the store never passes one, and MongoBackend does not check it), so no conformance check may ask for it.
    throw new ValidationError(`expiresAt must be epoch milliseconds, got ${typeName(expiresAt)}.`);
  }
}

/**
 * Asserts `options` are {@link AcquireLockOptions}: `leaseMs` finite `>= 0`, `waitMs` `>= 0`
 * (`Infinity` allowed: wait until won, aborted or closed), `signal` absent or an `AbortSignal`.
 * @throws {ValidationError} otherwise.
 */
export function checkAcquireOptions(options: unknown): asserts options is AcquireLockOptions {
  if (typeof options !== 'object' || options === null)
    throw new ValidationError(`acquireLock options must be an object, got ${typeName(options)}.`);
  const { leaseMs, waitMs, signal } = options as Record<string, unknown>;
  checkDuration('leaseMs', leaseMs);
  checkDuration('waitMs', waitMs, { allowInfinity: true });
  if (signal !== undefined && !(signal instanceof AbortSignal))
    throw new ValidationError(`signal must be an AbortSignal, got ${typeName(signal)}.`);
}

/** A short description of a value's type for error messages. */
export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'an object';
  return typeof value;
}
