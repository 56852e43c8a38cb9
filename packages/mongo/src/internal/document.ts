import { Binary, Long, type Document } from 'mongodb';
import { InvalidKeyError, checkStoredEntries, checkStoredKey, checkStoredKeys, type StoredValue } from '@latchkey/core';

/**
 * The document of one stored key:
 *
 * ```
 * { _id: storedKey, v?: Binary, exp?: Date, lock?: { token, expiresAt: Date }, fence?: Int64, purgeable?: true }
 * ```
 *
 * - `v`/`exp`: the value and its absolute expiry. A document without `v` holds no data (it may
 *   exist only for its lock or fence).
 * - `lock`/`fence`: the lease and the per-key fencing counter. Once a key has been locked its
 *   document keeps `fence` for good: data deletes unset `v`/`exp` instead of removing it.
 * - `purgeable: true`: set only when a data write creates the document (and only by a backend
 *   that keeps the TTL index), removed by the first lock acquire. The TTL index is partial on
 *   it, so the TTL monitor never removes a document that holds a lock or a fence.
 */
export const FIELD = {
  id: '_id',
  value: 'v',
  expiresAt: 'exp',
  lock: 'lock',
  lockToken: 'lock.token',
  lockExpiresAt: 'lock.expiresAt',
  fence: 'fence',
  purgeable: 'purgeable',
} as const;

/** BSON's maximum document size (16 MiB). */
export const MAX_BSON_DOCUMENT_BYTES = 16 * 1024 * 1024;
/** Largest stored key: leaves room in the 16 MiB document and command limits. */
export const MAX_KEY_BYTES = 16 * 1024;
/** Largest value: 16 MiB minus room for the key and the other fields of the document and command. */
export const MAX_VALUE_BYTES = MAX_BSON_DOCUMENT_BYTES - 64 * 1024;
/** Lease expiry of locks that never lapse (`leaseMs: 0`): the last millisecond of year 9999. */
export const NEVER = new Date(Date.UTC(9999, 11, 31, 23, 59, 59, 999));
/** `$inc` operand of the fence: always an Int64, so the counter never overflows an Int32. */
export const ONE = Long.fromNumber(1);

/**
 * @throws {InvalidKeyError} unless `key` is a non-empty, well-formed string of at most
 * {@link MAX_KEY_BYTES} UTF-8 bytes. Lone surrogates are refused because BSON stores UTF-8:
 * two different such keys would collapse into the same `_id`.
 */
export function checkKey(key: unknown): asserts key is string {
  checkStoredKey(key, MAX_KEY_BYTES);
  checkWellFormed(key);
}

/** {@link checkKey} for each of `keys`. @throws {ValidationError} when it is not an array. */
export function checkKeys(keys: unknown): asserts keys is readonly string[] {
  checkStoredKeys(keys, MAX_KEY_BYTES);
  for (const key of keys) checkWellFormed(key);
}

/**
 * Asserts `entries` are `[key, value]` pairs of keys passing {@link checkKey} and values of at
 * most {@link MAX_VALUE_BYTES}.
 * @throws {ValidationError | InvalidKeyError | ValueTooLargeError}
 */
export function checkEntries(entries: unknown): asserts entries is readonly (readonly [string, StoredValue])[] {
  checkStoredEntries(entries, MAX_VALUE_BYTES, MAX_KEY_BYTES);
  for (const [key] of entries) checkWellFormed(key);
}

function checkWellFormed(key: string): void {
  if (!key.isWellFormed()) throw new InvalidKeyError(key, 'keys must be well-formed Unicode (BSON cannot store lone surrogates)');
}

/**
 * The filter for one key. `checkKey` guarantees a string, and a string is only ever matched as
 * a value, never read as an operator or a field path, whatever it looks like (`$where`, `a.b`,
 * `{"$ne":1}`): only an object in that place could be an operator. Plain equality rather than
 * `{ $eq: key }` because FerretDB 1.x looks documents up by `_id` only for the plain form (the
 * `$eq` form scanned the collection: 0.34× the raw driver's `findOne`, measured).
 */
export function idFilter(key: string): Document {
  checkKey(key);
  return { [FIELD.id]: key };
}

