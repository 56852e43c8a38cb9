import { MAX_TIMER_MS, ValidationError } from '@latchkey/core';

/** Options of {@link SqliteBackend}. */
export interface SqliteBackendOptions {
  /**
   * The database file, created if missing (its directory must exist). Every process on this
   * machine that opens the same file shares its values and locks. `':memory:'` (or `''`) is
   * a private database of this backend only: nothing is shared, locks are in-process.
   */
  readonly filename: string;
  /**
   * The table that holds every key, created if missing: an SQL identifier (letters, digits
   * and `_`, not starting with a digit or `sqlite_`), at most 64 characters. Stores sharing a
   * file use different tables to stay apart.
   * @default 'latchkey'
   */
  readonly table?: string;
  /**
   * Deadline of every call, in ms: it settles within this time. Must be above
   * `busyTimeoutMs`, since a call blocks the event loop for up to that long per try.
   * @default 2000
   */
  readonly operationTimeoutMs?: number;
  /**
   * How long one try waits inside SQLite for another connection's write transaction to end
   * (SQLite's `busy_timeout`), in ms. The wait blocks this process's event loop; between tries
   * the backend yields, and keeps trying until the call's deadline. Must be below
   * `operationTimeoutMs`.
   * @default 50 (or a quarter of operationTimeoutMs, when that is less)
   */
  readonly busyTimeoutMs?: number;
  /**
   * Opens the file read-only (it must exist and hold the table): reads work, every write and
   * lock call rejects with `BackendError`, and nothing is purged.
   * @default false
   */
  readonly readonly?: boolean;
  /**
   * SQLite's `synchronous` setting. `'normal'`: a commit survives a crash of any process, but
   * the last commits may be lost when the machine loses power or the OS crashes (leases and
   * fencing tokens included). `'full'`: every commit is synced to disk first (slower writes).
   * @default 'normal'
   */
  readonly synchronous?: 'normal' | 'full';
  /**
   * The largest value accepted, in bytes (`capabilities.maxValueBytes`); larger values are
   * refused with `ValueTooLargeError` before any I/O. At most 1 000 000 000 − 1 MiB
   * (SQLite's limit on a row, less room for the key).
   * @default 16777216 (16 MiB)
   */
  readonly maxValueBytes?: number;
  /**
   * How often the backend removes a batch of expired values and empty rows in the
   * background, in ms (an unref'd timer, stopped by `close()`). `0`: never; call
   * `purgeExpired()` yourself. Reads never return expired values either way. At most
   * `MAX_TIMER_MS` (about 24.8 days).
   * @default 60000
   */
  readonly purgeIntervalMs?: number;
  /**
   * The most rows one background purge removes (one write transaction), so a backlog never
   * holds the file's write lock for long.
   * @default 1000
   */
  readonly purgeBatchSize?: number;
}

/** Options after validation, with defaults applied. */
export interface ResolvedOptions {
  readonly filename: string;
  /** True for a database private to this backend (`':memory:'`, `''`). */
  readonly private: boolean;
  readonly table: string;
  readonly operationTimeoutMs: number;
  readonly busyTimeoutMs: number;
  readonly readonly: boolean;
  readonly synchronous: 'normal' | 'full';
  readonly maxValueBytes: number;
  readonly purgeIntervalMs: number;
  readonly purgeBatchSize: number;
}

/** Default deadline of each call. */
export const DEFAULT_OPERATION_TIMEOUT_MS = 2000;
/** Default SQLite busy wait per try. */
export const DEFAULT_BUSY_TIMEOUT_MS = 50;
/** Default bound on values. */
export const DEFAULT_MAX_VALUE_BYTES = 16 * 1024 * 1024;
/** SQLite's default `SQLITE_MAX_LENGTH` (a row, string or blob) less 1 MiB for the key and row header. */
export const LARGEST_MAX_VALUE_BYTES = 1_000_000_000 - 1024 * 1024;
/** Default interval of the background purge. */
export const DEFAULT_PURGE_INTERVAL_MS = 60_000;
/** Default rows per background purge. */
export const DEFAULT_PURGE_BATCH_SIZE = 1000;

