import Database from 'better-sqlite3';
import { BackendClosedError, BackendError, type Call } from '@latchkey/core';
import type { ResolvedOptions } from '../sqlite-backend-options.js';
import { BACKEND_NAME, isBusy, OpenFailure } from './errors.js';
import { COLUMNS, quote, schemaSql, Statements } from './statements.js';

/** Longest pause between two tries of a call that found the file locked, in ms. */
const MAX_BUSY_PAUSE_MS = 20;

/**
 * The backend's one connection to its file: opened on first use (so a constructor never
 * touches the disk and a file that cannot be opened fails calls with a typed error, not the
 * constructor), set up (WAL mode, `synchronous`, the table created if missing and checked),
 * and every step retried while another connection holds the file's lock, within the call's
 * deadline.
 */
export class SqliteDatabase {
  readonly #options: ResolvedOptions;
  #db: Database.Database | undefined;
  #statements: Statements | undefined;
  #closed = false;

  constructor(options: ResolvedOptions) {
    this.#options = options;
  }

  /**
   * Runs `step` (synchronous: it blocks the event loop while SQLite works, each try for at
   * most `busyTimeoutMs` of waiting on other connections). A try that finds the file locked
   * (`SQLITE_BUSY`, `SQLITE_LOCKED`) is repeated after a short pause that yields the event
   * loop, for as long as another try still fits before the deadline; then its error is thrown.
   * @returns what `step` returned: as it is when the first try succeeds, else a promise of a later try's.
   * @throws what `step` or opening the file threw (a driver error, or {@link OpenFailure}); after a
   *   first try that found the file locked, the promise rejects with it instead.
   */
  run<T>(call: Call, step: (statements: Statements) => T): T | Promise<T> {
    const startedAt = performance.now();
    // The first try runs synchronously and returns its result as it is: no promise of its own on
    // the hot path (the call runner settles the call either way).
    try {
      return step(this.#open());
    } catch (error) {
      if (!isBusy(error)) throw error;
      return this.#retry(call, step, startedAt + this.#options.operationTimeoutMs, error);
    }
  }

  /** The tries after a first one that found the file locked, until one succeeds or none fits before `deadline`. */
  async #retry<T>(call: Call, step: (statements: Statements) => T, deadline: number, busy: unknown): Promise<T> {
    const { busyTimeoutMs } = this.#options;
    let error = busy;
    for (let tries = 1; ; tries++) {
      const pause = Math.min(MAX_BUSY_PAUSE_MS, 2 ** tries) * (0.5 + Math.random() / 2);
      if (!isBusy(error) || performance.now() + pause + busyTimeoutMs >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, pause));
      call.check();
      try {
        return step(this.#open());
      } catch (next) {
        error = next;
      }
    }
  }

  /** Closes the connection (if it was opened); later steps throw {@link BackendClosedError}. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#statements = undefined;
    this.#db?.close();
    this.#db = undefined;
  }

  #open(): Statements {
    if (this.#statements !== undefined) return this.#statements;
    if (this.#closed) throw new BackendClosedError(`${BACKEND_NAME} is closed.`);
    const { filename, readonly, busyTimeoutMs } = this.#options;
    let db: Database.Database;
    try {
      db = new Database(filename, { readonly, fileMustExist: readonly, timeout: busyTimeoutMs });
    } catch (error) {
      throw new OpenFailure(filename, error);
    }
    try {
      this.#statements = this.#setUp(db);
      this.#db = db;
      return this.#statements;
    } catch (error) {
      db.close();
      throw error instanceof BackendError ? error : new OpenFailure(filename, error);
    }
  }

  #setUp(db: Database.Database): Statements {
    const { filename, table, readonly, synchronous } = this.#options;
    if (!readonly) {
      // WAL: readers never wait for the writer, and one writer at a time appends to the log.
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (!this.#options.private && mode !== 'wal') {
        throw new BackendError(`${BACKEND_NAME}: ${JSON.stringify(filename)} cannot use WAL mode (journal_mode is ${String(mode)}).`);
      }
      db.pragma(`synchronous = ${synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    }
    const tableColumns = (): string[] => (db.pragma(`table_info(${quote(table)})`) as { name: string }[]).map((column) => column.name);
    let columns = tableColumns();
    if (columns.length === 0 && !readonly) {
      // Only a missing table costs a write transaction: opening an existing one never waits for writers.
      db.transaction(() => db.exec(schemaSql(table))).immediate();
      columns = tableColumns();
    }
    if (columns.length === 0) {
      throw new BackendError(
        `${BACKEND_NAME}: ${JSON.stringify(filename)} has no table "${table}" (a read-only backend does not create it).`,
      );
    }
    if (COLUMNS.some((name) => !columns.includes(name))) {
      throw new BackendError(
        `${BACKEND_NAME}: table "${table}" of ${JSON.stringify(filename)} is not a latchkey table (columns: ${columns.join(', ')}; expected ${COLUMNS.join(', ')}).`,
      );
    }
    return new Statements(db, table);
  }
}
