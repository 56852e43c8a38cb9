import { randomUUID } from 'node:crypto';
import type { AnyBulkWriteOperation, Collection } from 'mongodb';
import {
  ValidationError,
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
import { withDeadline } from './internal/deadline.js';
import {
  CLEAR_VALUE,
  FENCED,
  FIELD,
  MAX_KEY_BYTES,
  MAX_VALUE_BYTES,
  NEVER,
  ONE,
  UNFENCED,
  checkKey,
  checkValue,
  chunkByBytes,
  fenceOf,
  freeLockFilter,
  idFilter,
  idsFilter,
  isLive,
  leaseFilter,
  liveValueFilter,
  valueBytes,
  valueUpdate,
} from './internal/document.js';
import { NOT_IMPLEMENTED, errorCodes, isDuplicateKey, toLatchkeyError } from './internal/errors.js';
import { MongoLease, checkLease } from './internal/lease.js';
import { LockWaitQueue } from './internal/lock-wait-queue.js';
import {
  MIN_LOCK_POLL_INTERVAL_MS,
  resolveMongoOptions,
  type MongoBackendOptions,
  type ResolvedMongoOptions,
} from './mongo-backend-options.js';

/** Name of the TTL index {@link MongoBackend} creates on the expiry field. */
export const TTL_INDEX_NAME = 'latchkey_exp_ttl';

const CAPABILITIES: BackendCapabilities = Object.freeze({
  lockScope: 'distributed',
  atomicLeaseWrites: true,
  fencingTokens: true,
  ttlResolutionMs: 1,
  minLeaseMs: 1,
  maxKeyBytes: MAX_KEY_BYTES,
  maxValueBytes: MAX_VALUE_BYTES,
  mayEvict: false,
});

// Keys per batch command stay far below the 16 MiB command limit.
const MAX_BATCH_KEY_BYTES = 4 * 1024 * 1024;

let warnedNoTtlIndex = false;

/**
 * A latchkey backend on MongoDB (official `mongodb` driver), with locks of its own that every
 * process sharing the collection sees.
 *
 * One document per stored key holds the value, its expiry, the lease and the key's fencing
 * counter (see the README for the layout). Every lock operation is one atomic single-document
 * command: acquire is a `findOneAndUpdate` upsert that takes a free or lapsed lock and
 * increments the fence; writes and deletes under a lease filter on the owner token and an
 * unexpired lease, so the server refuses a stale write. Reads filter out expired values
 * themselves; the optional TTL index only reclaims space. Batch calls are one command each
 * (`find` with `$in`, one bulk write).
 *
 * Time: lease and value expiries are absolute dates taken from this process's clock, and the
 * server compares them with the clock of the process that sends each command. Processes
 * sharing a collection must keep their clocks within the store's lock safety window of each
 * other (1 s by default). A larger skew lets another process take a lease over early — and the
 * owner-token check then refuses the first holder's writes (`LockTimeoutError`): a lost lock,
 * never a silent overwrite.
 */
export class MongoBackend implements Backend {
  readonly capabilities: BackendCapabilities;

  readonly #options: ResolvedMongoOptions;
  readonly #collection: Collection;
  readonly #waiters: LockWaitQueue;
  #ttlIndex: Promise<void> | undefined;
  #closed = false;

  /**
   * Validates `options` and, given a `url`, builds the client (it connects on first use).
   * @throws {ValidationError} for a missing or bad option, naming it.
   */
  constructor(options: MongoBackendOptions) {
    this.#options = resolveMongoOptions(options);
    this.capabilities = Object.freeze({ ...CAPABILITIES, callDeadlineMs: this.#options.operationTimeoutMs });
    this.#collection = this.#options.client.db(this.#options.dbName).collection(this.#options.collection);
    this.#waiters = new LockWaitQueue((lease) => this.#release(lease), {
      minMs: Math.min(MIN_LOCK_POLL_INTERVAL_MS, this.#options.lockPollIntervalMs),
      maxMs: this.#options.lockPollIntervalMs,
    });
  }

  /** The collection holding the documents (for inspection and tests). */
  get collection(): Collection {
    return this.#collection;
  }

  /**
   * The live value of `key`, or `undefined` when it is missing, expired or only holds a lock.
   * @throws {InvalidKeyError} for a key it cannot store (before any I/O).
   * @throws {BackendUnavailableError | BackendTimeoutError | BackendError} when the server fails.
   */
  get(key: string): Promise<StoredValue | undefined> {
    return this.#run('get', (signal) => {
      // Look up by _id alone and check expiry here (the same rule as liveValueFilter): one
      // indexed lookup on every server, with nothing for the query planner to get wrong.
      return this.#collection
        .findOne(idFilter(key), { projection: { [FIELD.value]: 1, [FIELD.expiresAt]: 1, [FIELD.id]: 0 }, signal })
        .then((doc) => (doc !== null && isLive(doc, Date.now()) ? valueBytes(doc[FIELD.value]) : undefined));
    });
  }

  /** The live values of `keys` in input order (one `find`); duplicates get separate buffers. */
  getMany(keys: readonly string[]): Promise<(StoredValue | undefined)[]> {
    return this.#run('getMany', async (signal) => {
      if (!Array.isArray(keys)) throw new ValidationError('MongoBackend.getMany: keys must be an array.');
      keys.forEach(checkKey);
      if (keys.length === 0) return [];
      const unique = [...new Set(keys)];
      const now = new Date();
      const found = new Map<string, Uint8Array>();
      for (const chunk of chunkByBytes(unique, MAX_BATCH_KEY_BYTES)) {
        // One more than can match: the server sees the cursor is exhausted and closes it in
        // the first reply, so no getMore round trip follows.
        const docs = await this.#collection
          .find(idsFilter(chunk), { projection: { [FIELD.value]: 1, [FIELD.expiresAt]: 1 }, batchSize: chunk.length + 1, signal })
          .toArray();
        for (const doc of docs) {
          // Expiry checked here, as in get: the server only looks documents up by _id.
          if (!isLive(doc, now.getTime())) continue;
          const id: unknown = doc[FIELD.id];
          const bytes = valueBytes(doc[FIELD.value]);
          if (typeof id === 'string' && bytes !== undefined) found.set(id, bytes);
        }
      }
      const handedOut = new Set<Uint8Array>();
      return keys.map((key) => {
        const bytes = found.get(key);
        if (bytes === undefined) return undefined;
        // A duplicate key gets its own copy: callers may change the buffers they get. (Not
        // bytes.slice(): on a Buffer that is a view, not a copy.)
        if (handedOut.has(bytes)) return new Uint8Array(bytes);
        handedOut.add(bytes);
        return bytes;
      });
    });
  }

  /**
   * Stores `value` (an upsert), or with `options.lease` only while that lease holds the key on
   * the server (`'lease-lost'` otherwise, nothing written).
   * @throws {ValueTooLargeError} for a value over `maxValueBytes` (before any I/O).
   */
  set(key: string, value: StoredValue, options: BackendWriteOptions = {}): Promise<WriteOutcome> {
    return this.#run('set', async () => {
      checkKey(key);
      checkValue(key, value);
      const update = valueUpdate(value, options.expiresAt);
      const { lease } = options;
      this.#ensureTtlIndex();
      if (lease !== undefined) {
        checkLease(lease);
        if (lease.key !== key) return 'lease-lost';
        const result = await this.#collection.updateOne(leaseFilter(key, lease.token, new Date()), update);
        return result.matchedCount === 1 ? 'written' : 'lease-lost';
      }
      const upsert = { ...update, $setOnInsert: { [FIELD.purgeable]: true } };
      await retryDuplicateKey(() => this.#collection.updateOne(idFilter(key), upsert, { upsert: true }));
      return 'written';
    });
  }

  /**
   * One unordered bulk write of upserts. Entries are de-duplicated first (the last one wins),
   * so every operation touches a different document and their order does not matter; unordered
   * lets a sharded cluster apply them in parallel. Not atomic as a whole (nor on any backend).
   */
  setMany(entries: readonly (readonly [string, StoredValue])[], options: BackendBatchWriteOptions = {}): Promise<void> {
    return this.#run('setMany', async () => {
      if (!Array.isArray(entries)) throw new ValidationError('MongoBackend.setMany: entries must be an array of [key, value] pairs.');
      const last = new Map<string, Uint8Array>();
      for (const [key, value] of entries) {
        checkKey(key);
        checkValue(key, value);
        last.delete(key);
        last.set(key, value);
      }
      if (last.size === 0) return;
      this.#ensureTtlIndex();
      const operations: AnyBulkWriteOperation[] = [...last].map(([key, value]) => ({
        updateOne: {
          filter: idFilter(key),
          update: { ...valueUpdate(value, options.expiresAt), $setOnInsert: { [FIELD.purgeable]: true } },
          upsert: true,
        },
      }));
      // Upserts are idempotent, so a batch that lost an insert race is simply sent again.
      await retryDuplicateKey(() => this.#collection.bulkWrite(operations, { ordered: false }));
    });
  }

  /**
   * Without a lease: one ordered bulk write that first removes the document if it never held
   * a lock, then clears the value of a document that did (keeping its lock and fence). The
   * order matters: a fence never disappears, so a document that gained one between the two
   * steps is still cleared by the second. With a lease: one `findOneAndUpdate` that clears
   * the value only while the lease holds.
   */
  delete(key: string, options: BackendDeleteOptions = {}): Promise<DeleteOutcome> {
    return this.#run('delete', async () => {
      checkKey(key);
      const { lease } = options;
      const now = new Date();
      if (lease !== undefined) {
        checkLease(lease);
        if (lease.key !== key) return 'lease-lost';
        const before = await this.#collection.findOneAndUpdate(leaseFilter(key, lease.token, now), CLEAR_VALUE, {
          returnDocument: 'before',
        });
        if (before === null) return 'lease-lost';
        return isLive(before, now.getTime()) ? 'deleted' : 'missing';
      }
      const live = { ...idFilter(key), ...liveValueFilter(now) };
      const result = await this.#collection.bulkWrite(
        [{ deleteOne: { filter: { ...live, ...UNFENCED } } }, { updateOne: { filter: live, update: CLEAR_VALUE } }],
        { ordered: true },
      );
      return result.deletedCount + result.matchedCount > 0 ? 'deleted' : 'missing';
    });
  }

  /** One ordered bulk write per key chunk, with the same two steps as {@link delete}. */
  deleteMany(keys: readonly string[]): Promise<void> {
    return this.#run('deleteMany', async () => {
      if (!Array.isArray(keys)) throw new ValidationError('MongoBackend.deleteMany: keys must be an array.');
      keys.forEach(checkKey);
      for (const chunk of chunkByBytes([...new Set(keys)], MAX_BATCH_KEY_BYTES)) {
        const ids = idsFilter(chunk);
        await this.#collection.bulkWrite(
          [
            { deleteMany: { filter: { ...ids, ...UNFENCED } } },
            { updateMany: { filter: { ...ids, ...FENCED, [FIELD.value]: { $exists: true } }, update: CLEAR_VALUE } },
          ],
          { ordered: true },
        );
      }
    });
  }

  /**
   * Takes the lease on `key`. Waiters of this process queue in arrival order and only the
   * first one polls the server (see {@link MongoBackendOptions.lockPollIntervalMs}).
   */
  acquireLock(key: string, options: AcquireLockOptions): Promise<Lease | undefined> {
    try {
      this.#assertOpen();
      checkKey(key);
      const { leaseMs, waitMs, signal } = options;
      if (!Number.isFinite(leaseMs) || leaseMs < 0 || typeof waitMs !== 'number' || !(waitMs >= 0)) {
        throw new ValidationError('MongoBackend.acquireLock: leaseMs must be a finite number >= 0 and waitMs a number >= 0.');
      }
      return this.#waiters.wait(key, () => this.#tryAcquire(key, leaseMs), waitMs, signal);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Removes the lock if `lease`'s token still owns it; `true` when the lease was still live.
   * Never touches a lock another holder took over. Wakes this process's next waiter.
   */
  releaseLock(lease: Lease): Promise<boolean> {
    if (this.#closed) return Promise.reject(closedError());
    return this.#release(lease);
  }

  /** Renews `lease` for `leaseMs` from now (`0`: never lapses) while it still holds; `false` otherwise. */
  extendLock(lease: Lease, leaseMs: number): Promise<boolean> {
    return this.#run('extendLock', async () => {
      checkLease(lease);
      if (!Number.isFinite(leaseMs) || leaseMs < 0)
        throw new ValidationError('MongoBackend.extendLock: leaseMs must be a finite number >= 0.');
      const now = Date.now();
      const expiresAt = leaseMs === 0 ? NEVER : new Date(now + leaseMs);
      const result = await this.#collection.updateOne(leaseFilter(lease.key, lease.token, new Date(now)), {
        $set: { [FIELD.lockExpiresAt]: expiresAt },
      });
      if (result.matchedCount === 0) return false;
      if (lease instanceof MongoLease) lease.expiresAt = leaseMs === 0 ? Infinity : expiresAt.getTime();
      return true;
    });
  }

  /**
   * Removes expired values now, for servers without TTL indexes (FerretDB) or to reclaim
   * space sooner than the TTL monitor (every 60 s). Documents that never held a lock are
   * deleted; the others keep their lock and fence and lose only the value.
   * @returns How many documents were deleted or cleared.
   */
  purgeExpired(): Promise<number> {
    return this.#run('purgeExpired', async () => {
      const expired = { [FIELD.expiresAt]: { $lte: new Date() } };
      const result = await this.#collection.bulkWrite(
        [
          { deleteMany: { filter: { ...expired, ...UNFENCED } } },
          { updateMany: { filter: { ...expired, ...FENCED }, update: CLEAR_VALUE } },
        ],
        { ordered: true },
      );
      return result.deletedCount + result.modifiedCount;
    });
  }

  /**
   * Rejects waiting lock calls, and closes the client if this backend built it (a given
   * client stays open). Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiters.close(closedError());
    const { ownsClient, client, operationTimeoutMs } = this.#options;
    // Tries still on their way settle within the deadline; a lease they win is given back
    // before the client goes.
    await Promise.all([this.#waiters.drain(), this.#ttlIndex]);
    if (ownsClient) await withDeadline('MongoBackend.close', operationTimeoutMs, () => client.close());
  }

  /** Owner-checked release; also used to give back leases won after close (see {@link close}). */
  #release(lease: Lease): Promise<boolean> {
    return withDeadline('MongoBackend.releaseLock', this.#options.operationTimeoutMs, async () => {
      checkLease(lease);
      try {
        const result = await this.#collection.updateOne(
          { ...idFilter(lease.key), [FIELD.lockToken]: { $eq: lease.token } },
          { $unset: { [FIELD.lock]: '' } },
        );
        if (result.matchedCount === 0) return false;
        return lease instanceof MongoLease ? Date.now() < lease.expiresAt : true;
      } finally {
        this.#waiters.notifyReleased(lease.key);
      }
    });
  }

  #tryAcquire(key: string, leaseMs: number): Promise<Lease | undefined> {
    // One deadline for the whole attempt, retry included: the call must settle within
    // operationTimeoutMs, not once per round.
    return this.#run('acquireLock', async () => {
      // A duplicate-key error means the document exists and its lock was not free when we
      // looked — or it was created between our match and our insert. One more try tells apart.
      for (let round = 0; round < 2; round++) {
        const token = randomUUID();
        const acquiredAt = performance.now();
        const now = Date.now();
        const expiresAt = leaseMs === 0 ? NEVER : new Date(now + leaseMs);
        try {
          const doc = await this.#collection.findOneAndUpdate(
            freeLockFilter(key, new Date(now)),
            { $set: { [FIELD.lock]: { token, expiresAt } }, $inc: { [FIELD.fence]: ONE }, $unset: { [FIELD.purgeable]: '' } },
            { upsert: true, returnDocument: 'after', useBigInt64: true },
          );
          if (doc !== null) return new MongoLease(key, token, fenceOf(doc), acquiredAt, leaseMs === 0 ? Infinity : expiresAt.getTime());
        } catch (error) {
          if (!isDuplicateKey(error)) throw error;
        }
      }
      return undefined;
    });
  }

  /** Runs one call: refuses after close, bounds it with the deadline, maps driver errors. */
  #run<T>(what: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(closedError());
    return withDeadline(`MongoBackend.${what}`, this.#options.operationTimeoutMs, work);
  }

  /** Starts creating the TTL index with the first data write (not awaited by it). */
  #ensureTtlIndex(): void {
    if (!this.#options.documentTtlIndex || this.#ttlIndex !== undefined) return;
    this.#ttlIndex = withDeadline('MongoBackend.createIndex', this.#options.operationTimeoutMs, () =>
      this.#collection.createIndex(
        { [FIELD.expiresAt]: 1 },
        { name: TTL_INDEX_NAME, expireAfterSeconds: 0, partialFilterExpression: { [FIELD.purgeable]: true } },
      ),
    ).then(
      () => undefined,
      (error: unknown) => {
        const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
        if (code === 'BACKEND_UNAVAILABLE' || code === 'BACKEND_TIMEOUT') {
          // The server was not there: try again with the next call.
          this.#ttlIndex = undefined;
          return;
        }
        reportTtlIndexFailure(error);
      },
    );
  }

  #assertOpen(): void {
    if (this.#closed) throw closedError();
  }
}

async function retryDuplicateKey<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (!isDuplicateKey(error)) throw error;
    return write();
  }
}

function reportTtlIndexFailure(error: unknown): void {
  const cause = error instanceof Error && error.cause !== undefined ? error.cause : error;
  const unsupported = errorCodes(cause).includes(NOT_IMPLEMENTED);
  if (unsupported && warnedNoTtlIndex) return;
  if (unsupported) warnedNoTtlIndex = true;
  const detail = toLatchkeyError(cause, 'createIndex', 0).message;
  process.emitWarning(
    unsupported
      ? `latchkey: this MongoDB-wire server has no (partial) TTL indexes (FerretDB 1.x?), so expired values are not removed by the server; reads still filter them out. Call MongoBackend.purgeExpired() now and then, or pass documentTtlIndex: false to silence this. (${detail})`
      : `latchkey: MongoBackend could not create its TTL index "${TTL_INDEX_NAME}": ${detail}. Expired values stay until overwritten, deleted or purgeExpired(); reads still filter them out.`,
    { code: 'LATCHKEY_MONGO_TTL_INDEX' },
  );
}

function closedError(): Error {
  return new ValidationError('MongoBackend is closed.');
}
