/**
 * Postgres suite: `KeyValueStore` over `PostgresBackend` against raw `pg` and keyv's postgres
 * adapter on the same throwaway PostgreSQL, at 1 and 64 operations in flight.
 *
 * @module
 */
import type { KeyValueStore } from '@latchkey/core';
import KeyvPostgres from '@keyv/postgres';
import Keyv from 'keyv';
import pg from 'pg';
import { errorMessage, type Suite } from '../harness/index.js';
import { closeAll, loadBackendClass, storeOver, type Closer } from './adapters.js';
import { IN_FLIGHT, kvCasesInFlight, latchkeyKvClient, RAW_GOAL, type KvClient } from './kv-cases.js';
import { keyvClient } from './keyv-client.js';
import { versions } from './packages.js';
import { postgresServer } from './servers.js';

/** The options of `PostgresBackend` this suite uses (packages/postgres/README.md). */
interface PostgresBackendOptions {
  readonly url: string;
  readonly table?: string;
}

const RAW = 'raw pg';
const RAW_TABLE = 'bench_raw';
const LATCHKEY_TABLE = 'bench_latchkey';
const KEYV_TABLE = 'bench_keyv';

function missingValue(key: string): Error {
  return new Error(`${key} is missing`);
}

function decode(key: string, bytes: Buffer | null | undefined): unknown {
  if (bytes === null || bytes === undefined) throw missingValue(key);
  return JSON.parse(bytes.toString('utf8')) as unknown;
}

function encode(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

/**
 * What one would write by hand over a pg pool: a `key text PRIMARY KEY, value bytea` table,
 * JSON in and out, and named (prepared once per connection) statements, as latchkey's are.
 */
function rawClient(pool: pg.Pool): KvClient {
  const get = { name: 'bench_raw_get', text: `SELECT value FROM ${RAW_TABLE} WHERE key = $1` };
  const set = {
    name: 'bench_raw_set',
    text: `INSERT INTO ${RAW_TABLE} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
  };
  const getMany = { name: 'bench_raw_get_many', text: `SELECT key, value FROM ${RAW_TABLE} WHERE key = ANY($1::text[])` };
  return {
    name: RAW,
    does: {
      get: '`pool.query(SELECT value … WHERE key = $1)` (a named statement) + `JSON.parse` (what you would write by hand)',
      set: '`INSERT … ON CONFLICT (key) DO UPDATE` of `JSON.stringify(value)` as bytea',
      getMany: '`SELECT key, value … WHERE key = ANY($1)`, reordered to input order, + `JSON.parse` each',
    },
    fill: async (entries) => {
      await pool.query(
        `INSERT INTO ${RAW_TABLE} (key, value) SELECT * FROM unnest($1::text[], $2::bytea[]) ` +
          'ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value',
        [entries.map(([key]) => key), entries.map(([, value]) => encode(value))],
      );
    },
    get: async (key) => {
      const result = await pool.query<{ value: Buffer }>({ ...get, values: [key] });
      return decode(key, result.rows[0]?.value);
    },
    set: (key, value) => pool.query({ ...set, values: [key, encode(value)] }),
    getMany: async (keys) => {
      const result = await pool.query<{ key: string; value: Buffer }>({ ...getMany, values: [keys] });
      const byKey = new Map(result.rows.map((row) => [row.key, row.value]));
      return keys.map((key) => decode(key, byKey.get(key)));
    },
  };
}

/** The `postgres` suite. */
export const postgresSuite: Suite = {
  name: 'postgres',
  title: 'KeyValueStore over PostgresBackend vs raw pg vs keyv',
  description:
    'The same throwaway PostgreSQL, loopback, the same keys and the same number of operations in flight (1, then 64) for every contender, ' +
    "each with its own pool of at most 10 connections (pg's default). Raw pg stores `JSON.stringify` bytes in a bytea column, one row per key. " +
    `Targets: ≥ ${RAW_GOAL.toFixed(2)}× raw pg and ≥ 1.00× keyv on get/set/getMany at both levels.`,
  prepare: async (options) => {
    const loaded = await loadBackendClass<PostgresBackendOptions>('@latchkey/postgres', 'PostgresBackend');
    if ('missing' in loaded && !options.withoutAdapter) return { skip: loaded.missing };
    const server = await postgresServer();
    if ('unavailable' in server) return { skip: server.unavailable };

    const closers: Closer[] = [['the server', () => server.stop()]];
    const teardown = (): Promise<void> => closeAll([...closers].reverse());
    try {
      const pool = new pg.Pool({ connectionString: server.url, allowExitOnIdle: true });
      closers.push(['the raw pg pool', () => pool.end()]);
      await pool.query(`CREATE TABLE IF NOT EXISTS ${RAW_TABLE} (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL)`);
      if (!server.dedicated)
        closers.push([
          'dropping the bench tables',
          () => pool.query(`DROP TABLE IF EXISTS ${RAW_TABLE}, ${LATCHKEY_TABLE}, ${KEYV_TABLE}`),
        ]);

      const keyv = new Keyv({ store: new KeyvPostgres({ uri: server.url, table: KEYV_TABLE }) });
      closers.push(['keyv', () => keyv.disconnect()]);

      let store: KeyValueStore | string;
      if ('missing' in loaded) store = loaded.missing;
      else {
        try {
          store = await storeOver('postgres', new loaded.backend({ url: server.url, table: LATCHKEY_TABLE }));
        } catch (error) {
          store = `PostgresBackend could not be set up: ${errorMessage(error)}`;
        }
      }
      if (typeof store !== 'string') {
        const opened = store;
        closers.push(['the latchkey store', () => opened.close()]);
      }
      const version = (await pool.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version ?? '?';
      return {
        notes: [
          `server: ${server.origin}, PostgreSQL ${version}`,
          `clients: ${versions('pg', 'keyv', '@keyv/postgres')}`,
          'every contender has its own pg pool (at most 10 connections)',
        ],
        cases: kvCasesInFlight(
          {
            baseline: RAW,
            clients: [
              latchkeyKvClient(store, '`PostgresBackend`', ' (one `unnest … WITH ORDINALITY` statement)'),
              rawClient(pool),
              keyvClient(keyv, '@keyv/postgres'),
            ],
          },
          IN_FLIGHT,
        ),
        teardown,
      };
    } catch (error) {
      await teardown();
      throw error;
    }
  },
};
