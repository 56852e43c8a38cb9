import { createHash } from 'node:crypto';
import { ValidationError } from '@latchkey/core';

/**
 * Where a stored key lives on Redis. Data, lock and fence counter share one hash tag, so a
 * single script can check the lock and write on one node, on Cluster too:
 *
 * - data `<prefix>{<key>}`, lock `<prefix>{<key>}:lock`, fence `<prefix>{<key>}:fence`, the lock's
 *   waiter queue `<prefix>{<key>}:queue` and its entries `<prefix>{<key>}:waiters`;
 * - a key that a hash tag cannot carry as it is (it contains `{` or `}`, or is not
 *   well-formed UTF-16 and so would not survive UTF-8) is stored under
 *   `<prefix>#{<sha1>}` (and `…:lock`, `…:fence`), the SHA-1 taken over the key's UTF-16
 *   code units: distinct keys stay distinct, and the `#` keeps both forms apart.
 *
 * Data keys always end in `}`, so no data key is ever another key's lock or fence.
 */
export class KeyLayout {
  /** The namespace of everything this backend writes. */
  readonly prefix: string;
  /** The pub/sub channel on which releases are announced. */
  readonly channel: string;

  constructor(prefix: string) {
    if (typeof prefix !== 'string') throw new ValidationError(`RedisBackend: keyPrefix must be a string, got ${typeof prefix}.`);
    if (/[{}]/.test(prefix)) {
      throw new ValidationError(
        `RedisBackend: keyPrefix must not contain "{" or "}" (they would change the hash tag), got ${JSON.stringify(prefix)}.`,
      );
    }
    if (!prefix.isWellFormed()) throw new ValidationError('RedisBackend: keyPrefix must be well-formed UTF-16.');
    this.prefix = prefix;
    this.channel = `${prefix}latchkey:released`;
  }

  /** The Redis key holding the value of `storedKey`. */
  dataKey(storedKey: string): string {
    if (needsDigest(storedKey)) return `${this.prefix}#{${digest(storedKey)}}`;
    return `${this.prefix}{${storedKey}}`;
  }

  /**
   * The stored key whose data key is `dataKey` (as release announcements name it), or
   * `undefined` when that cannot be told: a digested key, or not a data key of this prefix.
   */
  storedKeyOf(dataKey: string): string | undefined {
    const { prefix } = this;
    if (!dataKey.startsWith(`${prefix}{`) || !dataKey.endsWith('}')) return undefined;
    const storedKey = dataKey.slice(prefix.length + 1, -1);
    return storedKey.length === 0 || needsDigest(storedKey) ? undefined : storedKey;
  }
}

/** The lock key that belongs to `dataKey` (same hash tag). */
export function lockKeyOf(dataKey: string): string {
  return `${dataKey}:lock`;
}

/** The fence counter that belongs to `dataKey` (same hash tag). */
export function fenceKeyOf(dataKey: string): string {
  return `${dataKey}:fence`;
}

/** The queue of waiters for the lock of `dataKey`: their ids in arrival order (same hash tag). */
export function queueKeyOf(dataKey: string): string {
  return `${dataKey}:queue`;
}

/** The entries (refresh time, token, lease) of the queued waiters of `dataKey`'s lock, by waiter id (same hash tag). */
export function entriesKeyOf(dataKey: string): string {
  return `${dataKey}:waiters`;
}

function needsDigest(key: string): boolean {
  return key.includes('{') || key.includes('}') || !key.isWellFormed();
}

function digest(key: string): string {
  return createHash('sha1').update(Buffer.from(key, 'utf16le')).digest('hex');
}
