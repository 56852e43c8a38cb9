/**
 * The SQL of PostgresBackend: the table name as a checked, quoted identifier, the schema,
 * and one statement per operation. Every conditional operation is one statement, so the
 * check and the write are one atomic step on the server; every time comparison uses the
 * server's `clock_timestamp()`, so client clocks never matter.
 */

import { createHash } from 'node:crypto';
import { InvalidKeyError, ValidationError } from '@latchkey/core';

/** A table name part: letters, digits and `_`, not starting with a digit (so derived names stay valid). */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Longest table name part: PostgreSQL keeps 63 bytes, and the index name adds `_expires_idx`. */
export const MAX_TABLE_NAME_LENGTH = 48;

/** The checked table of a backend. */
export interface TableName {
  /** The schema, when the name was `schema.table`; else the search path decides. */
  readonly schema: string | undefined;
  /** The table itself. */
  readonly name: string;
  /** As written into SQL: each part double-quoted (`"schema"."table"`), so case is kept. */
  readonly sql: string;
  /** As given (`schema.table` or `table`), for messages. */
  readonly text: string;
}

/**
 * Checks `table` (`name` or `schema.name`, each part letters, digits and `_`, not starting
 * with a digit, at most {@link MAX_TABLE_NAME_LENGTH} characters) and quotes it.
 * @throws {ValidationError} otherwise.
 */
export function parseTableName(table: unknown): TableName {
  if (typeof table !== 'string') throw new ValidationError(`PostgresBackend: table must be a string, got ${typeof table}.`);
  const parts = table.split('.');
  const valid = parts.length <= 2 && parts.every((part) => IDENTIFIER.test(part) && part.length <= MAX_TABLE_NAME_LENGTH);
  if (!valid) {
    throw new ValidationError(
      `PostgresBackend: table must be "name" or "schema.name", each part letters, digits and _ (not starting with a digit), ` +
        `at most ${MAX_TABLE_NAME_LENGTH} characters; got ${JSON.stringify(table)}.`,
    );
  }
  const [first, second] = parts as [string, string | undefined];
  const schema = second === undefined ? undefined : first;
  const name = second ?? first;
  return { schema, name, sql: parts.map((part) => `"${part}"`).join('.'), text: table };
}

/**
 * Asserts a stored key can be a PostgreSQL `text` value that round-trips: no NUL character
 * (text cannot hold one) and no lone surrogate (UTF-8 has no encoding for it, so two such
 * keys would become the same key).
 * @throws {InvalidKeyError} otherwise.
 */
export function checkTextKey(key: string): void {
  if (key.includes('\u0000')) throw new InvalidKeyError(key, 'PostgreSQL text cannot hold a NUL character');
  if (!key.isWellFormed()) throw new InvalidKeyError(key, 'keys must be well-formed UTF-16 (no lone surrogates)');
}

/**
 * A `bytea` result in text form as fresh bytes: hex (`\x…`, the default `bytea_output`),
 * or the older escape form (`\ooo` octal escapes and `\\`) a server may be set to.
 */
export function decodeBytea(text: string): Buffer {
  if (text.startsWith('\\x')) return Buffer.from(text.slice(2), 'hex');
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i);
    if (char !== 0x5c) {
      bytes.push(char);
    } else if (text[i + 1] === '\\') {
      bytes.push(0x5c);
      i += 1;
    } else {
      bytes.push(parseInt(text.slice(i + 1, i + 4), 8));
      i += 3;
    }
  }
  return Buffer.from(bytes);
}

/**
 * `values` as one binary-format `bytea[]` parameter (pg sends a Buffer parameter as binary):
 * each value once, as it is now, instead of pg's hex text literal of twice the size.
 */
export function encodeByteaArray(values: readonly Uint8Array[]): Buffer {
  const total = values.reduce((sum, value) => sum + 4 + value.byteLength, 0);
  // Header: dimensions, has-nulls flag, element type (bytea), then length and lower bound of the one dimension.
  const out = Buffer.allocUnsafe(20 + total);
  out.writeInt32BE(1, 0);
  out.writeInt32BE(0, 4);
  out.writeUInt32BE(BYTEA_OID, 8);
  out.writeInt32BE(values.length, 12);
  out.writeInt32BE(1, 16);
  let offset = 20;
  for (const value of values) {
    out.writeInt32BE(value.byteLength, offset);
    out.set(value, offset + 4);
    offset += 4 + value.byteLength;
  }
  return out;
}

