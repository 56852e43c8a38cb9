import Database from 'better-sqlite3';
import { BackendError, BackendTimeoutError, BackendUnavailableError, LatchkeyError, type CallInfo } from '@latchkey/core';
import { describe, expect, it } from 'vitest';
import { isBusy, mapError, OpenFailure, sqliteCode } from '../../src/internal/errors.js';

const CALL: CallInfo = { backend: 'SqliteBackend', what: 'set', sent: true, timeoutMs: 2000 };

/** A driver error as better-sqlite3 throws it. */
function sqliteError(code: string, message = 'driver message'): Error {
  return new Database.SqliteError(message, code);
}

describe('mapping better-sqlite3 errors to latchkey errors', () => {
  it.each(['SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_BUSY_RECOVERY', 'SQLITE_LOCKED', 'SQLITE_LOCKED_SHAREDCACHE'])(
    'maps %s to BackendTimeoutError with the deadline and the driver error as cause',
    (code) => {
      const reported = sqliteError(code, 'database is locked');
      const error = mapError(reported, CALL);
      expect(error).toBeInstanceOf(BackendTimeoutError);
      expect((error as BackendTimeoutError).timeoutMs).toBe(2000);
      expect(error.cause).toBe(reported);
      expect(error.message).toContain(`(${code})`);
      expect(error.message).toContain('nothing was changed');
    },
  );

  it.each([
    ['SQLITE_CORRUPT', 'not a healthy SQLite database'],
    ['SQLITE_CORRUPT_INDEX', 'not a healthy SQLite database'],
    ['SQLITE_NOTADB', 'not a healthy SQLite database'],
    ['SQLITE_READONLY', 'cannot be written'],
    ['SQLITE_READONLY_DIRECTORY', 'cannot be written'],
    ['SQLITE_FULL', ''],
    ['SQLITE_TOOBIG', ''],
    ['SQLITE_ERROR', ''],
  ])('maps %s to BackendError saying why, keeping the cause', (code, says) => {
    const reported = sqliteError(code);
    const error = mapError(reported, CALL);
    expect(error.constructor).toBe(BackendError);
    expect(error.cause).toBe(reported);
    expect(error.message).toContain(says);
    expect(error.message).toMatch(/^SqliteBackend: set failed: driver message/);
  });

  it.each(['SQLITE_CANTOPEN', 'SQLITE_CANTOPEN_ISDIR', 'SQLITE_IOERR', 'SQLITE_IOERR_SHORT_READ', 'SQLITE_PERM'])(
    'maps %s to BackendUnavailableError',
    (code) => {
      const reported = sqliteError(code);
      const error = mapError(reported, CALL);
      expect(error).toBeInstanceOf(BackendUnavailableError);
      expect(error.cause).toBe(reported);
    },
  );

  it('maps a file that could not be opened to BackendUnavailableError naming the file, the driver error as cause', () => {
    const reported = new TypeError('Cannot open database because the directory does not exist');
    const error = mapError(new OpenFailure('/gone/x.db', reported), CALL);
    expect(error).toBeInstanceOf(BackendUnavailableError);
    expect(error.cause).toBe(reported);
    expect(error.message).toBe('SqliteBackend: set: cannot open "/gone/x.db": Cannot open database because the directory does not exist.');
  });

  it('maps a garbage file found while opening by its SQLite code, not as unavailability', () => {
    const reported = sqliteError('SQLITE_NOTADB', 'file is not a database');
    const error = mapError(new OpenFailure('/tmp/garbage.db', reported), CALL);
    expect(error.constructor).toBe(BackendError);
    expect(error.cause).toBe(reported);
    expect(error.message).toContain('/tmp/garbage.db');
  });

  it('maps anything else to BackendError', () => {
    const reported = new RangeError('odd');
    const error = mapError(reported, CALL);
    expect(error).toBeInstanceOf(LatchkeyError);
    expect(error.constructor).toBe(BackendError);
    expect(error.cause).toBe(reported);
  });
});

describe('telling busy errors apart', () => {
  it('knows the SQLite codes of driver errors only', () => {
    expect(sqliteCode(sqliteError('SQLITE_BUSY'))).toBe('SQLITE_BUSY');
    expect(sqliteCode(Object.assign(new Error('x'), { code: 'ENOENT' }))).toBeUndefined();
    expect(sqliteCode({ code: 'SQLITE_BUSY' })).toBeUndefined();
  });

  it('retries busy and locked errors, also while opening, and nothing else', () => {
    expect(isBusy(sqliteError('SQLITE_BUSY_TIMEOUT'))).toBe(true);
    expect(isBusy(sqliteError('SQLITE_LOCKED'))).toBe(true);
    expect(isBusy(new OpenFailure('x.db', sqliteError('SQLITE_BUSY')))).toBe(true);
    expect(isBusy(sqliteError('SQLITE_BUSYNESS'))).toBe(false);
    expect(isBusy(sqliteError('SQLITE_READONLY'))).toBe(false);
    expect(isBusy(new Error('database is locked'))).toBe(false);
  });
});