const KNOWN = new Set([
  'filename',
  'table',
  'operationTimeoutMs',
  'busyTimeoutMs',
  'readonly',
  'synchronous',
  'maxValueBytes',
  'purgeIntervalMs',
  'purgeBatchSize',
]);
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** @throws {ValidationError} for any invalid option. */
export function resolveOptions(options: SqliteBackendOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ValidationError('SqliteBackend options must be an object.');
  }
  for (const name of Object.keys(options)) {
    if (!KNOWN.has(name)) throw new ValidationError(`SqliteBackend: unknown option "${name}".`);
  }
  const { filename } = options;
  if (typeof filename !== 'string') throw new ValidationError('SqliteBackend: filename must be a string (a path, or ":memory:").');
  if (filename.includes('\0')) throw new ValidationError('SqliteBackend: filename must not contain NUL characters.');
  const table = options.table ?? 'latchkey';
  if (typeof table !== 'string' || !IDENTIFIER.test(table) || table.toLowerCase().startsWith('sqlite_')) {
    throw new ValidationError(
      `SqliteBackend: table must be an identifier of letters, digits and _ (not starting with a digit or sqlite_), at most 64 characters, got ${JSON.stringify(table)}.`,
    );
  }
  const operationTimeoutMs = positive('operationTimeoutMs', options.operationTimeoutMs) ?? DEFAULT_OPERATION_TIMEOUT_MS;
  const busyTimeoutMs =
    integer('busyTimeoutMs', options.busyTimeoutMs, 0) ?? Math.min(DEFAULT_BUSY_TIMEOUT_MS, Math.floor(operationTimeoutMs / 4));
  if (busyTimeoutMs >= operationTimeoutMs) {
    throw new ValidationError(
      `SqliteBackend: busyTimeoutMs (${busyTimeoutMs}) must be below operationTimeoutMs (${operationTimeoutMs}), or a call could outlive its deadline.`,
    );
  }
  const readonly = options.readonly ?? false;
  if (typeof readonly !== 'boolean') throw new ValidationError('SqliteBackend: readonly must be a boolean.');
  const synchronous = options.synchronous ?? 'normal';
  if (synchronous !== 'normal' && synchronous !== 'full') {
    throw new ValidationError(`SqliteBackend: synchronous must be 'normal' or 'full', got ${JSON.stringify(synchronous)}.`);
  }
  const maxValueBytes = integer('maxValueBytes', options.maxValueBytes, 1) ?? DEFAULT_MAX_VALUE_BYTES;
  if (maxValueBytes > LARGEST_MAX_VALUE_BYTES) {
    throw new ValidationError(`SqliteBackend: maxValueBytes must be at most ${LARGEST_MAX_VALUE_BYTES}, got ${maxValueBytes}.`);
  }
  const purgeIntervalMs = integer('purgeIntervalMs', options.purgeIntervalMs, 0) ?? DEFAULT_PURGE_INTERVAL_MS;
  if (purgeIntervalMs > MAX_TIMER_MS) {
    throw new ValidationError(`SqliteBackend: purgeIntervalMs must be at most ${MAX_TIMER_MS}, got ${purgeIntervalMs}.`);
  }
  return {
    filename,
    private: filename === '' || filename === ':memory:',
    table,
    operationTimeoutMs,
    busyTimeoutMs,
    readonly,
    synchronous,
    maxValueBytes,
    purgeIntervalMs,
    purgeBatchSize: integer('purgeBatchSize', options.purgeBatchSize, 1) ?? DEFAULT_PURGE_BATCH_SIZE,
  };
}

function positive(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new ValidationError(`SqliteBackend: ${name} must be a positive finite number, got ${String(value)}.`);
  }
  return value;
}

function integer(name: string, value: unknown, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new ValidationError(`SqliteBackend: ${name} must be an integer >= ${min}, got ${String(value)}.`);
  }
  return value;
}
