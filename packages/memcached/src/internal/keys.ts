import { createHash } from 'node:crypto';
import type { KeyMangler } from '@latchkey/core';

/** memcached's key length limit, in bytes. */
export const MAX_KEY_BYTES = 250;

/** The longest `keyPrefix` accepted (leaves room for the namespaces and a hashed key). */
export const MAX_PREFIX_BYTES = 128;

/** Printable ASCII without space: the bytes memcached accepts in keys on every protocol. */
const PLAIN = /^[\x21-\x7e]+$/;

/** Marks a key the backend's {@link KeyScheme.mangler} hashed. Plain keys never start with it. */
export const MANGLED_MARK = '#';

/**
 * Everything the backend itself names starts with `~` after the prefix, and no data key that
 * is stored as given does:
 * - `~h…` a key that could not be stored as given (hashed);
 * - `~l…` the lock item of a data key;
 * - `~fence` the fencing-token counter of one server;
 * - `~gen` the value generation of one server (see `Generations`).
 */
const INTERNAL_MARK = '~';
const ESCAPED = '~h';
const LOCK = '~l';
const FENCE = '~fence';
const GENERATION = '~gen';
/** Room the longest internal namespace takes in front of a stored data key. */
const NAMESPACE_BYTES = LOCK.length;

/**
 * SHA-256 of the key's UTF-16 code units, base64url (43 characters). Hashing code units
 * instead of UTF-8 keeps every distinct JavaScript string distinct, lone surrogates included
 * (UTF-8 would turn them all into U+FFFD).
 */
function digest(key: string): string {
  return createHash('sha256').update(Buffer.from(key, 'utf16le')).digest('base64url');
}

/** @returns whether `prefix` can prefix stored keys (printable ASCII, at most 128 bytes). */
export function isValidPrefix(prefix: string): boolean {
  return prefix === '' || (prefix.length <= MAX_PREFIX_BYTES && PLAIN.test(prefix));
}

/**
 * How keys become memcached keys for one key prefix. Two layers, each one-to-one:
 *
 * 1. {@link mangler} (the backend's preferred key mangler, user key → backend key) keeps a
 *    short plain key as it is and replaces any other key with `#` + its hash. Plain keys that
 *    start with `#` or `~` are hashed too, so a kept key never looks like a hashed one.
 * 2. {@link dataKey} (backend key → stored key, applied to every key, whatever mangler the
 *    store uses, even none) prefixes a key that is plain, does not start with `~` and fits;
 *    any other key becomes `~h` + its hash. The mangler's output always passes unchanged.
 *
 * Lock items, fence counters and generation counters live under `~l`, `~fence` and `~gen`,
 * which no data key can take.
 */
export class KeyScheme {
  readonly prefix: string;
  /** The longest backend key stored as given (so its lock item still fits in 250 bytes). */
  readonly maxPlainBytes: number;
  /** The backend's preferred key mangler. */
  readonly mangler: KeyMangler;

  /** @param prefix - A valid key prefix (see {@link isValidPrefix}). */
  constructor(prefix: string) {
    this.prefix = prefix;
    this.maxPlainBytes = MAX_KEY_BYTES - prefix.length - NAMESPACE_BYTES;
    const maxPlain = this.maxPlainBytes;
    this.mangler = (key: string): string =>
      key.length <= maxPlain && PLAIN.test(key) && !key.startsWith(MANGLED_MARK) && !key.startsWith(INTERNAL_MARK)
        ? key
        : MANGLED_MARK + digest(key);
  }

  /** The stored key of the data item of backend key `key` (always a valid memcached key). */
  dataKey(key: string): string {
    return this.prefix + this.#storable(key);
  }

  /** The stored key of the lock item of backend key `key`. */
  lockKey(key: string): string {
    return this.prefix + LOCK + this.#storable(key);
  }

  /** The stored key of the per-server fencing-token counter. */
  fenceKey(): string {
    return this.prefix + FENCE;
  }

  /** The stored key of the per-server value generation counter. */
  generationKey(): string {
    return this.prefix + GENERATION;
  }

  #storable(key: string): string {
    return key.length <= this.maxPlainBytes && PLAIN.test(key) && !key.startsWith(INTERNAL_MARK) ? key : ESCAPED + digest(key);
  }
}

/** @returns whether `key` is a key memcached accepts: 1–250 bytes of printable ASCII. */
export function isValidStoredKey(key: string): boolean {
  return key.length >= 1 && key.length <= MAX_KEY_BYTES && PLAIN.test(key);
}
