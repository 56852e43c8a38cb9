import { randomUUID } from 'node:crypto';
import {
  BackendUnavailableError,
  InvalidKeyError,
  ValidationError,
  ValueTooLargeError,
  type AcquireLockOptions,
  type Backend,
  type BackendBatchWriteOptions,
  type BackendCapabilities,
  type BackendDeleteOptions,
  type BackendWriteOptions,
  type DeleteOutcome,
  type Lease,
  type StoredValue,
  type WriteOutcome,
} from '@latchkey/core';
import type { ChainableCommander, Cluster, Redis } from 'ioredis';
import { CallRunner } from './internal/call-runner.js';
import { isCluster, resolveClient, subscriberFactory } from './internal/clients.js';
import { ConnectionGate, type RedisClient } from './internal/connection-gate.js';
import { fenceKeyOf, KeyLayout, lockKeyOf } from './internal/key-layout.js';
import { LockQueue, type AttemptResult } from './internal/lock-queue.js';
import { ReleaseListener } from './internal/release-listener.js';
import { ACQUIRE, EXTEND, LOCKED_DELETE, LOCKED_SET, RELEASE, runScript } from './internal/scripts.js';
import { batchByNode, groupBySlot, type SlotGroup } from './internal/slot-groups.js';
import type { RedisBackendOptions } from './redis-backend-options.js';

/** Redis' default `proto-max-bulk-len`: the largest string value it accepts. */
const DEFAULT_MAX_VALUE_BYTES = 512 * 1024 * 1024;

/** Bound on remembered own releases (their announcements normally arrive within milliseconds). */
const MAX_OWN_RELEASES = 10_000;

