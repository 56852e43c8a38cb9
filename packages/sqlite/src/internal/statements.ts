/**
 * The SQL of the backend: the table's layout and every statement, prepared once per
 * connection. All times are epoch milliseconds of this machine's wall clock, passed in by the
 * caller (taken inside the transaction, after its locks were won).
 *
 * One row per key:
 * - `value` (BLOB) and `expires_at`: the stored bytes, readable while `value IS NOT NULL` and
 *   `expires_at` is NULL (never expires) or later than now. Deleting a value of a key that
 *   was ever locked keeps the row as a tombstone (`value` NULL, `expires_at` the time of the
 *   delete) so its fence survives; the purge removes tombstones and expired rows later.
 * - `lock_token` and `lock_expires_at`: the lease, held while the token is set and
 *   `lock_expires_at` is NULL (never lapses) or later than now.
 * - `fence`: the fencing token of the key's last acquire; it only grows.
 *
 * The row with the empty key (never a stored key: backends refuse empty keys) keeps the fence
 * floor: the largest fence of any row the purge removed. An acquire takes
 * `max(row's fence, floor) + 1`, so fencing tokens keep growing after a key's row was purged.
 */
import type { Database, Statement } from 'better-sqlite3';

/** The columns a latchkey table has, in order. */
export const COLUMNS = ['key', 'value', 'expires_at', 'lock_token', 'lock_expires_at', 'fence'] as const;

/** The statements that create `table` and its expiry index (both only if missing). */
export function schemaSql(table: string): string {
  const t = quote(table);
  return `
    CREATE TABLE IF NOT EXISTS ${t} (
      key TEXT PRIMARY KEY NOT NULL,
      value BLOB,
      expires_at INTEGER,
      lock_token TEXT,
      lock_expires_at INTEGER,
      fence INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX IF NOT EXISTS ${quote(`${table}_expires_at`)} ON ${t} (expires_at) WHERE expires_at IS NOT NULL;`;
}

/** What a key's row says about its value and lock at one moment. */
export interface RowState {
  /** A value is readable. */
  readonly live: boolean;
  /** The lease with the given token holds the key. */
  readonly owned: boolean;
}

/** The holder of a key's lease, as stored (it may have lapsed). */
export interface Holder {
  readonly token: string | null;
  /** Epoch ms, or `null`: never lapses. */
  readonly expiresAt: number | null;
}

/** The prepared statements of one connection, and the transactions they run in. */
export class Statements {
  // The hot paths (get, getMany, set) bind positionally: better-sqlite3 binds an object's named
  // parameters measurably slower (about 0.5 µs a call, a few % of a get).
  readonly #read: Statement<[key: string, now: number], Buffer>;
  readonly #write: Statement<[key: string, value: Uint8Array, expiresAt: number | null]>;
  readonly #lockedWrite: Statement<{ key: string; value: Uint8Array; expiresAt: number | null; token: string; now: number }>;
  readonly #state: Statement<{ key: string; token: string | null; now: number }, { live: number; owned: number | null }>;
  readonly #dropUnfenced: Statement<{ key: string }>;
  readonly #clear: Statement<{ key: string; now: number }>;
  readonly #holder: Statement<{ key: string }, Holder>;
  readonly #acquire: Statement<{ key: string; token: string; lockExpiresAt: number | null; now: number }, bigint>;
  readonly #release: Statement<{ key: string; token: string; now: number }>;
  readonly #extend: Statement<{ key: string; token: string; lockExpiresAt: number | null; now: number }>;
  readonly #purgeable: Statement<{ now: number; limit: number }, { id: number; fence: number }>;
  readonly #raiseFloor: Statement<{ floor: number }>;
  readonly #remove: Statement<{ id: number }>;
  readonly #dropAllUnfenced: Statement<[]>;
  readonly #clearAll: Statement<{ now: number }>;
  readonly #keysAfter: Statement<{ after: string; now: number; limit: number }, string>;
  readonly #has: Statement<{ key: string; now: number }, number>;
  readonly #compareAndSet: Statement<{ key: string; expected: Uint8Array; value: Uint8Array; expiresAt: number | null; now: number }>;
  readonly #inWrite: { immediate: <T>(work: () => T) => T };
  readonly #inRead: <T>(work: () => T) => T;