/** The filter for a set of keys (`$in` takes values only; strings are never operators there). */
export function idsFilter(keys: readonly string[]): Document {
  checkKeys(keys);
  return { [FIELD.id]: { $in: [...keys] } };
}

/** Matches documents that hold a value which has not expired at `now`. */
export function liveValueFilter(now: Date): Document {
  return {
    [FIELD.value]: { $exists: true },
    $or: [{ [FIELD.expiresAt]: null }, { [FIELD.expiresAt]: { $gt: now } }],
  };
}

/** Matches the document of `key` while `token`'s lease on it is unexpired at `now`. */
export function leaseFilter(key: string, token: string, now: Date): Document {
  return { ...idFilter(key), [FIELD.lockToken]: { $eq: token }, [FIELD.lockExpiresAt]: { $gt: now } };
}

/** Matches the document of `key` when its lock is free or lapsed at `now`. */
export function freeLockFilter(key: string, now: Date): Document {
  return { ...idFilter(key), $or: [{ [FIELD.lock]: null }, { [FIELD.lockExpiresAt]: { $lte: now } }] };
}

/** Matches documents that have never held a lock (and so may be removed whole). */
export const UNFENCED: Document = Object.freeze({ [FIELD.fence]: { $exists: false } });
/** Matches documents that keep a fence counter (and so must never be removed). */
export const FENCED: Document = Object.freeze({ [FIELD.fence]: { $exists: true } });

/**
 * The update that stores `value` with its expiry (`$unset`s an old expiry when there is none).
 * It holds a copy of the bytes: the driver serialises the command later, and the caller may
 * change its buffer as soon as the call has been made.
 */
export function valueUpdate(value: Uint8Array, expiresAt: number | undefined): Document {
  const set: Document = { [FIELD.value]: new Binary(new Uint8Array(value)) };
  if (expiresAt === undefined) return { $set: set, $unset: { [FIELD.expiresAt]: '' } };
  set[FIELD.expiresAt] = new Date(expiresAt);
  return { $set: set };
}

/** The update that removes a value and its expiry but keeps the lock and fence. */
export const CLEAR_VALUE: Document = Object.freeze({ $unset: { [FIELD.value]: '', [FIELD.expiresAt]: '' } });

/** True when `doc` holds a value that has not expired at `now` (the same rule as {@link liveValueFilter}). */
export function isLive(doc: Document, now: number): boolean {
  if (doc[FIELD.value] === undefined || doc[FIELD.value] === null) return false;
  const exp: unknown = doc[FIELD.expiresAt];
  return exp === undefined || exp === null || (exp instanceof Date && exp.getTime() > now);
}

/** The bytes of a stored value (a BSON Binary, or a Buffer when the client promotes buffers). */
export function valueBytes(stored: unknown): Uint8Array | undefined {
  if (stored instanceof Uint8Array) return stored;
  if (stored instanceof Binary) return stored.buffer.subarray(0, stored.position);
  return undefined;
}

/** The fence counter of a document as a bigint (Int64 arrives as bigint, Long or number). */
export function fenceOf(doc: Document): bigint {
  const fence: unknown = doc[FIELD.fence];
  if (typeof fence === 'bigint') return fence;
  if (typeof fence === 'number' && Number.isSafeInteger(fence)) return BigInt(fence);
  if (fence instanceof Long) return BigInt(fence.toString());
  throw new TypeError(`the document has no valid fence counter (got ${typeof fence})`);
}

/**
 * Splits `keys` into chunks whose UTF-8 sizes add up to at most `maxBytes` each, so a huge
 * batch never builds a command over the 16 MiB limit. Almost every batch is one chunk.
 */
export function chunkByBytes(keys: readonly string[], maxBytes: number): string[][] {
  const chunks: string[][] = [];
  let current: string[] = [];
  let size = 0;
  for (const key of keys) {
    const bytes = Buffer.byteLength(key, 'utf8') + 16;
    if (current.length > 0 && size + bytes > maxBytes) {
      chunks.push(current);
      current = [];
      size = 0;
    }
    current.push(key);
    size += bytes;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}