/** The default of {@link RedisBackendOptions.operationTimeoutMs}. */
const DEFAULT_OPERATION_TIMEOUT_MS = 2_000;

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
 * - Every call settles within `operationTimeoutMs` with its result or a typed error.
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
  readonly #releases: ReleaseListener;
  readonly #locks: LockQueue;
  /** Tokens this process released whose announcement it will hear itself (already acted on). */
  readonly #ownReleases = new Set<string>();
  #closed = false;
  #closing: Promise<void> | undefined;

  /**
   * @throws {ValidationError} for invalid options (before any I/O; a built client connects
   *   on first use).
   */
  constructor(options: RedisBackendOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new ValidationError('RedisBackend options must be an object.');
    const timeoutMs = options.operationTimeoutMs ?? DEFAULT_OPERATION_TIMEOUT_MS;
    if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new ValidationError(`RedisBackend: operationTimeoutMs must be a positive finite number, got ${String(timeoutMs)}.`);
    }
    const maxValueBytes = options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
    if (!Number.isSafeInteger(maxValueBytes) || maxValueBytes < 1) {
      throw new ValidationError(`RedisBackend: maxValueBytes must be a positive integer, got ${String(maxValueBytes)}.`);
    }
    this.capabilities = Object.freeze({ ...CAPABILITIES, maxValueBytes, callDeadlineMs: timeoutMs });
    this.#maxValueBytes = maxValueBytes;
    this.#layout = new KeyLayout(options.keyPrefix ?? '');
    const { client, owned } = resolveClient(options, timeoutMs);
    this.#client = client;
    this.#ownsClient = owned;
    this.#gate = new ConnectionGate(client, owned);
    this.#calls = new CallRunner(this.#gate, timeoutMs);
    this.#releases = new ReleaseListener({
      channel: this.#layout.channel,
      connect: subscriberFactory(client, timeoutMs),
      timeoutMs,
      onRelease: (dataKey, token) => {
        if (this.#ownReleases.delete(token)) return;
        this.#locks.notify(dataKey);
      },
      onListening: () => {
        this.#ownReleases.clear();
        this.#locks.wakeAll();
      },
    });
    this.#locks = new LockQueue({ releases: this.#releases, discard: (lease) => void this.#giveBack(lease.key, lease.token) });
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
    if (this.#closed) return closedRejection();
    if (!isKey(key)) return Promise.reject(invalidKey(key));
    const dataKey = this.#layout.dataKey(key);
    return this.#calls.run('get', () => this.#client.getBuffer(dataKey), nullToUndefined);
  }

  /**
   * The stored bytes of each key in input order, `undefined` for missing ones: one `MGET` on a
   * single server, one per hash slot (pipelined per node) on a Cluster; no I/O for `[]`.
   * @throws {InvalidKeyError} for a bad key, before any I/O.
   */
  getMany(keys: readonly string[]): Promise<(StoredValue | undefined)[]> {
    return this.#guard(() => {
      if (!Array.isArray(keys)) throw new ValidationError('getMany: keys must be an array.');
      keys.forEach(checkKey);
      if (keys.length === 0) return [];
      const dataKeys = keys.map((key) => this.#layout.dataKey(key));
      const client = this.#client;
      if (!isCluster(client))
        return this.#calls.run(
          'getMany',
          () => client.mgetBuffer(...dataKeys),
          (found) => found.map(nullToUndefined),
        );
      const values = new Array<StoredValue | undefined>(keys.length).fill(undefined);
      return this.#batched(
        'getMany',
        dataKeys,
        (pipeline, group) => pipeline.mgetBuffer(...group.indexes.map((i) => dataKeys[i] as string)),
        (group, reply) =>
          (reply as (Buffer | null)[]).forEach((value, position) => (values[group.indexes[position] as number] = value ?? undefined)),
      ).then(() => values);
    });
  }

  /**
   * Stores `value` (with `PX` when `options.expiresAt` is given). With `options.lease`, one
   * script writes only while that lease holds the key, else resolves `'lease-lost'`.
   * @throws {InvalidKeyError | ValidationError | ValueTooLargeError} for bad input, before any I/O.
   */
  set(key: string, value: StoredValue, options: BackendWriteOptions = {}): Promise<WriteOutcome> {
    if (this.#closed) return closedRejection();
    try {
      checkKey(key);
      const { lease, expiresAt } = options;
      const ttl = ttlArg(expiresAt);
      const dataKey = this.#layout.dataKey(key);
      const client = this.#client;
      if (lease === undefined) {
        const bytes = toBuffer(value, this.#maxValueBytes, this.#mustCopy());
        return this.#calls.run('set', () => (ttl === '' ? client.set(dataKey, bytes) : client.set(dataKey, bytes, 'PX', ttl)), written);
      }
      const bytes = toBuffer(value, this.#maxValueBytes, true);
      if (lease.key !== key) return Promise.resolve('lease-lost');
      return this.#calls.run(
        'set',
        () => runScript(client, LOCKED_SET, [dataKey, lockKeyOf(dataKey), lease.token, bytes, ttl]),
        (reply): WriteOutcome => (Number(reply) === 1 ? 'written' : 'lease-lost'),
      );
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Stores every entry (later duplicates win), pipelined: one pipeline on a single server, one
   * per node on a Cluster. No I/O for `[]`.
   * @throws {InvalidKeyError | ValidationError | ValueTooLargeError} for bad input, before any I/O.
   */
  setMany(entries: readonly (readonly [string, StoredValue])[], options: BackendBatchWriteOptions = {}): Promise<void> {
    return this.#guard(async () => {
      if (!Array.isArray(entries)) throw new ValidationError('setMany: entries must be an array.');
      const copy = this.#mustCopy();
      const values = entries.map(([key, value]) => {
        checkKey(key);
        return toBuffer(value, this.#maxValueBytes, copy);
      });
      if (entries.length === 0) return;
      const ttl = ttlArg(options.expiresAt);
      const dataKeys = entries.map(([key]) => this.#layout.dataKey(key));
      const write = (pipeline: ChainableCommander, index: number): unknown => {
        const dataKey = dataKeys[index] as string;
        const value = values[index] as Buffer;
        return ttl === '' ? pipeline.set(dataKey, value) : pipeline.set(dataKey, value, 'PX', ttl);
      };
      if (!isCluster(this.#client)) {
        const client = this.#client;
        await this.#calls.run('setMany', async () => {
          const pipeline = client.pipeline();
          dataKeys.forEach((_, index) => write(pipeline, index));
          checkPipeline(await pipeline.exec());
        });
        return;
      }
      await this.#batched('setMany', dataKeys, (pipeline, group) => group.indexes.forEach((index) => write(pipeline, index)), noop);
    });
  }

  /**
   * Deletes `key`: `'deleted'` or `'missing'`. With `options.lease`, one script deletes only
   * while that lease holds the key, else resolves `'lease-lost'`.
   * @throws {InvalidKeyError} for a bad key, before any I/O.
   */
  delete(key: string, options: BackendDeleteOptions = {}): Promise<DeleteOutcome> {
    return this.#guard(() => {
      checkKey(key);
      const dataKey = this.#layout.dataKey(key);
      const { lease } = options;
      if (lease === undefined)
        return this.#calls.run(
          'delete',
          () => this.#client.del(dataKey),
          (removed): DeleteOutcome => (Number(removed) > 0 ? 'deleted' : 'missing'),
        );
      if (lease.key !== key) return 'lease-lost';
      return this.#calls.run(
        'delete',
        () => runScript(this.#client, LOCKED_DELETE, [dataKey, lockKeyOf(dataKey), lease.token]),
        (reply): DeleteOutcome => {
          const outcome = Number(reply);
          return outcome === 1 ? 'deleted' : outcome === 0 ? 'missing' : 'lease-lost';
        },
      );
    });
  }

  /**
   * Deletes every key, ignoring missing ones: one `DEL` on a single server, one per hash slot
   * (pipelined per node) on a Cluster. No I/O for `[]`.
   * @throws {InvalidKeyError} for a bad key, before any I/O.
   */
  deleteMany(keys: readonly string[]): Promise<void> {
    return this.#guard(async () => {
      if (!Array.isArray(keys)) throw new ValidationError('deleteMany: keys must be an array.');
      keys.forEach(checkKey);
      if (keys.length === 0) return;
      const dataKeys = keys.map((key) => this.#layout.dataKey(key));
      if (!isCluster(this.#client)) {
        await this.#calls.run('deleteMany', () => this.#client.del(...dataKeys));
        return;
      }
      await this.#batched(
        'deleteMany',
        dataKeys,
        (pipeline, group) => pipeline.del(...group.indexes.map((i) => dataKeys[i] as string)),
        noop,
      );
    });
  }

  /**
   * Takes the lease on `key`, waiting up to `options.waitMs` (FIFO within this backend, woken
   * by releases). Resolves the lease (with a fencing token above every earlier one) or
   * `undefined` when the wait ran out.
   * @throws `options.signal.reason` when the signal aborts (no lease is left behind).
   * @throws {ValidationError} for a bad lease or wait length.
   * @throws {BackendUnavailableError | BackendTimeoutError | BackendError} when an attempt fails.
   */
  acquireLock(key: string, options: AcquireLockOptions): Promise<Lease | undefined> {
    return this.#guard(() => {
      checkKey(key);
      const { leaseMs, waitMs } = options;
      checkDuration('leaseMs', leaseMs);
      checkDuration('waitMs', waitMs);
      const dataKey = this.#layout.dataKey(key);
      return this.#locks.acquire(dataKey, (lease) => this.#attempt(key, dataKey, lease), options);
    });
  }

  /**
   * Lets go of `lease` and announces the release: `true` when it still held the key, `false`
   * when it had lapsed or been taken over (the current holder is left alone).
   */
  releaseLock(lease: Lease): Promise<boolean> {
    return this.#guard(async () => {
      checkLease(lease);
      const dataKey = this.#layout.dataKey(lease.key);
      // Only a listening subscriber will hear (and so drop) the token again.
      if (this.#releases.listening && this.#ownReleases.size < MAX_OWN_RELEASES) this.#ownReleases.add(lease.token);
      let released: boolean | undefined;
      try {
        const reply = await this.#calls.run('releaseLock', () =>
          runScript(this.#client, RELEASE, [lockKeyOf(dataKey), lease.token, this.#layout.channel, `${lease.token} ${dataKey}`]),
        );
        released = Number(reply) === 1;
        return released;
      } finally {
        if (released !== true) this.#ownReleases.delete(lease.token);
        this.#locks.released(dataKey, lease.token, released);
      }
    });
  }

  /**
   * Renews `lease` for `leaseMs` from now (`0`: no expiry): `true` when renewed, `false` when
   * it no longer holds the key.
   */
  extendLock(lease: Lease, leaseMs: number): Promise<boolean> {
    return this.#guard(async () => {
      checkLease(lease);
      checkDuration('leaseMs', leaseMs);
      const dataKey = this.#layout.dataKey(lease.key);
      const startedAt = performance.now();
      const reply = await this.#calls.run('extendLock', () =>
        runScript(this.#client, EXTEND, [lockKeyOf(dataKey), lease.token, String(Math.ceil(leaseMs))]),
      );
      const renewed = Number(reply) === 1;
      this.#locks.extended(dataKey, lease.token, leaseMs, startedAt, renewed);
      return renewed;
    });
  }

  /**
   * Rejects waiting lock calls, settles calls in flight, closes the subscriber connection and
   * — only when the backend built it — the client. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    const error = new BackendUnavailableError('RedisBackend was closed.');
    this.#locks.close(error);
    this.#releases.close();
    if (this.#ownsClient) {
      if (this.#client.status === 'ready') {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          this.#client.quit().catch(() => undefined),
          new Promise((resolve) => {
            timer = setTimeout(resolve, this.#calls.timeoutMs);
          }),
        ]);
        clearTimeout(timer);
      }
      this.#client.disconnect();
    }
    this.#calls.failAll(error);
    this.#gate.dispose();
  }

  /** One acquire script: the lease when the lock was free, else how long the holder's lease has left. */
  async #attempt(key: string, dataKey: string, leaseMs: number): Promise<AttemptResult> {
    const token = randomUUID();
    const acquiredAt = performance.now();
    let reply: unknown;
    try {
      reply = await this.#calls.run('acquireLock', () =>
        runScript(this.#client, ACQUIRE, [lockKeyOf(dataKey), fenceKeyOf(dataKey), token, String(Math.ceil(leaseMs))]),
      );
    } catch (error) {
      // The script may have run although its answer was lost: let go of what it may have taken.
      void this.#giveBack(key, token);
      throw error;
    }
    const [won, value] = reply as [unknown, unknown];
    if (Number(won) === 1) return { lease: { key, token, fencingToken: BigInt(String(value)), acquiredAt } };
    const pttl = Number(value);
    return { retryInMs: pttl === -1 ? Infinity : Math.max(0, pttl) };
  }

  async #giveBack(key: string, token: string): Promise<void> {
    if (this.#closed) return;
    await this.releaseLock({ key, token, fencingToken: 0n }).catch((error: unknown) => {
      // Reported, not swallowed; the lease lapses by itself.
      process.emitWarning(
        `latchkey: RedisBackend could not give back an abandoned lease: ${error instanceof Error ? error.message : String(error)}`,
        {
          code: 'LATCHKEY_REDIS_RELEASE_FAILED',
        },
      );
    });
  }

  /**
   * Cluster batch: the keys' slot groups, merged per node into one pipeline each (one command
   * per slot group), all pipelines in flight at once. `add` queues a group's commands; `take`
   * reads each command's reply.
   */
  #batched(what: string, dataKeys: readonly string[], add: BatchAdd, take: BatchTake): Promise<void> {
    const cluster = this.#client as Cluster;
    return this.#calls.run(what, async () => {
      const batches = batchByNode(groupBySlot(dataKeys), (slot) => cluster.slots[slot]?.[0]);
      await Promise.all(batches.map((batch) => sendBatch(cluster, batch, add, take)));
    });
  }

  /** Whether a write must copy the caller's bytes: it may be sent after the call returns (see {@link toBuffer}). */
  #mustCopy(): boolean {
    return !this.#gate.ready || isCluster(this.#client);
  }

  #guard<T>(work: () => T | Promise<T>): Promise<T> {
    if (this.#closed) return closedRejection();
    try {
      return Promise.resolve(work());
    } catch (error) {
      return Promise.reject(error);
    }
  }
}

