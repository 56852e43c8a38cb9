import { ValidationError } from '@latchkey/core';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_VALUE_BYTES, resolvePostgresBackendOptions, type PostgresBackendOptions } from '../../src/postgres-backend-options.js';

describe('resolvePostgresBackendOptions', () => {
  it('applies the defaults', () => {
    const resolved = resolvePostgresBackendOptions({});
    expect(resolved).toMatchObject({
      timeoutMs: 2_000,
      serverTimeoutMs: 1_800,
      createTable: true,
      listen: true,
      purgeIntervalMs: 60_000,
      purgeBatchSize: 1_000,
      maxValueBytes: DEFAULT_MAX_VALUE_BYTES,
    });
    expect(resolved.table.sql).toBe('"latchkey"');
  });

  it('gives the server 90% of the call deadline, at least 1 ms', () => {
    expect(resolvePostgresBackendOptions({ operationTimeoutMs: 500 }).serverTimeoutMs).toBe(450);
    expect(resolvePostgresBackendOptions({ operationTimeoutMs: 1 }).serverTimeoutMs).toBe(1);
  });

  it('takes the given values', () => {
    const resolved = resolvePostgresBackendOptions({
      url: 'postgres://u@h/db',
      table: 'app.kv',
      createTable: false,
      listen: false,
      purgeIntervalMs: 0,
      purgeBatchSize: 10,
      maxValueBytes: 1024,
    });
    expect(resolved).toMatchObject({ createTable: false, listen: false, purgeIntervalMs: 0, purgeBatchSize: 10, maxValueBytes: 1024 });
    expect(resolved.table.sql).toBe('"app"."kv"');
  });

  it('accepts a pg Pool', () => {
    const pool = new pg.Pool();
    expect(() => resolvePostgresBackendOptions({ pool })).not.toThrow();
  });

  it.each<[string, unknown]>([
    ['no object', null],
    ['both url and pool', { url: 'postgres://h/db', pool: new pg.Pool() }],
    ['an empty url', { url: '' }],
    ['a pool that is not one', { pool: {} }],
    ['poolOptions beside a given pool', { pool: new pg.Pool(), poolOptions: { max: 2 } }],
    ['a zero deadline', { operationTimeoutMs: 0 }],
    ['an infinite deadline', { operationTimeoutMs: Infinity }],
    ['a bad table', { table: 'no-dashes' }],
    ['a non-boolean listen', { listen: 'yes' }],
    ['a negative purge interval', { purgeIntervalMs: -1 }],
    ['a zero purge batch', { purgeBatchSize: 0 }],
    ['a fractional maxValueBytes', { maxValueBytes: 1.5 }],
    ['a maxValueBytes whose hex form would not fit in a string', { maxValueBytes: 256 * 1024 * 1024 }],
  ])('refuses %s with ValidationError', (_, options) => {
    expect(() => resolvePostgresBackendOptions(options as PostgresBackendOptions)).toThrow(ValidationError);
  });
});
