import {
  BackendClosedError,
  CallRunner,
  checkAcquireOptions,
  checkDuration,
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
  type DeleteOutcome,
  type Lease,
  type StoredValue,
  type WriteOutcome,
} from '@latchkey/core';
import type { Pool } from 'pg';
import { Database } from './internal/database.js';
import { toLatchkeyError } from './internal/errors.js';
import { PostgresLocks } from './internal/locks.js';
import { Purger } from './internal/purge.js';
import {
  checkTextKey,
  encodeByteaArray,
  expiryParam,
  KEYS_PAGE_SIZE,
  releaseChannel,
  statementsFor,
  type Statements,
} from './internal/sql.js';
import { resolvePostgresBackendOptions, type PostgresBackendOptions } from './postgres-backend-options.js';

const NAME = 'PostgresBackend';

/**
 * The largest stored key in UTF-8 bytes: a btree entry must fit in a third of a page
 * (2,704 bytes with 8 kB pages), and the release announcement carries the key too.
 */
export const MAX_KEY_BYTES = 2048;

const CAPABILITIES: BackendCapabilities = Object.freeze({
  lockScope: 'distributed',
  atomicLeaseWrites: true,
  fencingTokens: true,
  ttlResolutionMs: 1,
  minLeaseMs: 1,
  maxKeyBytes: MAX_KEY_BYTES,
  mayEvict: false,
});

/**
 * A latchkey backend on PostgreSQL through pg: one row per key in one table per store.
 *
 * - A row holds the value (`bytea`), its expiry, the lock (token and lapse) and the key's
 *   fencing counter, which survives the value's deletion.
 * - Every conditional operation is one SQL statement: acquire is an `INSERT … ON CONFLICT DO
 *   UPDATE … WHERE` the lock is free or lapsed (bumping the fence), a locked write or delete
 *   checks the token in its `WHERE`. Leases and expiries run on the server's clock.
 * - Waiters in one process queue locally in FIFO order; only the first asks the server, woken
 *   by releases announced with `NOTIFY` (heard on one `LISTEN` connection), by the holder's
 *   lease running out, or by its own wait ending.
 * - Batch calls are one statement each; `getMany` keeps input order and duplicates.
 * - Every optional data method is native: `clear` (one statement; locks and fences stay),
 *   `keys` (keyset pages of the primary key), `has` and an atomic `compareAndSet` (one `UPDATE`).
 * - Every call settles within `operationTimeoutMs` with its result or a typed error; calls
 *   after `close()` reject with `BackendClosedError`.
 *
 * See the README for the table, the guarantees of the locks and what they cost the server.
 */
export class PostgresBackend implements Backend {
  readonly capabilities: BackendCapabilities;
  /** Absent on purpose: the store's default, `sha1KeyMangler`, gives short fixed-length keys. */
  readonly keyMangler = undefined;

  readonly #db: Database;
  readonly #statements: Statements;
  readonly #maxValueBytes: number;
  readonly #calls: CallRunner;
  readonly #locks: PostgresLocks;
  readonly #purger: Purger;
  readonly #table: string;
  #closing: Promise<void> | undefined;