function isKey(key: unknown): key is string {
  return typeof key === 'string' && key.length > 0;
}

function invalidKey(key: unknown): InvalidKeyError {
  return new InvalidKeyError(key, 'backend keys must be non-empty strings');
}

function checkKey(key: unknown): asserts key is string {
  if (!isKey(key)) throw invalidKey(key);
}

function closedRejection(): Promise<never> {
  return Promise.reject(new ValidationError('RedisBackend is closed.'));
}

function nullToUndefined(value: Buffer | null): StoredValue | undefined {
  return value ?? undefined;
}

function noop(): void {}

function written(): WriteOutcome {
  return 'written';
}

function checkLease(lease: unknown): asserts lease is Lease {
  const record = lease as Partial<Lease> | null;
  if (typeof record !== 'object' || record === null || typeof record.token !== 'string' || typeof record.key !== 'string') {
    throw new ValidationError('RedisBackend: not a lease of this backend.');
  }
  checkKey(record.key);
}

function checkDuration(name: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new ValidationError(`RedisBackend: ${name} must be a finite number >= 0, got ${String(value)}.`);
  }
}

/**
 * The caller's bytes as a Buffer, taken at call time. ioredis copies a command's arguments
 * when it writes the command, which on a ready standalone client happens before the call
 * returns; where a command is sent later (the client is still connecting) or may be sent
 * again (Cluster redirections, a script resent after NOSCRIPT) — possibly after its
 * deadline, when the caller may already reuse the buffer — `copy` takes a private copy.
 */
