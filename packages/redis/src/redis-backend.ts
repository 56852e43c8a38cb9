import {
  BackendClosedError,
  CallRunner,
  checkExpiresAt,
  checkLease,
  checkStoredEntries,
  checkStoredKey,
  checkStoredKeys,
  checkStoredValue,
  withDeadline,
  type AcquireLockOptions,
  type Backend,
  type BackendBatchWriteOptions,
  type BackendCapabilities,
  type BackendCompareAndSetOptions,
  type BackendDeleteOptions,
  type BackendWriteOptions,
  type Call,
  type DeleteOutcome,
  type Lease,
  type StoredValue,
  type WriteOutcome,
} from '@latchkey/core';
import type { ChainableCommander, Cluster, Redis } from 'ioredis';
import { checkPipeline, sendClusterBatches } from './internal/batches.js';
import { isCluster, resolveClient } from './internal/clients.js';
import { ConnectionGate, type RedisClient } from './internal/connection-gate.js';
import { toLatchkeyError } from './internal/errors.js';
import { KeyLayout, lockKeyOf } from './internal/key-layout.js';
import { RedisLocks } from './internal/locks.js';
import { runLockScript } from './internal/replication.js';
import { COMPARE_AND_SET, LOCKED_DELETE, LOCKED_SET, runScript } from './internal/scripts.js';
import { dataKeyPattern, isDataKey, SCAN_COUNT, scanNodes } from './internal/value-keys.js';
import { wireValue } from './internal/wire-value.js';
import { WriteCoalescer } from './internal/write-coalescer.js';
import {
  DEFAULT_MAX_VALUE_BYTES,
  resolveRedisBackendOptions,
  type RedisBackendOptions,
  type ResolvedLockReplication,
} from './redis-backend-options.js';

const NAME = 'RedisBackend';

const CAPABILITIES: BackendCapabilities = Object.freeze({
  lockScope: 'distributed',
  atomicLeaseWrites: true,
  fencingTokens: true,
  ttlResolutionMs: 1,
  minLeaseMs: 1,
  maxValueBytes: DEFAULT_MAX_VALUE_BYTES,
  // Any maxmemory policy but noeviction may drop keys before they expire.
  mayEvict: true,
});

/**
 * A latchkey backend on Redis through ioredis: a single server, a Redis Cluster, or a
 * master found through Sentinel.
 *
 * - Values are stored as raw bytes with a millisecond `PX` expiry.
 * - Data, lock and fence counter of a key share one hash tag, so lock checks and writes are
 *   one Lua script on the key's node: a write or delete under a lease that lapsed or was taken
 *   over is refused by Redis itself.
 * - Acquire is one script (take the lock if free and bump the fencing token, else report its
 *   remaining lease). Waiters in one process queue locally in FIFO order; only the first asks
 *   Redis, woken by release announcements over pub/sub, by the holder's lease running out, or
 *   by its own wait ending.
 * - Batch calls cost one command per cluster slot, pipelined per node (one `MGET` on a single
 *   server); they never fail with CROSSSLOT.
 * - With `lockReplication`, an acquire is granted, and an extend or a locked write or delete
 *   acknowledged, only once `WAIT` has seen enough replicas take it, so locks survive a
 *   failover (see {@link RedisBackendOptions.lockReplication}).
 * - Every call settles within `operationTimeoutMs` with its result or a typed error; calls
 *   after `close()` reject with `BackendClosedError`.
 *
 * Keys are used as given (the store's default SHA-1 mangler keeps them short); see the README
 * for the key layout, the guarantees of the locks and their limits.
 */
export class RedisBackend implements Backend {
  readonly capabilities: BackendCapabilities;
  /**
   * Absent on purpose: the store's default, `sha1KeyMangler`, suits Redis well (short,
   * fixed-length keys without braces).
   */
  readonly keyMangler = undefined;

  readonly #client: RedisClient;
  readonly #maxValueBytes: number;
  readonly #ownsClient: boolean;
  readonly #layout: KeyLayout;
  readonly #gate: ConnectionGate;
  readonly #calls: CallRunner;
  readonly #locks: RedisLocks;
  readonly #replication: ResolvedLockReplication | undefined;
  readonly #writes: WriteCoalescer;
  #closing: Promise<void> | undefined;