  /**
   * @throws {ValidationError} for invalid options (before any I/O: the pool connects on first use).
   */
  constructor(options: PostgresBackendOptions = {}) {
    const resolved = resolvePostgresBackendOptions(options);
    const { timeoutMs, maxValueBytes, table } = resolved;
    this.capabilities = Object.freeze({ ...CAPABILITIES, maxValueBytes, callDeadlineMs: timeoutMs });
    this.#maxValueBytes = maxValueBytes;
    this.#table = table.text;
    this.#statements = statementsFor(table);
    this.#db = new Database({ options, resolved, schema: this.#statements.schema });
    this.#calls = new CallRunner({ name: NAME, timeoutMs, mapError: toLatchkeyError });
    this.#locks = new PostgresLocks({
      db: this.#db,
      statements: this.#statements,
      calls: this.#calls,
      channel: releaseChannel(table),
      listen: resolved.listen,
      timeoutMs,
    });
    this.#purger = new Purger({
      intervalMs: resolved.purgeIntervalMs,
      batchSize: resolved.purgeBatchSize,
      purge: (batchSize) => this.#purge(batchSize),
    });
  }

  /** The pg pool in use (the given one, or the one the backend built). */
  get pool(): Pool {
    return this.#db.pool;
  }

  /** The table of this backend, as configured (`name` or `schema.name`). */
  get table(): string {
    return this.#table;
  }

  /**
   * The stored bytes of `key`, or `undefined` when missing or expired.
   * @throws {InvalidKeyError} for a bad key, before any I/O.
   * @throws {BackendUnavailableError | BackendTimeoutError | BackendError} as described in the README.
   */
  get(key: string): Promise<StoredValue | undefined> {
    return this.#guard('get', () => {
      checkKey(key);
      return this.#run('get', async () => (await this.#db.query<{ value: Buffer }>(this.#statements.get, [key])).rows[0]?.value);
    });
  }

  /**
   * The stored bytes of each key in input order (duplicates included), `undefined` for missing
   * ones: one statement; no I/O for `[]`.
   * @throws {InvalidKeyError} for a bad key, before any I/O.
   */
  getMany(keys: readonly string[]): Promise<(StoredValue | undefined)[]> {
    return this.#guard('getMany', () => {
      checkKeys(keys);
      if (keys.length === 0) return [];
      return this.#run('getMany', async () => {
        const { rows } = await this.#db.query<{ value: Buffer | null }>(this.#statements.getMany, [[...keys]]);
        return rows.map((row) => row.value ?? undefined);
      });
    });
  }

  /**
   * Stores `value` (expiring at `options.expiresAt`, on the server's clock). With
   * `options.lease`, writes only while that lease holds the key, else resolves `'lease-lost'`;
   * one statement either way.
   * @throws {InvalidKeyError | ValidationError | ValueTooLargeError} for bad input, before any I/O.
   */
  set(key: string, value: StoredValue, options: BackendWriteOptions = {}): Promise<WriteOutcome> {
    return this.#guard('set', () => {
      checkKey(key);
      checkStoredValue(value, this.#maxValueBytes, key);
      const { lease, expiresAt } = options;
      checkExpiresAt(expiresAt);
      if (lease !== undefined) checkLease(lease);
      if (lease !== undefined && lease.key !== key) return 'lease-lost';
      // A copy taken now: the statement may be sent after the call returns (a pooled connection may be busy).
      const bytes = Buffer.from(value);
      const expiry = expiryParam(expiresAt);
      if (lease === undefined) {
        return this.#run('set', async (): Promise<WriteOutcome> => {
          await this.#db.query(this.#statements.set, [key, bytes, expiry]);
          return 'written';
        });
      }
      return this.#run('set', async (): Promise<WriteOutcome> => {
        const result = await this.#db.query(this.#statements.lockedSet, [key, lease.token, bytes, expiry]);
        return (result.rowCount ?? 0) > 0 ? 'written' : 'lease-lost';
      });
    });
  }

  /**
   * Stores every entry (later duplicates win) in one statement, the values as one binary
   * array. No I/O for `[]`.
   * @throws {InvalidKeyError | ValidationError | ValueTooLargeError} for bad input, before any I/O.
   */
  setMany(entries: readonly (readonly [string, StoredValue])[], options: BackendBatchWriteOptions = {}): Promise<void> {
    return this.#guard('setMany', () => {
      checkStoredEntries(entries, this.#maxValueBytes, MAX_KEY_BYTES);
      for (const [key] of entries) checkTextKey(key);
      checkExpiresAt(options.expiresAt);
      if (entries.length === 0) return undefined;
      // One row per key (an upsert may not touch a row twice); the Map keeps the last value.
      const latest = new Map(entries);
      const values = encodeByteaArray([...latest.values()]);
      const expiry = expiryParam(options.expiresAt);
      const keys = [...latest.keys()];
      return this.#run('setMany', async () => {
        await this.#db.query(this.#statements.setMany, [keys, values, expiry]);
      });
    });
  }

  /**
   * Deletes `key`'s value: `'deleted'` or `'missing'`. With `options.lease`, deletes only while
   * that lease holds the key, else resolves `'lease-lost'`; one statement either way. The
   * key's lock and fencing counter stay.
   * @throws {InvalidKeyError} for a bad key; {@link ValidationError} for a malformed lease; before any I/O.
   */
  delete(key: string, options: BackendDeleteOptions = {}): Promise<DeleteOutcome> {
    return this.#guard('delete', () => {
      checkKey(key);
      const { lease } = options;
      if (lease !== undefined) checkLease(lease);
      if (lease === undefined) {
        return this.#run('delete', async (): Promise<DeleteOutcome> => {
          const result = await this.#db.query(this.#statements.delete, [key]);
          return (result.rowCount ?? 0) > 0 ? 'deleted' : 'missing';
        });
      }
      if (lease.key !== key) return 'lease-lost';
      return this.#run('delete', async (): Promise<DeleteOutcome> => {
        const { rows } = await this.#db.query<{ live: boolean }>(this.#statements.lockedDelete, [key, lease.token]);
        const row = rows[0];
        return row === undefined ? 'lease-lost' : row.live ? 'deleted' : 'missing';
      });
    });
  }

  /**
   * Deletes every key's value in one statement, ignoring missing keys. No I/O for `[]`.
   * @throws {InvalidKeyError} for a bad key, before any I/O.
   */
  deleteMany(keys: readonly string[]): Promise<void> {
    return this.#guard('deleteMany', () => {
      checkKeys(keys);
      if (keys.length === 0) return undefined;
      const unique = [...new Set(keys)];
      return this.#run('deleteMany', async () => {
        await this.#db.query(this.#statements.deleteMany, [unique]);
      });
    });
  }

  /**
   * Removes every value of this table in one statement: rows that never held a lock are
   * deleted, the others keep their lock and fencing counter (a holder's lease-checked write
   * still succeeds, the next fencing token is still larger). Locks its rows in key order.
   * @throws {BackendUnavailableError | BackendTimeoutError | BackendError} as described in the README.
   */
  clear(): Promise<void> {
    return this.#guard('clear', () =>
      this.#run('clear', async () => {
        await this.#db.query(this.#statements.clear, []);
      }),
    );
  }

  /**
   * The stored keys of the live values of this table, in key order, read {@link KEYS_PAGE_SIZE}
   * at a time (each page one statement, continuing after the last key of the page before, so
   * nothing stays open on the server between pages). Never a key that only holds a lock.
   * A failed page rejects that `next()`.
   */
  keys(): AsyncIterable<string> {
    return { [Symbol.asyncIterator]: () => this.#keys() };
  }

  async *#keys(): AsyncGenerator<string, void, undefined> {
    let after = '';
    for (;;) {
      const page = await this.#guard('keys', () =>
        this.#run('keys', async () => {
          const { rows } = await this.#db.query<{ key: string }>(this.#statements.keys, [after, KEYS_PAGE_SIZE]);
          return rows.map((row) => row.key);
        }),
      );
      yield* page;
      const last = page.at(-1);
      if (last === undefined || page.length < KEYS_PAGE_SIZE) return;
      after = last;
    }
  }

  /**
   * Whether a live value is stored under `key` (its expiry on the server's clock), without
   * reading the value.
   * @throws {InvalidKeyError} for a bad key, before any I/O.
   */
  has(key: string): Promise<boolean> {
    return this.#guard('has', () => {
      checkKey(key);
      return this.#run('has', async () => (await this.#db.query<{ found: boolean }>(this.#statements.has, [key])).rows[0]?.found === true);
    });
  }

  /**
   * Stores `value` (expiring at `options.expiresAt`) only if the live value of `key` is
   * exactly `expected` (`bytea` equality), in one `UPDATE`: `true` when written, `false` when
   * the key is missing, expired or holds other bytes. Leaves the key's lock alone.
   * @throws {InvalidKeyError | ValidationError | ValueTooLargeError} for bad input, before any I/O.
   */
  compareAndSet(key: string, expected: StoredValue, value: StoredValue, options: BackendCompareAndSetOptions = {}): Promise<boolean> {
    return this.#guard('compareAndSet', () => {
      checkKey(key);
      // A larger `expected` can never be stored, so it only never matches.
      checkStoredValue(expected, undefined, key);
      checkStoredValue(value, this.#maxValueBytes, key);
      checkExpiresAt(options.expiresAt);
      // Copies taken now, as for `set`.
      const params = [key, Buffer.from(expected), Buffer.from(value), expiryParam(options.expiresAt)];
      return this.#run('compareAndSet', async () => ((await this.#db.query(this.#statements.compareAndSet, params)).rowCount ?? 0) > 0);
    });
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
    return this.#guard('acquireLock', () => {
      checkKey(key);
      checkAcquireOptions(options);
      this.#locks.startListening();
      return this.#locks.waiters.acquire(key, options);
    });
  }

  /**
   * Lets go of `lease` and announces the release: `true` when it still held the key, `false`
   * when it had lapsed or been taken over (the current holder is left alone).
   * @throws {ValidationError} for a malformed lease, before any I/O.
   */
  releaseLock(lease: Lease): Promise<boolean> {
    return this.#guard('releaseLock', () => {
      checkLease(lease);
      return this.#locks.waiters.release(lease);
    });
  }

  /**
   * Renews `lease` for `leaseMs` from now on the server's clock (`0`: no lapse): `true` when
   * renewed, `false` when it no longer holds the key.
   * @throws {ValidationError} for a malformed lease or `leaseMs`, before any I/O.
   */
  extendLock(lease: Lease, leaseMs: number): Promise<boolean> {
    return this.#guard('extendLock', () => {
      checkLease(lease);
      checkDuration('leaseMs', leaseMs);
      return this.#locks.waiters.extend(lease, leaseMs);
    });
  }

  /**
   * Removes up to `limit` expired values now (the background purge does the same every
   * `purgeIntervalMs`): rows that never held a lock go, the others keep their fencing counter.
   * Resolves how many rows it purged.
   * @throws {ValidationError} for a bad `limit`.
   */
  purgeExpired(limit = 10_000): Promise<number> {
    return this.#guard('purgeExpired', () => {
      checkDuration('limit', limit);
      return this.#purge(Math.floor(limit));
    });
  }

  /**
   * Rejects waiting lock calls with `BackendClosedError`, gives back every lease this backend
   * still holds, settles calls in flight, stops the purge and the listening connection and —
   * only when the backend built it — ends the pool. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#purger.stop();
    // The give-backs need the pool: locks first, then the runner, then the pool.
    await this.#locks.close();
    this.#calls.close();
    // A pool waiting on a statement the server never answers would not end: bounded, and its failure changes nothing.
    if (this.#db.owned) await withDeadline('close', this.#calls.timeoutMs, () => this.#db.end()).catch(noop);
  }

  #purge(batchSize: number): Promise<number> {
    return this.#run('purgeExpired', async () => {
      const { rows } = await this.#db.query<{ purged: number }>(this.#statements.purge, [batchSize]);
      return rows[0]?.purged ?? 0;
    });
  }

  /** Runs `work` under the call deadline; the first call that finds the schema in place starts the purge. */
  #run<T>(what: string, work: () => Promise<T>): Promise<T> {
    return this.#calls.run(what, async () => {
      const result = await work();
      this.#purger.start();
      return result;
    });
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

function checkKey(key: string): void {
  checkStoredKey(key, MAX_KEY_BYTES);
  checkTextKey(key);
}

function checkKeys(keys: readonly string[]): void {
  checkStoredKeys(keys, MAX_KEY_BYTES);
  for (const key of keys) checkTextKey(key);
}

function noop(): void {}