function toBuffer(value: unknown, maxValueBytes: number, copy: boolean): Buffer {
  if (!(value instanceof Uint8Array)) throw new ValidationError('RedisBackend stores Uint8Array values only.');
  if (value.byteLength > maxValueBytes) throw new ValueTooLargeError(value.byteLength, maxValueBytes);
  if (copy) return Buffer.from(value);
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/**
 * The `PX` argument for an absolute expiry: the time left, rounded up, at least 1 ms
 * (an already past expiry still stores the value, for at most a millisecond; the store
 * filters it anyway). `''` for no expiry. Relative, so the server's clock does not matter.
 */
function ttlArg(expiresAt: number | undefined): string {
  if (expiresAt === undefined) return '';
  if (typeof expiresAt !== 'number' || Number.isNaN(expiresAt))
    throw new ValidationError(`RedisBackend: expiresAt must be a number, got ${String(expiresAt)}.`);
  if (expiresAt === Infinity) return '';
  return String(Math.max(1, Math.ceil(expiresAt - Date.now())));
}

type BatchAdd = (pipeline: ChainableCommander, group: SlotGroup) => unknown;
type BatchTake = (group: SlotGroup, reply: unknown) => void;

async function sendBatch(cluster: Cluster, batch: readonly SlotGroup[], add: BatchAdd, take: BatchTake): Promise<void> {
  const pipeline = cluster.pipeline();
  const owners: SlotGroup[] = [];
  for (const group of batch) {
    const before = pipeline.length;
    add(pipeline, group);
    for (let i = before; i < pipeline.length; i++) owners.push(group);
  }
  let replies: unknown[];
  try {
    replies = checkPipeline(await pipeline.exec());
  } catch (error) {
    // The slot map changed under us (resharding, failover): send each slot on its own, and
    // ioredis follows the redirection of a single-slot pipeline.
    if (batch.length > 1 && isRedirection(error)) {
      await Promise.all(batch.map((group) => sendBatch(cluster, [group], add, take)));
      return;
    }
    throw error;
  }
  replies.forEach((reply, i) => take(owners[i] as SlotGroup, reply));
}

function isRedirection(error: unknown): boolean {
  const message = error instanceof Error ? error.message : '';
  return message.startsWith('MOVED ') || message.startsWith('ASK ') || message.includes('same slots allocation group');
}

/** The replies of a pipeline, or its first error. */
function checkPipeline(results: [error: Error | null, reply: unknown][] | null): unknown[] {
  if (results === null) throw new BackendUnavailableError('RedisBackend: the pipeline was discarded (connection lost).');
  return results.map(([error, reply]) => {
    if (error !== null) throw error;
    return reply;
  });
}