/** Keys one statement of `keys()` reads at most: a page, so a large table is never read in one result. */
export const KEYS_PAGE_SIZE = 500;

/** The type oid of `bytea`. */
const BYTEA_OID = 17;

/** Longest relative expiry or lease sent, in ms (about 31,700 years): beyond it timestamps overflow. */
const MAX_RELATIVE_MS = 1e15;

/**
 * The expiry parameter of a write: ms from now (`<= 0` when already past), `null` for none.
 * Relative, and added to the server's clock by the statement.
 */
export function expiryParam(expiresAt: number | undefined, now: number = Date.now()): number | null {
  if (expiresAt === undefined || expiresAt === Infinity) return null;
  return Math.min(MAX_RELATIVE_MS, Math.max(-1, expiresAt - now));
}

/** The lease parameter of acquire and extend: ms from now, `null` for a lease that never lapses (`0`). */
export function leaseParam(leaseMs: number): number | null {
  return leaseMs === 0 ? null : Math.min(MAX_RELATIVE_MS, leaseMs);
}

/** The NOTIFY channel of a table's releases: `latchkey_` and a digest of the table name (channels are 63 bytes at most). */
export function releaseChannel(table: TableName): string {
  return `latchkey_${digest(table.text)}`;
}

function digest(text: string): string {
  return createHash('sha1').update(text).digest('hex').slice(0, 16);
}

/** A statement of the backend: its text and the name it is prepared under on each connection. */
export interface Statement {
  readonly name: string;
  readonly text: string;
}

/** `expires_at` of a row whose value is gone: `-infinity` (found by the purge) unless a fence must stay. */
const CLEARED_EXPIRY = `CASE WHEN t.fence = 0 THEN '-infinity'::timestamptz END`;
/** The row holds a value that has not expired. */
const LIVE_VALUE = '(t.value IS NOT NULL AND (t.expires_at IS NULL OR t.expires_at > clock_timestamp()))';
/** The row's lock is held by `$2` and has not lapsed. */
const HELD_BY_TOKEN = '(t.lock_token = $2 AND (t.lock_expires_at IS NULL OR t.lock_expires_at > clock_timestamp()))';
/** `clock_timestamp()` plus `$n` ms (`NULL` stays `NULL`: no expiry). */
const fromNow = (param: string): string => `clock_timestamp() + ${param}::float8 * interval '1 millisecond'`;

/** The statements of one table. */
export interface Statements {
  /** Creates the table and its expiry index when the table is missing (simple protocol, no parameters). */
  readonly schema: string;
  /** `$1` key → `value` of a live value. */
  readonly get: Statement;
  /** `$1` keys → one `value` per key in input order (`NULL` when missing). */
  readonly getMany: Statement;
  /** `$1` key, `$2` value, `$3` expiry: unconditional upsert; the lock is left as it is. */
  readonly set: Statement;
  /** `$1` key, `$2` token, `$3` value, `$4` expiry: one row when written (the lease held). */
  readonly lockedSet: Statement;
  /** `$1` keys, `$2` values, `$3` expiry: upserts in key order (no duplicates in `$1`). */
  readonly setMany: Statement;
  /** `$1` key: one row when a live value was deleted. */
  readonly delete: Statement;
  /** `$1` key, `$2` token: no row when the lease does not hold; else `live` says whether a value was there. */
  readonly lockedDelete: Statement;
  /** `$1` keys: clears every value, locking rows in key order. */
  readonly deleteMany: Statement;
  /** `$1` key, `$2` token, `$3` lease: `fence` when won, else `retry_in_ms` (`-1`: never lapses). */
  readonly acquire: Statement;
  /** `$1` key, `$2` token, `$3` channel: one row when released (and announced on the channel). */
  readonly release: Statement;
  /** `$1` key, `$2` token, `$3` lease: one row when renewed. */
  readonly extend: Statement;
  /** No parameters: removes every value in one statement (rows that never held a lock go, the others keep lock and fence). */
  readonly clear: Statement;
  /** `$1` the last key of the previous page (`''` first), `$2` page size: the next keys of live values, in key order. */
  readonly keys: Statement;
  /** `$1` key → `found`: whether a live value is stored. */
  readonly has: Statement;
  /** `$1` key, `$2` expected value, `$3` new value, `$4` expiry: one row when the live value was exactly `$2` and is now `$3`. */
  readonly compareAndSet: Statement;
  /** `$1` batch size: removes expired values (rows with a fence keep it), at most `$1` rows; `purged` counts them. */
  readonly purge: Statement;
}

