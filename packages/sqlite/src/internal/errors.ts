import {
  BackendError,
  BackendTimeoutError,
  BackendUnavailableError,
  type CallInfo,
  type ErrorMapper,
  type LatchkeyError,
} from '@latchkey/core';

/** Names the backend in errors and warnings. */
export const BACKEND_NAME = 'SqliteBackend';

/**
 * Opening or preparing the database file failed (before any statement of the call ran). It
 * carries the driver's error; {@link mapError} turns it into a latchkey error.
 */
export class OpenFailure extends Error {
  /**
   * @param filename - The file the backend was opening.
   * @param reported - What better-sqlite3 threw.
   */
  constructor(
    readonly filename: string,
    readonly reported: unknown,
  ) {
    super(`cannot open ${JSON.stringify(filename)}: ${messageOf(reported)}`, { cause: reported });
    this.name = 'OpenFailure';
  }
}

/** The SQLite result code of a better-sqlite3 `SqliteError` (`'SQLITE_BUSY_SNAPSHOT'`), if it is one. */
export function sqliteCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return error instanceof Error && typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
}

/**
 * True for the codes that mean another connection holds a lock on the file: worth another
 * try while the call's deadline allows.
 */
export function isBusy(error: unknown): boolean {
  const code = sqliteCode(error instanceof OpenFailure ? error.reported : error);
  return code !== undefined && (primary(code) === 'SQLITE_BUSY' || primary(code) === 'SQLITE_LOCKED');
}

/**
 * The runner's error table, the driver's error as `cause`:
 * - `SQLITE_BUSY*` / `SQLITE_LOCKED*` (other connections kept the file locked through every
 *   try until the deadline) → {@link BackendTimeoutError}; the statement did not run.
 * - `SQLITE_CANTOPEN*` / `SQLITE_IOERR*` / `SQLITE_PERM`, and a file that could not be opened
 *   at all → {@link BackendUnavailableError}.
 * - `SQLITE_CORRUPT*` / `SQLITE_NOTADB` (not a healthy SQLite database), `SQLITE_READONLY*`
 *   (a read-only file, directory or connection), `SQLITE_FULL` and anything else →
 *   {@link BackendError}, with a message saying which.
 */
export const mapError: ErrorMapper = (error, call) => {
  const reported = error instanceof OpenFailure ? error.reported : error;
  const code = sqliteCode(reported);
  const family = code === undefined ? undefined : primary(code);
  const what = error instanceof OpenFailure ? `${call.what}: ${error.message}` : `${call.what} failed: ${messageOf(reported)}`;
  const message = (detail: string): string => `${call.backend}: ${what}${code === undefined ? '' : ` (${code})`}${detail}`;
  switch (family) {
    case 'SQLITE_BUSY':
    case 'SQLITE_LOCKED':
      return busyError(message, call, reported);
    case 'SQLITE_CORRUPT':
    case 'SQLITE_NOTADB':
      return new BackendError(message(': the file is not a healthy SQLite database.'), { cause: reported });
    case 'SQLITE_READONLY':
      return new BackendError(message(': the database cannot be written (read-only file, directory or connection).'), {
        cause: reported,
      });
    case 'SQLITE_CANTOPEN':
    case 'SQLITE_IOERR':
    case 'SQLITE_PERM':
      return new BackendUnavailableError(message('.'), { cause: reported });
    default:
      if (error instanceof OpenFailure) return new BackendUnavailableError(message('.'), { cause: reported });
      return new BackendError(message('.'), { cause: reported });
  }
};

function busyError(message: (detail: string) => string, call: CallInfo, cause: unknown): LatchkeyError {
  return new BackendTimeoutError(
    message(`: another connection kept the file locked for the whole ${call.timeoutMs} ms deadline; nothing was changed.`),
    call.timeoutMs,
    { cause },
  );
}

/** `'SQLITE_BUSY'` of `'SQLITE_BUSY_SNAPSHOT'`. */
function primary(code: string): string {
  const second = code.indexOf('_', 'SQLITE_'.length);
  return second < 0 ? code : code.slice(0, second);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
