import {
  BackendClosedError,
  BackendTimeoutError,
  backoffRetry,
  CallRunner,
  checkAcquireOptions,
  checkDuration,
  checkExpiresAt,
  checkLease,
  checkStoredEntries,
  checkStoredKey,
  checkStoredKeys,
  checkStoredValue,
  LockWaiters,
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
import { SqliteDatabase } from './internal/database.js';
import { BACKEND_NAME, mapError } from './internal/errors.js';
import { lockedDelete, lockedSet, SqliteLocks } from './internal/locks.js';
import { resolveOptions, type ResolvedOptions, type SqliteBackendOptions } from './sqlite-backend-options.js';

/** The `code` of the process warning emitted once when the background purge keeps failing. */
export const PURGE_FAILED_WARNING = 'LATCHKEY_SQLITE_PURGE_FAILED';

/**
 * A latchkey backend on one SQLite file through better-sqlite3: every process on this machine
 * that opens the same file shares its values and its lease locks (WAL mode, one table, each
 * lock step and each lease-checked write one `BEGIN IMMEDIATE` transaction).
 *
 * Guarantees and limits (see the README for the details):
 * - better-sqlite3 is synchronous: a call blocks this process's event loop while SQLite works,
 *   and while it waits (at most `busyTimeoutMs` per try) for another connection's write
 *   transaction. Between tries the backend yields; every call settles within
 *   `operationTimeoutMs`, with `BackendTimeoutError` when the file stayed locked.
 * - Leases live on this machine's wall clock, which every process sharing the file reads.
 *   A file on a network filesystem is not supported (WAL needs shared memory).
 * - Expired values are never returned; they are removed by a background purge and by
 *   {@link SqliteBackend.purgeExpired}.
 * - After `close()` every call rejects with `BackendClosedError`.
 *
 * @example
 * const backend = new SqliteBackend({ filename: '/var/lib/app/cache.db' })
 * await store.configure(backend, { ttlMs: 60_000 })
 */
export class SqliteBackend implements Backend {
  readonly capabilities: BackendCapabilities;

  readonly #options: ResolvedOptions;
  readonly #db: SqliteDatabase;
  readonly #calls: CallRunner;
  readonly #protocol: SqliteLocks;
  readonly #locks: LockWaiters;
  readonly #purgeTimer: ReturnType<typeof setInterval> | undefined;
  #purgeWarned = false;
  #closing: Promise<void> | undefined;

  /**
   * Validates the options; the file is opened (and the table created) by the first call.
   * @throws {ValidationError} for invalid options (see {@link SqliteBackendOptions}).
   */
  constructor(options: SqliteBackendOptions) {
    const resolved = resolveOptions(options);
    this.#options = resolved;
    this.#db = new SqliteDatabase(resolved);
    this.#calls = new CallRunner({ name: BACKEND_NAME, timeoutMs: resolved.operationTimeoutMs, mapError });
    this.#protocol = new SqliteLocks(this.#db, this.#calls);
    // Releases by other processes cannot be heard: waiters poll (a read, no write lock) with backoff.
    this.#locks = new LockWaiters({ name: BACKEND_NAME, protocol: this.#protocol, retry: backoffRetry({ minMs: 2, maxMs: 50 }) });
    this.capabilities = Object.freeze({
      lockScope: resolved.private ? 'in-process' : 'distributed',
      atomicLeaseWrites: true,
      fencingTokens: true,
      ttlResolutionMs: 1,
      minLeaseMs: 1,
      maxValueBytes: resolved.maxValueBytes,
      mayEvict: false,
      callDeadlineMs: resolved.operationTimeoutMs,
    });
    if (resolved.purgeIntervalMs > 0 && !resolved.readonly) {
      this.#purgeTimer = setInterval(() => void this.#purgeInBackground(), resolved.purgeIntervalMs);
      this.#purgeTimer.unref();
    }
  }

  /** The database file, as given. */
  get filename(): string {
    return this.#options.filename;
  }

  /** The table that holds the keys. */
  get table(): string {
    return this.#options.table;
  }

  get(key: string): Promise<StoredValue | undefined> {
    return this.#run('get', (call) => {
      checkStoredKey(key);
      return this.#db.run(call, (statements) => statements.read(key, Date.now()));
    });
  }

  getMany(keys: readonly string[]): Promise<(StoredValue | undefined)[]> {
    return this.#run('getMany', (call) => {
      checkStoredKeys(keys);
      if (keys.length === 0) return [];
      return this.#db.run(call, (statements) => {
        const now = Date.now();
        // One snapshot; every answer its own buffer, duplicates included.
        return statements.inRead(() => keys.map((key) => statements.read(key, now)));
      });
    });
  }

  set(key: string, value: StoredValue, options: BackendWriteOptions = {}): Promise<WriteOutcome> {
    return this.#run('set', (call) => {
      checkStoredKey(key);
      checkStoredValue(value, this.#options.maxValueBytes, key);
      checkExpiresAt(options.expiresAt);
      const { lease } = options;
      if (lease !== undefined) checkLease(lease);
      const expiresAt = storedExpiry(options.expiresAt);
      return this.#db.run(call, (statements): WriteOutcome => {
        if (lease !== undefined) return lockedSet(statements, key, value, expiresAt, lease);
        statements.write(key, value, expiresAt);
        return 'written';
      });
    });
  }

  setMany(entries: readonly (readonly [string, StoredValue])[], options: BackendBatchWriteOptions = {}): Promise<void> {
    return this.#run('setMany', (call) => {
      checkStoredEntries(entries, this.#options.maxValueBytes);
      checkExpiresAt(options.expiresAt);
      if (entries.length === 0) return undefined;
      const expiresAt = storedExpiry(options.expiresAt);
      return this.#db.run(call, (statements) =>
        // In order, in one transaction: later duplicates win.
        statements.inWrite(() => {
          for (const [key, value] of entries) statements.write(key, value, expiresAt);
        }),
      );
    });
  }

  delete(key: string, options: BackendDeleteOptions = {}): Promise<DeleteOutcome> {
    return this.#run('delete', (call) => {
      checkStoredKey(key);
      const { lease } = options;
      if (lease !== undefined) checkLease(lease);
      return this.#db.run(call, (statements): DeleteOutcome => {
        if (lease !== undefined) return lockedDelete(statements, key, lease);
        return statements.inWrite(() => {
          const now = Date.now();
          const live = statements.state(key, null, now)?.live === true;
          statements.clear(key, now);
          return live ? 'deleted' : 'missing';
        });
      });
    });
  }

  deleteMany(keys: readonly string[]): Promise<void> {
    return this.#run('deleteMany', (call) => {
      checkStoredKeys(keys);
      if (keys.length === 0) return undefined;
      return this.#db.run(call, (statements) =>
        statements.inWrite(() => {
          const now = Date.now();
          for (const key of keys) statements.clear(key, now);
        }),
      );
    });
  }

  /**
   * Removes every value of the table in one write transaction: rows that never held a lock are
   * deleted, the others lose only their value (lease and fence stay, so holders keep their
   * locks and fencing tokens keep growing). Atomic: no value written before it survives.
   */
  clear(): Promise<void> {
    return this.#run('clear', (call) => this.#db.run(call, (statements) => statements.inWrite(() => statements.clearAll(Date.now()))));
  }

  /**
   * The keys of the readable values, in key order: keyset-paginated `SELECT`s of 1000 keys on
   * the primary key, each page one call under the deadline (no transaction is held between
   * pages, so writers are never blocked by a slow reader).
   */
  keys(): AsyncIterable<string> {
    return { [Symbol.asyncIterator]: () => this.#keys() };
  }

  async *#keys(): AsyncGenerator<string, void, undefined> {
    let after = '';
    for (;;) {
      const page = await this.#run('keys', (call) =>
        this.#db.run(call, (statements) => statements.keysAfter(after, Date.now(), KEYS_PAGE)),
      );
      yield* page;
      if (page.length < KEYS_PAGE) return;
      after = page[page.length - 1] as string;
    }
  }

  /** Whether a readable value is stored under `key` (`SELECT EXISTS`, expiry exact to the millisecond). */
  has(key: string): Promise<boolean> {
    return this.#run('has', (call) => {
      checkStoredKey(key);
      return this.#db.run(call, (statements) => statements.has(key, Date.now()));
    });
  }

  /**
   * Stores `value` only if `key` holds exactly `expected` and it is readable: one `UPDATE … WHERE
   * value = :expected` (SQLite compares BLOBs byte for byte). Leases are neither taken nor checked.
   */
  compareAndSet(key: string, expected: StoredValue, value: StoredValue, options: BackendCompareAndSetOptions = {}): Promise<boolean> {
    return this.#run('compareAndSet', (call) => {
      checkStoredKey(key);
      checkStoredValue(expected, undefined, key);
      checkStoredValue(value, this.#options.maxValueBytes, key);
      checkExpiresAt(options.expiresAt);
      const expiresAt = storedExpiry(options.expiresAt);
      return this.#db.run(call, (statements) => statements.compareAndSet(key, expected, value, expiresAt, Date.now()));
    });
  }

  acquireLock(key: string, options: AcquireLockOptions): Promise<Lease | undefined> {
    return this.#lockCall('acquireLock', () => {
      checkStoredKey(key);
      checkAcquireOptions(options);
      return this.#locks.acquire(key, options);
    });
  }

  releaseLock(lease: Lease): Promise<boolean> {
    return this.#lockCall('releaseLock', () => {
      checkLease(lease);
      return this.#locks.release(lease);
    });
  }

  extendLock(lease: Lease, leaseMs: number): Promise<boolean> {
    return this.#lockCall('extendLock', () => {
      checkLease(lease);
      checkDuration('leaseMs', leaseMs);
      return this.#locks.extend(lease, leaseMs);
    });
  }

  /**
   * Removes every expired value and every empty row (a deleted value of a key that was
   * locked, a lapsed or released lease without a value), `purgeBatchSize` rows per write
   * transaction. Reads never return expired values anyway: this only gives the space back
   * to SQLite (the file does not shrink; see the README). Resolves how many rows went.
   * @throws {BackendClosedError} after `close()`; the mapped SQLite error otherwise.
   */
  async purgeExpired(): Promise<number> {
    let removed = 0;
    for (;;) {
      const batch = await this.#purgeBatch();
      removed += batch;
      if (batch < this.#options.purgeBatchSize) return removed;
    }
  }

  /**
   * Stops the background purge, ends lock waits (with `BackendClosedError`), gives back every
   * lease this backend still holds, settles running calls, and closes the file. Every call
   * made after it started rejects with `BackendClosedError`. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    clearInterval(this.#purgeTimer);
    // Gives back held leases first, while the connection still works.
    await this.#locks.close();
    this.#calls.close();
    this.#db.close();
  }

  #purgeBatch(): Promise<number> {
    return this.#run('purgeExpired', (call) =>
      this.#db.run(call, (statements) => statements.inWrite(() => statements.purge(Date.now(), this.#options.purgeBatchSize))),
    );
  }

  async #purgeInBackground(): Promise<void> {
    try {
      await this.#purgeBatch();
    } catch (error) {
      // Contention or closing: the next round tries again (or there is none).
      if (error instanceof BackendTimeoutError || error instanceof BackendClosedError || this.#purgeWarned) return;
      this.#purgeWarned = true;
      process.emitWarning(
        `latchkey: SqliteBackend could not purge expired values from ${JSON.stringify(this.#options.filename)}: ${error instanceof Error ? error.message : String(error)}`,
        { code: PURGE_FAILED_WARNING, detail: 'Reads still never return expired values; the background purge keeps trying.' },
      );
    }
  }

  /** Runs one call under the deadline: refused once closing; a guard's throw becomes the rejection, before any I/O. */
  #run<T>(what: string, work: (call: Call) => Promise<T> | T): Promise<T> {
    if (this.#locks.closed) return Promise.reject(closedError(what));
    return this.#calls.run(what, work);
  }

  /** Starts a lock call: refused once closing; a guard's throw becomes the rejection. */
  #lockCall<T>(what: string, start: () => Promise<T>): Promise<T> {
    if (this.#locks.closed) return Promise.reject(closedError(what));
    try {
      return start();
    } catch (error) {
      return Promise.reject(error);
    }
  }
}

/** Keys per `keys()` page. */
const KEYS_PAGE = 1000;

function closedError(what: string): BackendClosedError {
  return new BackendClosedError(`${BACKEND_NAME} is closed: ${what} was not sent.`);
}

/** The stored form of an expiry: `null` for none (or `Infinity`), else whole ms rounded up. */
function storedExpiry(expiresAt: number | undefined): number | null {
  return expiresAt === undefined || expiresAt === Infinity ? null : Math.ceil(expiresAt);
}