/**
 * The statements for `table`. Statement names are unique per table (a digest of its name),
 * so backends on several tables can share a pool and its prepared statements.
 */
export function statementsFor(table: TableName): Statements {
  const t = table.sql;
  const prefix = `latchkey_${digest(table.text)}_`;
  const statement = (name: string, text: string): Statement => ({ name: prefix + name, text });
  const indexName = `"${table.name}_expires_idx"`;
  // Quotes inside a DO block's string: the validated name holds no single quote.
  const schema = [
    `DO $latchkey$ BEGIN`,
    `IF to_regclass('${t}') IS NULL THEN`,
    `CREATE TABLE IF NOT EXISTS ${t} (`,
    `key text COLLATE "C" PRIMARY KEY, value bytea, expires_at timestamptz,`,
    `lock_token text, lock_expires_at timestamptz, fence bigint NOT NULL DEFAULT 0`,
    `) WITH (fillfactor = 80);`,
    `CREATE INDEX IF NOT EXISTS ${indexName} ON ${t} (expires_at) WHERE expires_at IS NOT NULL;`,
    `END IF; END $latchkey$`,
  ].join('\n');
  return {
    schema,
    get: statement('get', `SELECT t.value FROM ${t} AS t WHERE t.key = $1 AND ${LIVE_VALUE}`),
    getMany: statement(
      'get_many',
      `SELECT t.value FROM unnest($1::text[]) WITH ORDINALITY AS k(key, position) ` +
        `LEFT JOIN ${t} AS t ON t.key = k.key AND ${LIVE_VALUE} ORDER BY k.position`,
    ),
    set: statement(
      'set',
      `INSERT INTO ${t} AS t (key, value, expires_at) VALUES ($1, $2, ${fromNow('$3')}) ` +
        `ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at`,
    ),
    lockedSet: statement(
      'locked_set',
      `UPDATE ${t} AS t SET value = $3, expires_at = ${fromNow('$4')} WHERE t.key = $1 AND ${HELD_BY_TOKEN}`,
    ),
    setMany: statement(
      'set_many',
      `INSERT INTO ${t} AS t (key, value, expires_at) ` +
        `SELECT e.key, e.value, ${fromNow('$3')} FROM unnest($1::text[], $2::bytea[]) AS e(key, value) ` +
        // Rows are locked in key order by every multi-row statement, so two of them never deadlock.
        `ORDER BY e.key COLLATE "C" ` +
        `ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at`,
    ),
    delete: statement('delete', `UPDATE ${t} AS t SET value = NULL, expires_at = ${CLEARED_EXPIRY} WHERE t.key = $1 AND ${LIVE_VALUE}`),
    lockedDelete: statement(
      'locked_delete',
      // FOR UPDATE reads the newest version of the row and keeps it until the update, so
      // `live` is what the delete removed (an UPDATE's RETURNING only sees the new row).
      `WITH held AS (SELECT t.key, ${LIVE_VALUE} AS live FROM ${t} AS t WHERE t.key = $1 AND ${HELD_BY_TOKEN} FOR UPDATE), ` +
        `cleared AS (UPDATE ${t} AS t SET value = NULL, expires_at = NULL FROM held WHERE t.key = held.key AND held.live RETURNING 1) ` +
        `SELECT held.live FROM held`,
    ),
    deleteMany: statement(
      'delete_many',
      `WITH doomed AS (SELECT t.key FROM ${t} AS t WHERE t.key = ANY($1::text[]) AND t.value IS NOT NULL ORDER BY t.key FOR UPDATE) ` +
        `UPDATE ${t} AS t SET value = NULL, expires_at = ${CLEARED_EXPIRY} FROM doomed WHERE t.key = doomed.key`,
    ),
    acquire: statement(
      'acquire',
      `WITH won AS (` +
        `INSERT INTO ${t} AS t (key, lock_token, lock_expires_at, fence) VALUES ($1, $2, ${fromNow('$3')}, 1) ` +
        `ON CONFLICT (key) DO UPDATE SET lock_token = EXCLUDED.lock_token, lock_expires_at = EXCLUDED.lock_expires_at, fence = t.fence + 1 ` +
        `WHERE t.lock_token IS NULL OR t.lock_expires_at <= clock_timestamp() RETURNING t.fence) ` +
        // The hint for a lost attempt reads the statement's snapshot: the holder it names may
        // have changed since. 0 (look again now) when it shows no live lock; see locks.ts.
        `SELECT won.fence::text AS fence, (CASE ` +
        `WHEN held.lock_token IS NULL OR held.lock_expires_at <= clock_timestamp() THEN 0 ` +
        `WHEN held.lock_expires_at IS NULL THEN -1 ` +
        `ELSE ceil(extract(epoch FROM held.lock_expires_at - clock_timestamp()) * 1000) END)::float8 AS retry_in_ms ` +
        `FROM (SELECT 1) AS one LEFT JOIN won ON true LEFT JOIN ${t} AS held ON held.key = $1`,
    ),
    release: statement(
      'release',
      `WITH released AS (UPDATE ${t} AS t SET lock_token = NULL, lock_expires_at = NULL WHERE t.key = $1 AND ${HELD_BY_TOKEN} RETURNING t.key) ` +
        // Delivered when the statement commits: waiters never hear of a release before it is visible.
        `SELECT pg_notify($3, released.key) FROM released`,
    ),
    extend: statement('extend', `UPDATE ${t} AS t SET lock_expires_at = ${fromNow('$3')} WHERE t.key = $1 AND ${HELD_BY_TOKEN}`),
    clear: statement(
      'clear',
      // Rows locked in key order, as by every multi-row statement. FOR UPDATE returns the
      // newest version of each row, so `doomed.fence` is the fence as it is now: a row whose
      // first lock was won while the statement waited keeps it, and no value survives.
      `WITH doomed AS (SELECT t.key, t.fence FROM ${t} AS t WHERE t.value IS NOT NULL ORDER BY t.key FOR UPDATE), ` +
        `gone AS (DELETE FROM ${t} AS t USING doomed WHERE t.key = doomed.key AND doomed.fence = 0 RETURNING 1), ` +
        `cleared AS (UPDATE ${t} AS t SET value = NULL, expires_at = NULL FROM doomed WHERE t.key = doomed.key AND doomed.fence > 0 RETURNING 1) ` +
        `SELECT ((SELECT count(*) FROM gone) + (SELECT count(*) FROM cleared))::int AS cleared`,
    ),
    // Keyset pagination over the primary key (COLLATE "C": byte order, as the pages are cut).
    keys: statement('keys', `SELECT t.key FROM ${t} AS t WHERE t.key > $1 AND ${LIVE_VALUE} ORDER BY t.key LIMIT $2`),
    has: statement('has', `SELECT EXISTS (SELECT 1 FROM ${t} AS t WHERE t.key = $1 AND ${LIVE_VALUE}) AS found`),
    compareAndSet: statement(
      'compare_and_set',
      `UPDATE ${t} AS t SET value = $3, expires_at = ${fromNow('$4')} WHERE t.key = $1 AND t.value = $2 AND ${LIVE_VALUE}`,
    ),
    purge: statement(
      'purge',
      // now(), not clock_timestamp(): a volatile bound could not use the expiry index.
      `WITH doomed AS (SELECT t.key FROM ${t} AS t WHERE t.expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED), ` +
        `gone AS (DELETE FROM ${t} AS t USING doomed WHERE t.key = doomed.key AND t.fence = 0 RETURNING 1), ` +
        `cleared AS (UPDATE ${t} AS t SET value = NULL, expires_at = NULL FROM doomed WHERE t.key = doomed.key AND t.fence > 0 RETURNING 1) ` +
        `SELECT ((SELECT count(*) FROM gone) + (SELECT count(*) FROM cleared))::int AS purged`,
    ),
  };
}