  constructor(db: Database, table: string) {
    const t = quote(table);
    const held = '(lock_expires_at IS NULL OR lock_expires_at > :now)';
    const readableAt = (now: string): string => `(value IS NOT NULL AND (expires_at IS NULL OR expires_at > ${now}))`;
    const readable = readableAt(':now');
    this.#read = db.prepare<[string, number], Buffer>(`SELECT value FROM ${t} WHERE key = ? AND ${readableAt('?')}`).pluck();
    this.#write = db.prepare(
      `INSERT INTO ${t} (key, value, expires_at) VALUES (?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
    );
    this.#lockedWrite = db.prepare(
      `UPDATE ${t} SET value = :value, expires_at = :expiresAt WHERE key = :key AND lock_token = :token AND ${held}`,
    );
    this.#state = db.prepare(`SELECT ${readable} AS live, (lock_token = :token AND ${held}) AS owned FROM ${t} WHERE key = :key`);
    // A key never locked has nothing to keep: its row goes at once.
    this.#dropUnfenced = db.prepare(`DELETE FROM ${t} WHERE key = :key AND fence = 0`);
    this.#clear = db.prepare(`UPDATE ${t} SET value = NULL, expires_at = :now WHERE key = :key AND value IS NOT NULL`);
    this.#holder = db.prepare(`SELECT lock_token AS token, lock_expires_at AS expiresAt FROM ${t} WHERE key = :key`);
    const floor = `COALESCE((SELECT fence FROM ${t} WHERE key = ''), 0)`;
    this.#acquire = db
      .prepare<{ key: string; token: string; lockExpiresAt: number | null; now: number }, bigint>(
        `INSERT INTO ${t} (key, value, expires_at, lock_token, lock_expires_at, fence)
         VALUES (:key, NULL, :now, :token, :lockExpiresAt, ${floor} + 1)
         ON CONFLICT (key) DO UPDATE
           SET lock_token = excluded.lock_token, lock_expires_at = excluded.lock_expires_at, fence = MAX(fence, ${floor}) + 1
           WHERE lock_token IS NULL OR lock_expires_at <= :now
         RETURNING fence`,
      )
      .pluck()
      .safeIntegers(true);
    this.#release = db.prepare(
      `UPDATE ${t} SET lock_token = NULL, lock_expires_at = NULL WHERE key = :key AND lock_token = :token AND ${held}`,
    );
    this.#extend = db.prepare(`UPDATE ${t} SET lock_expires_at = :lockExpiresAt WHERE key = :key AND lock_token = :token AND ${held}`);
    // Rows whose value is gone or expired and whose lease is free or lapsed (the expiry index finds them).
    this.#purgeable = db.prepare(
      `SELECT rowid AS id, fence FROM ${t}
       WHERE expires_at <= :now AND (lock_token IS NULL OR lock_expires_at <= :now) AND key <> '' LIMIT :limit`,
    );
    this.#raiseFloor = db.prepare(
      `INSERT INTO ${t} (key, fence) VALUES ('', :floor) ON CONFLICT (key) DO UPDATE SET fence = MAX(fence, excluded.fence)`,
    );
    this.#remove = db.prepare(`DELETE FROM ${t} WHERE rowid = :id`);
    // Rows never locked hold only a value; the others (and the fence floor row) keep lease and fence.
    this.#dropAllUnfenced = db.prepare(`DELETE FROM ${t} WHERE fence = 0 AND key <> ''`);
    this.#clearAll = db.prepare(`UPDATE ${t} SET value = NULL, expires_at = :now WHERE value IS NOT NULL`);
    // Keyset pagination on the primary key: each page is one index range scan, whatever came before.
    this.#keysAfter = db
      .prepare<{ after: string; now: number; limit: number }, string>(
        `SELECT key FROM ${t} WHERE key > :after AND ${readable} ORDER BY key LIMIT :limit`,
      )
      .pluck();
    this.#has = db
      .prepare<{ key: string; now: number }, number>(`SELECT EXISTS (SELECT 1 FROM ${t} WHERE key = :key AND ${readable})`)
      .pluck();
    this.#compareAndSet = db.prepare(
      `UPDATE ${t} SET value = :value, expires_at = :expiresAt WHERE key = :key AND value = :expected AND ${readable}`,
    );
    // One transaction function whose body is its argument: no wrapper made per call.
    const run = db.transaction((work: () => unknown) => work());
    this.#inWrite = run as unknown as { immediate: <T>(work: () => T) => T };
    this.#inRead = run as unknown as <T>(work: () => T) => T;
  }

  /** Runs `work` in a write transaction (`BEGIN IMMEDIATE`: the file's write lock is taken first). */
  inWrite<T>(work: () => T): T {
    return this.#inWrite.immediate(work);
  }

  /** Runs `work` in a read transaction: one snapshot for every statement in it. */
  inRead<T>(work: () => T): T {
    return this.#inRead(work);
  }

  /** The readable value of `key` (a fresh buffer), or `undefined`. */
  read(key: string, now: number): Uint8Array | undefined {
    const value = this.#read.get(key, now);
    return value === undefined ? undefined : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }

  /** Stores `value` unconditionally, leaving the key's lease and fence as they are. */
  write(key: string, value: Uint8Array, expiresAt: number | null): void {
    this.#write.run(key, value, expiresAt);
  }

  /** Stores `value` if the lease `token` holds `key` at `now`; false (nothing written) if not. */
  lockedWrite(key: string, value: Uint8Array, expiresAt: number | null, token: string, now: number): boolean {
    return this.#lockedWrite.run({ key, value, expiresAt, token, now }).changes === 1;
  }

  /** Whether `key` has a readable value and whether lease `token` holds it; `undefined` without a row. */
  state(key: string, token: string | null, now: number): RowState | undefined {
    const row = this.#state.get({ key, token, now });
    return row === undefined ? undefined : { live: row.live === 1, owned: row.owned === 1 };
  }

  /** Removes `key`'s value (the row too unless it carries a fence), leaving its lease as it is. */
  clear(key: string, now: number): void {
    this.#dropUnfenced.run({ key });
    this.#clear.run({ key, now });
  }

  /**
   * Removes every value (rows that never held a lock go; the others keep lease and fence and
   * become tombstones the purge finds). Run it in a write transaction.
   */
  clearAll(now: number): void {
    this.#dropAllUnfenced.run();
    this.#clearAll.run({ now });
  }

  /** Up to `limit` keys of readable values after `after`, in key order. */
  keysAfter(after: string, now: number, limit: number): string[] {
    return this.#keysAfter.all({ after, now, limit });
  }

  /** Whether `key` has a readable value at `now`. */
  has(key: string, now: number): boolean {
    return this.#has.get({ key, now }) === 1;
  }

  /** Stores `value` if `key` holds exactly `expected`, readable at `now`; false (nothing written) if not. */
  compareAndSet(key: string, expected: Uint8Array, value: Uint8Array, expiresAt: number | null, now: number): boolean {
    return this.#compareAndSet.run({ key, expected, value, expiresAt, now }).changes === 1;
  }

  /** The stored lease of `key`, or `undefined` without a row. */
  holder(key: string): Holder | undefined {
    return this.#holder.get({ key });
  }

  /**
   * Takes the lease on `key` for `token` if it is free or lapsed at `now`, bumping the fence.
   * Resolves the new fence, or `undefined` when another lease holds the key.
   */
  acquire(key: string, token: string, lockExpiresAt: number | null, now: number): bigint | undefined {
    return this.#acquire.get({ key, token, lockExpiresAt, now });
  }

  /** Frees `key` if lease `token` holds it at `now`. */
  release(key: string, token: string, now: number): boolean {
    return this.#release.run({ key, token, now }).changes === 1;
  }

  /** Moves the lapse of lease `token` on `key` to `lockExpiresAt` if it holds the key at `now`. */
  extend(key: string, token: string, lockExpiresAt: number | null, now: number): boolean {
    return this.#extend.run({ key, token, lockExpiresAt, now }).changes === 1;
  }

  /**
   * Removes up to `limit` rows with no readable value and no live lease, raising the fence
   * floor to their largest fence first. Run it in a write transaction. Resolves how many went.
   */
  purge(now: number, limit: number): number {
    const rows = this.#purgeable.all({ now, limit });
    const floor = rows.reduce((max, row) => Math.max(max, row.fence), 0);
    if (floor > 0) this.#raiseFloor.run({ floor });
    for (const row of rows) this.#remove.run({ id: row.id });
    return rows.length;
  }
}

/** `name` as a quoted SQL identifier (names are validated identifiers; quoting keeps keywords safe). */
export function quote(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
