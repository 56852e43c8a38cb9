import { ValidationError } from '@latchkey/core';
import type { Pool, PoolConfig } from 'pg';
import { parseTableName, type TableName } from './internal/sql.js';

/**
 * Options of {@link PostgresBackend}. Give at most one of `url` and `pool`; with neither, the
 * backend builds a pool from pg's defaults (the `PGHOST`, `PGUSER`, `PGDATABASE`, … variables).
 */
export interface PostgresBackendOptions {
  /** A connection string (`postgres://user:password@host:port/database?sslmode=…`). */
  readonly url?: string;
  /**
   * A ready-made pg `Pool`. The backend uses it as configured and does not end it on `close()`.
   * It opens one more connection with the pool's connection options for `LISTEN` (a pooled
   * connection cannot keep listening). Give the pool a `statement_timeout` below
   * `operationTimeoutMs` so the server also stops statements the backend gave up on.
   */
  readonly pool?: Pool;
  /**
   * Further options of the pool the backend builds from `url` (for example `max`, `ssl`,
   * `password`, `application_name`). The settings that keep every call bounded
   * (`connectionTimeoutMillis`, `statement_timeout`) take precedence.
   */
  readonly poolOptions?: PoolConfig;
  /**
   * The table of this store: `name` or `schema.name` (letters, digits and `_`, not starting
   * with a digit, at most 48 characters each; quoted, so case is kept). Backends on the same
   * table share data and locks.
   * @default 'latchkey'
   */
  readonly table?: string;
  /**
   * Deadline of every call, waiting for a pooled connection included: past it the call rejects
   * with `BackendTimeoutError` (or `BackendUnavailableError` when no connection could be had).
   * A pool the backend builds gets `statement_timeout` and `connectionTimeoutMillis` of 90% of it.
   * @default 2000
   */
  readonly operationTimeoutMs?: number;
  /**
   * Create the table and its expiry index when the table is missing (see the README for the
   * DDL). Turn it off when migrations own the schema or the role may not create tables.
   * @default true
   */
  readonly createTable?: boolean;
  /**
   * Hear releases of other processes through `LISTEN` on one extra connection, so waiters
   * wake within milliseconds. Off (for example behind a transaction-pooling proxy, which
   * cannot keep a session listening), waiters look again every 250 ms.
   * @default true
   */
  readonly listen?: boolean;
  /**
   * How often the backend removes expired values in the background, in ms (`0`: never; call
   * `purgeExpired()` yourself). Reads never return expired values either way.
   * @default 60000
   */
  readonly purgeIntervalMs?: number;
  /**
   * Rows one purge removes at most; a full batch is followed by the next one a second later.
   * @default 1000
   */
  readonly purgeBatchSize?: number;
  /**
   * The largest value, in bytes, the backend accepts; larger ones reject with
   * `ValueTooLargeError` before any I/O. A value comes back hex-encoded in one protocol
   * message, which bounds it far below bytea's 1 GB.
   * @default 134217728 (128 MiB)
   */
  readonly maxValueBytes?: number;
}

/** The default of {@link PostgresBackendOptions.operationTimeoutMs}. */
const DEFAULT_OPERATION_TIMEOUT_MS = 2_000;
/** The default of {@link PostgresBackendOptions.table}. */
export const DEFAULT_TABLE = 'latchkey';
/** The default of {@link PostgresBackendOptions.maxValueBytes}. */
export const DEFAULT_MAX_VALUE_BYTES = 128 * 1024 * 1024;
/** The largest `maxValueBytes`: a value of 256 MiB would not fit in a JavaScript string as hex. */
const MAX_MAX_VALUE_BYTES = 255 * 1024 * 1024;
const DEFAULT_PURGE_INTERVAL_MS = 60_000;
const DEFAULT_PURGE_BATCH_SIZE = 1_000;
/** Share of the call deadline given to the server's `statement_timeout` and to connecting. */
const SERVER_SHARE = 0.9;

/** The checked options of {@link PostgresBackendOptions}, defaults applied. */
export interface ResolvedPostgresBackendOptions {
  readonly timeoutMs: number;
  /** `statement_timeout` and `connectionTimeoutMillis` of a pool the backend builds. */
  readonly serverTimeoutMs: number;
  readonly table: TableName;
  readonly createTable: boolean;
  readonly listen: boolean;
  readonly purgeIntervalMs: number;
  readonly purgeBatchSize: number;
  readonly maxValueBytes: number;
}

function positiveInteger(name: string, value: unknown, fallback: number, options: { zero?: boolean; max?: number } = {}): number {
  if (value === undefined) return fallback;
  const ok =
    Number.isSafeInteger(value) && (value as number) >= (options.zero === true ? 0 : 1) && (value as number) <= (options.max ?? Infinity);
  if (!ok) {
    const range = `${options.zero === true ? 'a non-negative' : 'a positive'} integer${options.max === undefined ? '' : ` up to ${options.max}`}`;
    throw new ValidationError(`PostgresBackend: ${name} must be ${range}, got ${String(value)}.`);
  }
  return value as number;
}

function flag(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new ValidationError(`PostgresBackend: ${name} must be a boolean, got ${typeof value}.`);
  return value;
}

/**
 * Checks the options and applies their defaults.
 * @throws {ValidationError} for a non-object, both `url` and `pool`, or a bad value.
 */
export function resolvePostgresBackendOptions(options: PostgresBackendOptions): ResolvedPostgresBackendOptions {
  if (typeof options !== 'object' || options === null) throw new ValidationError('PostgresBackend options must be an object.');
  const { url, pool, poolOptions } = options;
  if (url !== undefined && pool !== undefined) throw new ValidationError('PostgresBackend: give either url or pool, not both.');
  if (url !== undefined && (typeof url !== 'string' || url === ''))
    throw new ValidationError('PostgresBackend: url must be a non-empty string.');
  if (pool !== undefined && (typeof pool !== 'object' || pool === null || typeof (pool as Partial<Pool>).connect !== 'function')) {
    throw new ValidationError('PostgresBackend: pool must be a pg Pool.');
  }
  if (pool !== undefined && poolOptions !== undefined)
    throw new ValidationError('PostgresBackend: poolOptions apply to a pool the backend builds, not to a given pool.');
  if (poolOptions !== undefined && (typeof poolOptions !== 'object' || poolOptions === null))
    throw new ValidationError('PostgresBackend: poolOptions must be an object.');
  const timeoutMs = options.operationTimeoutMs ?? DEFAULT_OPERATION_TIMEOUT_MS;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new ValidationError(`PostgresBackend: operationTimeoutMs must be a positive finite number, got ${String(timeoutMs)}.`);
  }
  return {
    timeoutMs,
    serverTimeoutMs: Math.max(1, Math.floor(timeoutMs * SERVER_SHARE)),
    table: parseTableName(options.table ?? DEFAULT_TABLE),
    createTable: flag('createTable', options.createTable, true),
    listen: flag('listen', options.listen, true),
    purgeIntervalMs: positiveInteger('purgeIntervalMs', options.purgeIntervalMs, DEFAULT_PURGE_INTERVAL_MS, { zero: true }),
    purgeBatchSize: positiveInteger('purgeBatchSize', options.purgeBatchSize, DEFAULT_PURGE_BATCH_SIZE),
    maxValueBytes: positiveInteger('maxValueBytes', options.maxValueBytes, DEFAULT_MAX_VALUE_BYTES, { max: MAX_MAX_VALUE_BYTES }),
  };
}
