/**
 * SQLite suite: `KeyValueStore` over `SqliteBackend` against raw better-sqlite3 and keyv's
 * sqlite adapter, each on its own database file in one temp folder, at 1 and 64 operations in
 * flight. No server.
 *
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KeyValueStore } from '@latchkey/core';
import KeyvSqlite from '@keyv/sqlite';
import Database from 'better-sqlite3';
import Keyv from 'keyv';
import { errorMessage, type Suite } from '../harness/index.js';
import { closeAll, loadBackendClass, storeOver, type Closer } from './adapters.js';
import { BATCH, IN_FLIGHT, kvCasesInFlight, latchkeyKvClient, RAW_GOAL, type KvClient } from './kv-cases.js';
import { keyvClient } from './keyv-client.js';
import { versions } from './packages.js';

/** The options of `SqliteBackend` this suite uses (packages/sqlite/README.md). */
interface SqliteBackendOptions {
  readonly filename: string;
}

const RAW = 'raw better-sqlite3';

function missingValue(key: string): Error {
  return new Error(`${key} is missing`);
}

function decode(key: string, bytes: Buffer | undefined): unknown {
  if (bytes === undefined) throw missingValue(key);
  return JSON.parse(bytes.toString('utf8')) as unknown;
}

function encode(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

/**
 * What one would write by hand with better-sqlite3: a `key TEXT PRIMARY KEY, value BLOB`
 * table in WAL mode with `synchronous = NORMAL` (as `SqliteBackend` sets them), statements
 * prepared once, JSON in and out. better-sqlite3 is synchronous: each call runs to the end
 * inside its async operation, as `SqliteBackend`'s do.
 */
function rawClient(db: Database.Database): KvClient {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE IF NOT EXISTS raw (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL)');
  const get = db.prepare<[string], { value: Buffer }>('SELECT value FROM raw WHERE key = ?');
  const set = db.prepare<[string, Buffer]>(
    'INSERT INTO raw (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
  );
  const getMany = db.prepare<string[], { key: string; value: Buffer }>(
    `SELECT key, value FROM raw WHERE key IN (${Array.from({ length: BATCH }, () => '?').join(', ')})`,
  );
  const fill = db.transaction((entries: readonly (readonly [string, unknown])[]) => {
    for (const [key, value] of entries) set.run(key, encode(value));
  });
  return {
    name: RAW,
    does: {
      get: '`SELECT value … WHERE key = ?` (prepared once) + `JSON.parse` (what you would write by hand)',
      set: '`INSERT … ON CONFLICT (key) DO UPDATE` of `JSON.stringify(value)` as a BLOB (its own transaction)',
      getMany: `\`SELECT key, value … WHERE key IN (?, …)\` (${BATCH} placeholders, prepared once), reordered to input order, + \`JSON.parse\` each`,
    },
    fill: async (entries) => {
      fill(entries);
    },
    get: async (key) => decode(key, get.get(key)?.value),
    set: async (key, value) => set.run(key, encode(value)),
    getMany: async (keys) => {
      const byKey = new Map(getMany.all(...keys).map((row) => [row.key, row.value]));
      return keys.map((key) => decode(key, byKey.get(key)));
    },
  };
}

/** The `sqlite` suite. */
export const sqliteSuite: Suite = {
  name: 'sqlite',
  title: 'KeyValueStore over SqliteBackend vs raw better-sqlite3 vs keyv',
  description:
    'No server: each contender has its own database file in one temp folder (the same disk), the same keys and the same number of ' +
    'operations in flight (1, then 64). Raw better-sqlite3 stores `JSON.stringify` bytes in a BLOB column, WAL mode, `synchronous = NORMAL`. ' +
    `Targets: ≥ ${RAW_GOAL.toFixed(2)}× raw better-sqlite3 and ≥ 1.00× keyv on get/set/getMany at both levels.`,
  prepare: async (options) => {
    const loaded = await loadBackendClass<SqliteBackendOptions>('@latchkey/sqlite', 'SqliteBackend');
    if ('missing' in loaded && !options.withoutAdapter) return { skip: loaded.missing };
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-bench-sqlite-'));
    const closers: Closer[] = [['the temp folder', () => rmSync(dir, { recursive: true, force: true })]];
    const teardown = (): Promise<void> => closeAll([...closers].reverse());
    try {
      const db = new Database(join(dir, 'raw.db'));
      closers.push(['the raw database', () => db.close()]);
      const raw = rawClient(db);

      const keyv = new Keyv({ store: new KeyvSqlite({ uri: `sqlite://${join(dir, 'keyv.db')}` }) });
      closers.push(['keyv', () => keyv.disconnect()]);

      let store: KeyValueStore | string;
      if ('missing' in loaded) store = loaded.missing;
      else {
        try {
          store = await storeOver('sqlite', new loaded.backend({ filename: join(dir, 'latchkey.db') }));
        } catch (error) {
          store = `SqliteBackend could not be set up: ${errorMessage(error)}`;
        }
      }
      if (typeof store !== 'string') {
        const opened = store;
        closers.push(['the latchkey store', () => opened.close()]);
      }
      const version = (db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
      return {
        notes: [
          `database: files in ${tmpdir()}, SQLite ${version} (better-sqlite3's)`,
          `clients: ${versions('better-sqlite3', 'sqlite3', 'keyv', '@keyv/sqlite')}`,
          'keyv runs on the sqlite3 driver (asynchronous, its own thread pool) with its own defaults (journal mode, synchronous)',
        ],
        cases: kvCasesInFlight(
          {
            baseline: RAW,
            clients: [
              latchkeyKvClient(store, '`SqliteBackend`', ' (point reads in one read transaction)'),
              raw,
              keyvClient(keyv, '@keyv/sqlite'),
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
