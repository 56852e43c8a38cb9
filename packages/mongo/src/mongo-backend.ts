import { Binary, type AnyBulkWriteOperation, type Collection, type Document, type FindCursor } from 'mongodb';
import {
  BackendClosedError,
  BackendTimeoutError,
  BackendUnavailableError,
  CallRunner,
  LockWaiters,
  backoffRetry,
  checkAcquireOptions,
  checkDuration,
  checkExpiresAt,
  checkLease,
  checkStoredValue,
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
import { ClientConnection } from './internal/connection.js';
import {
  CLEAR_VALUE,
  FENCED,
  FIELD,
  MAX_KEY_BYTES,
  MAX_VALUE_BYTES,
  UNFENCED,
  checkEntries,
  checkKey,
  checkKeys,
  chunkByBytes,
  idFilter,
  idsFilter,
  isLive,
  leaseFilter,
  liveValueFilter,
  valueBytes,
  valueUpdate,
} from './internal/document.js';
import { NOT_IMPLEMENTED, errorCodes, isDuplicateKey, isTopologyClosed, toLatchkeyError } from './internal/errors.js';
import { MongoLocks } from './internal/locks.js';
import {
  MIN_LOCK_POLL_INTERVAL_MS,
  resolveMongoOptions,
  type MongoBackendOptions,
  type ResolvedMongoOptions,
} from './mongo-backend-options.js';

/** Name of the TTL index {@link MongoBackend} creates on the expiry field. */
export const TTL_INDEX_NAME = 'latchkey_exp_ttl';

const NAME = 'MongoBackend';

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

/**
 * What a data write that creates a document adds when the backend keeps a TTL index: the mark
 * the index is partial on. Without the index nothing reads it, so it is left out: one field
 * less in every document (on FerretDB 1.x a `find` of 100 three-field documents took ~15%
 * longer than of the same documents without it).
 */
const PURGEABLE: Document = Object.freeze({ [FIELD.purgeable]: true });

/** Documents per `keys()` cursor batch: few round trips, bounded memory. */
const KEYS_BATCH = 1000;
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
  readonly #calls: CallRunner;
  readonly #locks: LockWaiters;
  #ttlIndex: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  /**
   * Validates `options` and, given a `url`, builds the client (it connects on first use).
   * @throws {ValidationError} for a missing or bad option, naming it.
   */
  constructor(options: MongoBackendOptions) {
    this.#options = resolveMongoOptions(options);
    const { client, ownsClient, operationTimeoutMs, lockPollIntervalMs } = this.#options;
    this.capabilities = Object.freeze({ ...CAPABILITIES, callDeadlineMs: operationTimeoutMs });
    this.#collection = client.db(this.#options.dbName).collection(this.#options.collection);
    // A given client is the application's to connect; one built here is connected (and
    // reconnected after a failed connect) by the backend.
    const connection = ownsClient ? new ClientConnection(client) : undefined;
    this.#calls = new CallRunner({
      name: NAME,
      timeoutMs: operationTimeoutMs,
      mapError: (error, call) => {
        if (isTopologyClosed(error)) connection?.lost();
        return toLatchkeyError(error, call);
      },
      ...(connection === undefined ? {} : { connection }),
    });
    const protocol = new MongoLocks(this.#collection, this.#calls);
    this.#locks = new LockWaiters({
      name: NAME,
      protocol,
      retry: backoffRetry({ minMs: Math.min(MIN_LOCK_POLL_INTERVAL_MS, lockPollIntervalMs), maxMs: lockPollIntervalMs }),
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
   * @throws {BackendClosedError} after {@link close}.
   */
  get(key: string): Promise<StoredValue | undefined> {
    return this.#run(
      'get',
      () => checkKey(key),
      // Look up by _id alone and check expiry here (the same rule as liveValueFilter): one
      // indexed lookup on every server, with nothing for the query planner to get wrong.
      (_, call) =>
        this.#collection
          .findOne(idFilter(key), { projection: { [FIELD.value]: 1, [FIELD.expiresAt]: 1, [FIELD.id]: 0 }, signal: call.signal })
          .then((doc) => (doc !== null && isLive(doc, Date.now()) ? valueBytes(doc[FIELD.value]) : undefined)),
    );
  }

  /** The live values of `keys` in input order (one `find`); duplicates get separate buffers. */
  getMany(keys: readonly string[]): Promise<(StoredValue | undefined)[]> {
    return this.#guard(
      'getMany',
      () => {
        checkKeys(keys);
        return keys.slice();
      },
      // An empty batch resolves without I/O (not even a connect).
      (copy) => (copy.length === 0 ? Promise.resolve([]) : this.#calls.run('getMany', (call) => this.#getMany(copy, call))),
    );
  }

  /**
   * Stores `value` (an upsert), or with `options.lease` only while that lease holds the key on
   * the server (`'lease-lost'` otherwise, nothing written).
   * @throws {ValueTooLargeError} for a value over `maxValueBytes` (before any I/O).
   * @throws {ValidationError} for a malformed `options.lease`.
   */
  set(key: string, value: StoredValue, options: BackendWriteOptions = {}): Promise<WriteOutcome> {
    const { lease } = options;
    return this.#run(
      'set',
      () => {
        checkKey(key);
        checkStoredValue(value, MAX_VALUE_BYTES, key);
        if (lease !== undefined) checkLease(lease);
        return valueUpdate(value, options.expiresAt);
      },
      async (update) => {
        if (lease !== undefined && lease.key !== key) return 'lease-lost';
        this.#ensureTtlIndex();
        if (lease !== undefined) {
          const result = await this.#collection.updateOne(leaseFilter(key, lease.token, new Date()), update);
          return result.matchedCount === 1 ? 'written' : 'lease-lost';
        }
        const upsert = this.#options.documentTtlIndex ? { ...update, $setOnInsert: PURGEABLE } : update;
        await retryDuplicateKey(() => this.#collection.updateOne(idFilter(key), upsert, { upsert: true }));
        return 'written';
      },
    );
  }

  /**
   * One unordered bulk write of upserts. Entries are de-duplicated first (the last one wins),
   * so every operation touches a different document and their order does not matter; unordered
   * lets a sharded cluster apply them in parallel. Not atomic as a whole (nor on any backend).
   */
  setMany(entries: readonly (readonly [string, StoredValue])[], options: BackendBatchWriteOptions = {}): Promise<void> {
    return this.#guard(
      'setMany',
      () => {
        checkEntries(entries);
        const last = new Map<string, Uint8Array>();
        for (const [key, value] of entries) {
          last.delete(key);
          last.set(key, value);
        }
        const marked = this.#options.documentTtlIndex;
        return [...last].map(([key, value]): AnyBulkWriteOperation => {
          const update = valueUpdate(value, options.expiresAt);
          return { updateOne: { filter: idFilter(key), update: marked ? { ...update, $setOnInsert: PURGEABLE } : update, upsert: true } };
        });
      },
      (operations) =>
        operations.length === 0
          ? Promise.resolve()
          : this.#calls.run('setMany', async () => {
              this.#ensureTtlIndex();
              // Upserts are idempotent, so a batch that lost an insert race is simply sent again.
              await retryDuplicateKey(() => this.#collection.bulkWrite(operations, { ordered: false }));
            }),
    );
  }

  /**
   * Without a lease: one ordered bulk write that first removes the document if it never held
   * a lock, then clears the value of a document that did (keeping its lock and fence). The
   * order matters: a fence never disappears, so a document that gained one between the two
   * steps is still cleared by the second. With a lease: one `findOneAndUpdate` that clears
   * the value only while the lease holds.
   * @throws {ValidationError} for a malformed `options.lease`.
   */
  delete(key: string, options: BackendDeleteOptions = {}): Promise<DeleteOutcome> {
    const { lease } = options;
    return this.#run(
      'delete',
      () => {
        checkKey(key);
        if (lease !== undefined) checkLease(lease);
      },
      async () => {
        const now = new Date();
        if (lease !== undefined) {
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
      },
    );
  }

  /** One ordered bulk write per key chunk, with the same two steps as {@link delete}. */
  deleteMany(keys: readonly string[]): Promise<void> {
    return this.#guard(
      'deleteMany',
      () => {
        checkKeys(keys);
        return keys.slice();
      },
      (copy) => (copy.length === 0 ? Promise.resolve() : this.#calls.run('deleteMany', (call) => this.#deleteMany(copy, call))),
    );
  }

  /**
   * Removes every value of the collection and nothing else, in one ordered bulk write: documents
   * that never held a lock are deleted (`deleteMany`), and documents keeping a fence counter
   * lose only their value (`updateMany` unsetting it), so leases and fencing counters survive.
   * The order matters as in {@link delete}: a document that gains a fence between the steps is
   * cleared by the second. Not atomic across documents: a value written meanwhile may survive.
   */
  clear(): Promise<void> {
    return this.#run('clear', noop, async () => {
      await this.#collection.bulkWrite(
        [
          { deleteMany: { filter: UNFENCED } },
          { updateMany: { filter: { ...FENCED, [FIELD.value]: { $exists: true } }, update: CLEAR_VALUE } },
        ],
        { ordered: true },
      );
    });
  }

  /**
   * The keys of the live values: one cursor over the documents holding a value (projection
   * `_id` only, batches of 1000), each batch fetched under the call deadline. Documents that
   * hold only a lock or a fence are never yielded. A caller that stops early closes the cursor.
   */
  keys(): AsyncIterable<string> {
    return { [Symbol.asyncIterator]: () => this.#keys() };
  }

  async *#keys(): AsyncGenerator<string, void, undefined> {
    const cursor: FindCursor = await this.#run('keys', noop, async () =>
      this.#collection.find(liveValueFilter(new Date()), { projection: { [FIELD.id]: 1 }, batchSize: KEYS_BATCH }),
    );
    let exhausted = false;
    try {
      while (true) {
        const doc = await this.#calls.run('keys', () => cursor.next());
        if (doc === null) {
          exhausted = true;
          return;
        }
        const id: unknown = doc[FIELD.id];
        if (typeof id === 'string') yield id;
      }
    } finally {
      // An abandoned cursor holds server memory until its 10-minute idle timeout: close it now.
      if (!exhausted) await this.#calls.run('keys', () => cursor.close(), { evenIfClosed: true });
    }
  }

  /**
   * Whether a live value is stored under `key`: one `findOne` by `_id` that projects only the
   * expiry (the value is not transferred), checked here as in {@link get}.
   * @throws {InvalidKeyError} for a key it cannot store (before any I/O).
   */
  has(key: string): Promise<boolean> {
    return this.#run(
      'has',
      () => checkKey(key),
      async (_, call) => {
        const doc = await this.#collection.findOne(
          { ...idFilter(key), [FIELD.value]: { $exists: true } },
          { projection: { [FIELD.expiresAt]: 1, [FIELD.id]: 0 }, signal: call.signal },
        );
        return doc !== null && isExpiryLive(doc, Date.now());
      },
    );
  }

  /**
   * Stores `value` only if the stored bytes are exactly `expected` and live: one `updateOne`
   * whose filter holds `_id`, the expected value (BSON binary equality: same length, same bytes)
   * and the live-value condition. `true` when a document matched. Locks and fences are untouched.
   * @throws {InvalidKeyError | ValueTooLargeError} for bad input (before any I/O).
   */
  compareAndSet(key: string, expected: StoredValue, value: StoredValue, options: BackendCompareAndSetOptions = {}): Promise<boolean> {
    return this.#run(
      'compareAndSet',
      () => {
        checkKey(key);
        checkStoredValue(expected, MAX_VALUE_BYTES, key);
        checkStoredValue(value, MAX_VALUE_BYTES, key);
        checkExpiresAt(options.expiresAt);
        return { expected: new Binary(new Uint8Array(expected)), update: valueUpdate(value, options.expiresAt) };
      },
      async ({ expected: bytes, update }) => {
        const filter = { ...idFilter(key), ...liveValueFilter(new Date()), [FIELD.value]: bytes };
        const result = await this.#collection.updateOne(filter, update);
        return result.matchedCount === 1;
      },
    );
  }

  /**
   * Takes the lease on `key`. Waiters of this process queue in arrival order and only the
   * first one polls the server (see {@link MongoBackendOptions.lockPollIntervalMs}).
   * @throws {BackendClosedError} after {@link close}, or when close ends the wait.
   */
  acquireLock(key: string, options: AcquireLockOptions): Promise<Lease | undefined> {
    return this.#guard(
      'acquireLock',
      () => {
        checkKey(key);
        checkAcquireOptions(options);
      },
      () => this.#locks.acquire(key, options),
    );
  }

  /**
   * Removes the lock if `lease`'s token still owns it; `true` when the lease was still live.
   * Never touches a lock another holder took over. Wakes this process's next waiter.
   * @throws {ValidationError} for a malformed lease.
   */
  releaseLock(lease: Lease): Promise<boolean> {
    return this.#guard(
      'releaseLock',
      () => checkLease(lease),
      () => this.#locks.release(lease),
    );
  }

  /** Renews `lease` for `leaseMs` from now (`0`: never lapses) while it still holds; `false` otherwise. */
  extendLock(lease: Lease, leaseMs: number): Promise<boolean> {
    return this.#guard(
      'extendLock',
      () => {
        checkLease(lease);
        checkDuration('leaseMs', leaseMs);
      },
      () => this.#locks.extend(lease, leaseMs),
    );
  }

  /**
   * Removes expired values now, for servers without TTL indexes (FerretDB) or to reclaim
   * space sooner than the TTL monitor (every 60 s). Documents that never held a lock are
   * deleted; the others keep their lock and fence and lose only the value.
   * @returns How many documents were deleted or cleared.
   */
  purgeExpired(): Promise<number> {
    return this.#run('purgeExpired', noop, async () => {
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
   * Rejects waiting lock calls with `BackendClosedError`, gives back every lease this process
   * holds, and then closes the client if this backend built it (a given client stays open).
   * Every call made after close started rejects with `BackendClosedError`. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    await Promise.all([this.#locks.close(), this.#ttlIndex]);
    this.#calls.close();
    const { ownsClient, client } = this.#options;
    if (ownsClient) await this.#calls.run('close', () => client.close(), { evenIfClosed: true });
  }

  /**
   * Refuses calls after close (nothing sent) and bad input (before any I/O), then starts the
   * call with what `prepare` made of its arguments (at once: the caller may reuse them).
   */
  #guard<P, T>(what: string, prepare: () => P, start: (prepared: P) => Promise<T>): Promise<T> {
    let prepared: P;
    try {
      if (this.#locks.closed) throw new BackendClosedError(`${NAME} is closed: ${what} was not sent.`);
      prepared = prepare();
    } catch (error) {
      return Promise.reject(error);
    }
    return start(prepared);
  }

  /** {@link #guard}, then `work` under the call deadline. */
  #run<P, T>(what: string, prepare: () => P, work: (prepared: P, call: Call) => Promise<T>): Promise<T> {
    return this.#guard(what, prepare, (prepared) => this.#calls.run(what, (call) => work(prepared, call)));
  }

  async #getMany(keys: readonly string[], call: Call): Promise<(StoredValue | undefined)[]> {
    const now = Date.now();
    const found = new Map<string, Uint8Array>();
    for (const chunk of chunkByBytes([...new Set(keys)], MAX_BATCH_KEY_BYTES)) {
      call.check();
      // One more than can match: the server sees the cursor is exhausted and closes it in
      // the first reply, so no getMore round trip follows.
      const docs = await this.#collection
        .find(idsFilter(chunk), {
          projection: { [FIELD.value]: 1, [FIELD.expiresAt]: 1 },
          batchSize: chunk.length + 1,
          signal: call.signal,
        })
        .toArray();
      for (const doc of docs) {
        // Expiry checked here, as in get: the server only looks documents up by _id.
        if (!isLive(doc, now)) continue;
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
  }

  async #deleteMany(keys: readonly string[], call: Call): Promise<void> {
    for (const chunk of chunkByBytes([...new Set(keys)], MAX_BATCH_KEY_BYTES)) {
      call.check();
      const ids = idsFilter(chunk);
      await this.#collection.bulkWrite(
        [
          { deleteMany: { filter: { ...ids, ...UNFENCED } } },
          { updateMany: { filter: { ...ids, ...FENCED, [FIELD.value]: { $exists: true } }, update: CLEAR_VALUE } },
        ],
        { ordered: true },
      );
    }
  }

  /** Starts creating the TTL index with the first data write (not awaited by it). */
  #ensureTtlIndex(): void {
    if (!this.#options.documentTtlIndex || this.#ttlIndex !== undefined) return;
    this.#ttlIndex = this.#calls
      .run('createIndex', () =>
        this.#collection.createIndex(
          { [FIELD.expiresAt]: 1 },
          { name: TTL_INDEX_NAME, expireAfterSeconds: 0, partialFilterExpression: { [FIELD.purgeable]: true } },
        ),
      )
      .then(
        () => undefined,
        (error: unknown) => {
          if (error instanceof BackendUnavailableError || error instanceof BackendTimeoutError || error instanceof BackendClosedError) {
            // The server was not there: try again with the next write.
            this.#ttlIndex = undefined;
            return;
          }
          reportTtlIndexFailure(error);
        },
      );
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
  const unsupported = errorCodes(error instanceof Error ? error.cause : error).includes(NOT_IMPLEMENTED);
  if (unsupported && warnedNoTtlIndex) return;
  if (unsupported) warnedNoTtlIndex = true;
  const detail = error instanceof Error ? error.message : String(error);
  process.emitWarning(
    unsupported
      ? `latchkey: this MongoDB-wire server has no (partial) TTL indexes (FerretDB 1.x?), so expired values are not removed by the server; reads still filter them out. Call MongoBackend.purgeExpired() now and then, or pass documentTtlIndex: false to silence this. (${detail})`
      : `latchkey: MongoBackend could not create its TTL index "${TTL_INDEX_NAME}": ${detail}. Expired values stay until overwritten, deleted or purgeExpired(); reads still filter them out.`,
    { code: 'LATCHKEY_MONGO_TTL_INDEX' },
  );
}

function noop(): void {}

/** True when the expiry of `doc` (a projection without the value) has not passed at `now`, as in {@link isLive}. */
function isExpiryLive(doc: Document, now: number): boolean {
  const exp: unknown = doc[FIELD.expiresAt];
  return exp === undefined || exp === null || (exp instanceof Date && exp.getTime() > now);
}
