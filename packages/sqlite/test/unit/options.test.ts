import { ValidationError } from '@latchkey/core';
import { describe, expect, it } from 'vitest';
import { SqliteBackend } from '../../src/index.js';
import {
  DEFAULT_MAX_VALUE_BYTES,
  LARGEST_MAX_VALUE_BYTES,
  resolveOptions,
  type SqliteBackendOptions,
} from '../../src/sqlite-backend-options.js';

describe('defaults', () => {
  it('applies the documented defaults', () => {
    expect(resolveOptions({ filename: '/tmp/x.db' })).toStrictEqual({
      filename: '/tmp/x.db',
      private: false,
      table: 'latchkey',
      operationTimeoutMs: 2000,
      busyTimeoutMs: 50,
      readonly: false,
      synchronous: 'normal',
      maxValueBytes: DEFAULT_MAX_VALUE_BYTES,
      purgeIntervalMs: 60_000,
      purgeBatchSize: 1000,
    });
  });

  it('keeps the default busy wait a quarter of a short deadline, so a try fits several times', () => {
    expect(resolveOptions({ filename: 'x.db', operationTimeoutMs: 100 }).busyTimeoutMs).toBe(25);
  });

  it.each([':memory:', ''])('treats %j as a database private to the backend', (filename) => {
    expect(resolveOptions({ filename }).private).toBe(true);
  });
});

describe('capabilities', () => {
  it("declares 'distributed' locks for a file and 'in-process' ones for a private database", () => {
    expect(new SqliteBackend({ filename: '/tmp/never-opened.db', purgeIntervalMs: 0 }).capabilities.lockScope).toBe('distributed');
    expect(new SqliteBackend({ filename: ':memory:', purgeIntervalMs: 0 }).capabilities.lockScope).toBe('in-process');
  });

  it('declares the value bound and the deadline it was given', () => {
    const { capabilities } = new SqliteBackend({ filename: ':memory:', maxValueBytes: 1000, operationTimeoutMs: 900, purgeIntervalMs: 0 });
    expect(capabilities).toMatchObject({ maxValueBytes: 1000, callDeadlineMs: 900, atomicLeaseWrites: true, fencingTokens: true });
  });

  it('does not touch the disk in the constructor', () => {
    // A directory that does not exist: only the first call finds out.
    expect(() => new SqliteBackend({ filename: '/nonexistent-dir/x.db', purgeIntervalMs: 0 })).not.toThrow();
  });
});

describe('validation', () => {
  const bad: [string, unknown][] = [
    ['a missing filename', {}],
    ['a non-string filename', { filename: 1 }],
    ['a filename with NUL', { filename: 'a\0b' }],
    ['an unknown option', { filename: 'x.db', url: 'sqlite://x' }],
    ['a table with a space', { filename: 'x.db', table: 'my table' }],
    ['a table with a quote', { filename: 'x.db', table: 'a"b' }],
    ['a table starting with a digit', { filename: 'x.db', table: '1t' }],
    ['a table reserved by SQLite', { filename: 'x.db', table: 'sqlite_master' }],
    ['a table of 65 characters', { filename: 'x.db', table: 't'.repeat(65) }],
    ['a zero deadline', { filename: 'x.db', operationTimeoutMs: 0 }],
    ['an infinite deadline', { filename: 'x.db', operationTimeoutMs: Infinity }],
    ['a busy wait as long as the deadline', { filename: 'x.db', operationTimeoutMs: 1000, busyTimeoutMs: 1000 }],
    ['a fractional busy wait', { filename: 'x.db', busyTimeoutMs: 1.5 }],
    ['a non-boolean readonly', { filename: 'x.db', readonly: 'yes' }],
    ['an unknown synchronous mode', { filename: 'x.db', synchronous: 'off' }],
    ['a zero value bound', { filename: 'x.db', maxValueBytes: 0 }],
    ['a value bound over SQLite’s', { filename: 'x.db', maxValueBytes: LARGEST_MAX_VALUE_BYTES + 1 }],
    ['a negative purge interval', { filename: 'x.db', purgeIntervalMs: -1 }],
    ['a purge interval beyond setTimeout’s range', { filename: 'x.db', purgeIntervalMs: 2 ** 31 }],
    ['a zero purge batch', { filename: 'x.db', purgeBatchSize: 0 }],
    ['options that are not an object', 'x.db'],
  ];

  it.each(bad)('refuses %s with ValidationError', (_what, options) => {
    expect(() => resolveOptions(options as SqliteBackendOptions)).toThrow(ValidationError);
    expect(() => new SqliteBackend(options as SqliteBackendOptions)).toThrow(ValidationError);
  });

  it('accepts the largest value bound, a busy wait of 0 and a purge interval of 0', () => {
    expect(
      resolveOptions({ filename: 'x.db', maxValueBytes: LARGEST_MAX_VALUE_BYTES, busyTimeoutMs: 0, purgeIntervalMs: 0 }),
    ).toMatchObject({
      maxValueBytes: LARGEST_MAX_VALUE_BYTES,
      busyTimeoutMs: 0,
      purgeIntervalMs: 0,
    });
  });

  it('accepts identifiers of letters, digits and underscores', () => {
    expect(resolveOptions({ filename: 'x.db', table: '_Cache_2' }).table).toBe('_Cache_2');
  });
});