  /**
   * @throws {ValidationError} for invalid options (before any I/O; a built client connects
   *   on first use).
   */
  constructor(options: RedisBackendOptions = {}) {
    const { timeoutMs, maxValueBytes, lockReplication } = resolveRedisBackendOptions(options);
    this.capabilities = Object.freeze({ ...CAPABILITIES, maxValueBytes, callDeadlineMs: timeoutMs });
    this.#maxValueBytes = maxValueBytes;
    this.#layout = new KeyLayout(options.keyPrefix ?? '');
    const { client, owned } = resolveClient(options, timeoutMs);
    this.#client = client;
    this.#ownsClient = owned;
    this.#gate = new ConnectionGate(client, owned);
    this.#writes = new WriteCoalescer(client);
    this.#calls = new CallRunner({ name: NAME, timeoutMs, connection: this.#gate, mapError: toLatchkeyError });
    this.#replication = lockReplication;
    this.#locks = new RedisLocks({ client, calls: this.#calls, layout: this.#layout, timeoutMs, replication: lockReplication });
  }

  /** The ioredis client in use (the given one, or the one the backend built). */
  get client(): Redis | Cluster {
    return this.#client;
  }

  /**
   * The stored bytes of `key` (one `GET`), or `undefined` when missing or expired.
   * @throws {InvalidKeyError} for an empty or non-string key, before any I/O.
   * @throws {BackendUnavailableError | BackendTimeoutError | BackendError} as described in the README.
   */
  get(key: string): Promise<StoredValue | undefined> {
    return this.#guard('get', () => {
      checkStoredKey(key);
      const dataKey = this.#layout.dataKey(key);
      return this.#calls.run('get', async () => {
        this.#writes.hold();
        return (await this.#client.getBuffer(dataKey)) ?? undefined;
      });
    });
  }

  /**
   * The stored bytes of each key in input order, `undefined` for missing ones: one `MGET` on a
   * single server, one per hash slot (pipelined per node) on a Cluster; no I/O for `[]`.
   * @throws {InvalidKeyError} for a bad key, before any I/O.
   */
  getMany(keys: readonly string[]): Promise<(StoredValue | undefined)[]> {
    return this.#guard('getMany', () => {
      checkStoredKeys(keys);
      if (keys.length === 0) return [];
      const dataKeys = keys.map((key) => this.#layout.dataKey(key));
      const client = this.#client;
      if (!isCluster(client))
        return this.#calls.run('getMany', async () => {
          this.#writes.hold();
          return (await client.mgetBuffer(...dataKeys)).map((value) => value ?? undefined);
        });
      const values = new Array<StoredValue | undefined>(keys.length).fill(undefined);
      return this.#calls.run('getMany', async () => {
        this.#writes.hold();
        await sendClusterBatches(
          client,
          dataKeys,
          (pipeline, group) => pipeline.mgetBuffer(...group.indexes.map((i) => dataKeys[i] as string)),
          (group, reply) =>
            (reply as (Buffer | null)[]).forEach((value, position) => (values[group.indexes[position] as number] = value ?? undefined)),
        );
        return values;
      });
    });
  }

  /**
   * Stores `value` (with `PX` when `options.expiresAt` is given). With `options.lease`, one
   * script writes only while that lease holds the key, else resolves `'lease-lost'`.
   * @throws {InvalidKeyError | ValidationError | ValueTooLargeError} for bad input, before any I/O.
   */
  set(key: string, value: StoredValue, options: BackendWriteOptions = {}): Promise<WriteOutcome> {
    return this.#guard('set', () => {
      checkStoredKey(key);
      checkStoredValue(value, this.#maxValueBytes, key);
      const { lease, expiresAt } = options;
      checkExpiresAt(expiresAt);
      if (lease !== undefined) checkLease(lease);
      const ttl = ttlArg(expiresAt);
      const dataKey = this.#layout.dataKey(key);
      const client = this.#client;
      if (lease === undefined) {
        const bytes = wireValue(value, this.#mustCopy());
        return this.#calls.run('set', async (): Promise<WriteOutcome> => {
          this.#writes.hold();
          await (ttl === '' ? client.set(dataKey, bytes) : ttl === EXPIRED ? client.del(dataKey) : client.set(dataKey, bytes, 'PX', ttl));
          return 'written';
        });
      }
      if (lease.key !== key) return 'lease-lost';
      const bytes = toBuffer(value, true);
      const args = [dataKey, lockKeyOf(dataKey), lease.token, bytes, ttl];
      return this.#calls.run('set', async (call): Promise<WriteOutcome> => {
        const reply = await runLockScript(client, LOCKED_SET, args, this.#lockCall(call, 'set'), (written) => Number(written) === 1);
        return Number(reply) === 1 ? 'written' : 'lease-lost';
      });
    });
  }

  /**
   * Stores every entry (later duplicates win), pipelined: one pipeline on a single server, one
   * per node on a Cluster. No I/O for `[]`.
   * @throws {InvalidKeyError | ValidationError | ValueTooLargeError} for bad input, before any I/O.
   */
  setMany(entries: readonly (readonly [string, StoredValue])[], options: BackendBatchWriteOptions = {}): Promise<void> {
    return this.#guard('setMany', () => {
      checkStoredEntries(entries, this.#maxValueBytes);
      checkExpiresAt(options.expiresAt);
      if (entries.length === 0) return undefined;
      const copy = this.#mustCopy();
      const values = entries.map(([, value]) => wireValue(value, copy));
      const ttl = ttlArg(options.expiresAt);
      const dataKeys = entries.map(([key]) => this.#layout.dataKey(key));
      const write = (pipeline: ChainableCommander, index: number): unknown => {
        const dataKey = dataKeys[index] as string;
        const value = values[index] as string | Buffer;
        return ttl === ''
          ? pipeline.set(dataKey, value)
          : ttl === EXPIRED
            ? pipeline.del(dataKey)
            : pipeline.set(dataKey, value, 'PX', ttl);
      };
      const client = this.#client;
      if (!isCluster(client)) {
        return this.#calls.run('setMany', async () => {
          this.#writes.hold();
          const pipeline = client.pipeline();
          dataKeys.forEach((_, index) => write(pipeline, index));
          checkPipeline(await pipeline.exec());
        });
      }
      return this.#calls.run('setMany', () => {
        this.#writes.hold();
        return sendClusterBatches(client, dataKeys, (pipeline, group) => group.indexes.forEach((index) => write(pipeline, index)), noop);
      });
    });
  }

  /**
   * Deletes `key`: `'deleted'` or `'missing'`. With `options.lease`, one script deletes only
   * while that lease holds the key, else resolves `'lease-lost'`.
   * @throws {InvalidKeyError} for a bad key; {@link ValidationError} for a malformed lease; before any I/O.
   */
  delete(key: string, options: BackendDeleteOptions = {}): Promise<DeleteOutcome> {
    return this.#guard('delete', () => {
      checkStoredKey(key);
      const { lease } = options;
      if (lease !== undefined) checkLease(lease);
      const dataKey = this.#layout.dataKey(key);
      const client = this.#client;
      if (lease === undefined) {
        return this.#calls.run('delete', async (): Promise<DeleteOutcome> => {
          this.#writes.hold();
          return Number(await client.del(dataKey)) > 0 ? 'deleted' : 'missing';
        });
      }
      if (lease.key !== key) return 'lease-lost';
      const args = [dataKey, lockKeyOf(dataKey), lease.token];
      return this.#calls.run('delete', async (call): Promise<DeleteOutcome> => {
        const outcome = Number(await runLockScript(client, LOCKED_DELETE, args, this.#lockCall(call, 'delete'), (n) => Number(n) === 1));
        return outcome === 1 ? 'deleted' : outcome === 0 ? 'missing' : 'lease-lost';
      });
    });
  }

  /**
   * Deletes every key, ignoring missing ones: one `DEL` on a single server, one per hash slot
   * (pipelined per node) on a Cluster. No I/O for `[]`.
   * @throws {InvalidKeyError} for a bad key, before any I/O.
   */
  deleteMany(keys: readonly string[]): Promise<void> {
    return this.#guard('deleteMany', () => {
      checkStoredKeys(keys);
      if (keys.length === 0) return undefined;
      const dataKeys = keys.map((key) => this.#layout.dataKey(key));
      const client = this.#client;
      if (!isCluster(client)) {
        return this.#calls.run('deleteMany', async () => {
          await client.del(...dataKeys);
        });
      }
      return this.#calls.run('deleteMany', () =>
        sendClusterBatches(client, dataKeys, (pipeline, group) => pipeline.del(...group.indexes.map((i) => dataKeys[i] as string)), noop),
      );
    });
  }

  /**
   * Removes every value under this backend's `keyPrefix` and nothing else: `SCAN MATCH
   * <prefix>*}` over every master (never `KEYS`, never `FLUSHDB`), then `UNLINK` of each page's
   * data keys (one command per page on a single server, one per hash slot pipelined per node on
   * a Cluster). Lock, fence and queue keys are left alone, so holders keep their leases and
   * fencing counters keep increasing. Not atomic: a value written while the scan runs may survive.
   * Each `SCAN` and `UNLINK` step runs under the call deadline.
   */
  clear(): Promise<void> {
    return this.#guard('clear', async () => {
      for await (const page of this.#scanDataKeys('clear')) {
        if (page.length > 0) await this.#unlink(page);
      }
    });
  }

  /**
   * The stored keys of this prefix's values: `SCAN MATCH <prefix>*}` over every master, one
   * `SCAN` (of up to 1000 keys) per step under the call deadline. No snapshot: a key stored
   * throughout is yielded at least once, and may be yielded twice (`SCAN` during a rehash).
   * A key stored digested (`<prefix>#{<sha1>}`: it contained a brace or was not well-formed
   * UTF-16) cannot be named from its Redis key and is not yielded; see the README.
   */
  keys(): AsyncIterable<string> {
    return { [Symbol.asyncIterator]: () => this.#keys() };
  }

  async *#keys(): AsyncGenerator<string, void, undefined> {
    if (this.#closing !== undefined) throw new BackendClosedError(`${NAME} is closed: keys was not sent.`);
    for await (const page of this.#scanDataKeys('keys')) {
      for (const dataKey of page) {
        const stored = this.#layout.storedKeyOf(dataKey);
        if (stored !== undefined) yield stored;
      }
    }
  }

  /**
   * Whether a live value is stored under `key` (one `EXISTS`; Redis expiry is exact to the
   * millisecond).
   * @throws {InvalidKeyError} for a bad key, before any I/O.
   */
  has(key: string): Promise<boolean> {
    return this.#guard('has', () => {
      checkStoredKey(key);
      const dataKey = this.#layout.dataKey(key);
      return this.#calls.run('has', async () => Number(await this.#client.exists(dataKey)) === 1);
    });
  }

  /**
   * Stores `value` only if the stored bytes are exactly `expected`: one Lua script (`GET`,
   * compare, `SET` with `PX` for `options.expiresAt`, without one otherwise). `true` when
   * written, `false` when the key was missing or held other bytes (nothing written).
   * @throws {InvalidKeyError | ValidationError | ValueTooLargeError} for bad input, before any I/O.
   */
  compareAndSet(key: string, expected: StoredValue, value: StoredValue, options: BackendCompareAndSetOptions = {}): Promise<boolean> {
    return this.#guard('compareAndSet', () => {
      checkStoredKey(key);
      checkStoredValue(expected, undefined, key);
      checkStoredValue(value, this.#maxValueBytes, key);
      checkExpiresAt(options.expiresAt);
      const dataKey = this.#layout.dataKey(key);
      // Copied: a script may be sent again (NOSCRIPT, a redirection) after the caller got its buffers back.
      const args = [dataKey, toBuffer(expected, true), toBuffer(value, true), ttlArg(options.expiresAt)];
      return this.#calls.run('compareAndSet', async () => Number(await runScript(this.#client, COMPARE_AND_SET, args)) === 1);
    });
  }

  /** Pages of this prefix's data keys from `SCAN` over every master, each step under the call deadline. */
  async *#scanDataKeys(what: string): AsyncGenerator<string[], void, undefined> {
    const pattern = dataKeyPattern(this.#layout);
    // Inside a call: a Cluster client knows its masters only once connected.
    const nodes = await this.#calls.run(what, () => scanNodes(this.#client));
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, found] = await this.#calls.run(what, () => node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT));
        cursor = next;
        yield found.filter((redisKey) => isDataKey(this.#layout, redisKey));
      } while (cursor !== '0');
    }
  }

  /** `UNLINK`s `dataKeys`: one command on a single server, one per hash slot (pipelined per node) on a Cluster. */
  #unlink(dataKeys: readonly string[]): Promise<void> {
    const client = this.#client;
    if (!isCluster(client)) {
      return this.#calls.run('clear', async () => {
        await client.unlink(...dataKeys);
      });
    }
    return this.#calls.run('clear', () =>
      sendClusterBatches(client, dataKeys, (pipeline, group) => pipeline.unlink(...group.indexes.map((i) => dataKeys[i] as string)), noop),
    );
  }

  /**
   * Takes the lease on `key`, waiting up to `options.waitMs` (FIFO within this backend, woken
   * by releases). Resolves the lease (with a fencing token above every earlier one) or
   * `undefined` when the wait ran out.
   * @throws `options.signal.reason` when the signal aborts (no lease is left behind).
   * @throws {ValidationError} for bad options.
   * @throws {BackendClosedError} when `close()` ends the wait.
   * @throws {BackendUnavailableError | BackendTimeoutError | BackendError} when an attempt fails.
   */
  acquireLock(key: string, options: AcquireLockOptions): Promise<Lease | undefined> {
    return this.#locks.waiters.acquire(key, options);
  }

  /**
   * Lets go of `lease` and announces the release: `true` when it still held the key, `false`
   * when it had lapsed or been taken over (the current holder is left alone).
   * @throws {ValidationError} for a malformed lease, before any I/O.
   */
  releaseLock(lease: Lease): Promise<boolean> {
    return this.#locks.waiters.release(lease);
  }

  /**
   * Renews `lease` for `leaseMs` from now (`0`: no expiry): `true` when renewed, `false` when
   * it no longer holds the key.
   * @throws {ValidationError} for a malformed lease or `leaseMs`, before any I/O.
   */
  extendLock(lease: Lease, leaseMs: number): Promise<boolean> {
    return this.#locks.waiters.extend(lease, leaseMs);
  }

  /**
   * Rejects waiting lock calls with `BackendClosedError`, gives back every lease this backend
   * still holds, settles calls in flight, closes the subscriber connection and — only when
   * the backend built it — the client. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    // The give-backs need the connection: locks first, then the runner, then the client.
    await this.#locks.close();
    this.#calls.close();
    if (this.#ownsClient) {
      const client = this.#client;
      // A failed or late QUIT changes nothing: the connection is dropped right after.
      if (client.status === 'ready') await withDeadline('close', this.#calls.timeoutMs, () => client.quit()).catch(noop);
      client.disconnect();
    }
    this.#gate.dispose();
  }

  /** How a locked write or delete runs: waited for by `WAIT` with replicated locks. */
  #lockCall(call: Call, what: string): { replication: ResolvedLockReplication | undefined; call: Call; what: string } {
    return { replication: this.#replication, call, what };
  }

  /** Whether a write must copy the caller's bytes: it may be sent after the call returns (see {@link toBuffer}). */
  #mustCopy(): boolean {
    return !this.#gate.ready || isCluster(this.#client);
  }

  /** Rejects once `close()` was called; turns a synchronous throw of `work` (a bad input) into a rejection. */
  #guard<T>(what: string, work: () => T | Promise<T>): Promise<T> {
    if (this.#closing !== undefined) return Promise.reject(new BackendClosedError(`${NAME} is closed: ${what} was not sent.`));
    try {
      return Promise.resolve(work());
    } catch (error) {
      return Promise.reject(error);
    }
  }
}

function noop(): void {}

/**
 * The caller's bytes as a Buffer, taken at call time. ioredis copies a command's arguments
 * when it writes the command, which on a ready standalone client happens before the call
 * returns; where a command is sent later (the client is still connecting) or may be sent
 * again (Cluster redirections, a script resent after NOSCRIPT) — possibly after its
 * deadline, when the caller may already reuse the buffer — `copy` takes a private copy.
 */
function toBuffer(value: StoredValue, copy: boolean): Buffer {
  if (copy) return Buffer.from(value);
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/** {@link ttlArg} of an expiry already past: the write deletes the key instead, leaving nothing readable. */
const EXPIRED = '0';

/**
 * The `PX` argument for an absolute expiry: the time left, rounded up; {@link EXPIRED} when
 * none is left; `''` for no expiry. Relative, so the server's clock does not matter.
 */
function ttlArg(expiresAt: number | undefined): string {
  if (expiresAt === undefined || expiresAt === Infinity) return '';
  return String(Math.max(0, Math.ceil(expiresAt - Date.now())));
}
