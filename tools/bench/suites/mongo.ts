/**
 * Mongo suite: `KeyValueStore` over `MongoBackend` against the raw driver and keyv's mongo
 * adapter on the same MongoDB-wire server (mongod, or FerretDB where mongod is missing).
 *
 * @module
 */
import type { KeyValueStore } from '@latchkey/core';
import KeyvMongo from '@keyv/mongo';
import Keyv from 'keyv';
import { MongoClient, type Collection, type Db } from 'mongodb';
import { errorMessage, type Suite, type Timing } from '../harness/index.js';
import { closeAll, loadBackendClass, storeOver, type Closer } from './adapters.js';
import { IN_FLIGHT, kvCasesInFlight, latchkeyKvClient, RAW_GOAL, unavailableKvClient, type KvClient } from './kv-cases.js';
import { keyvClient } from './keyv-client.js';
import { versions } from './packages.js';
import { mongoServer } from './servers.js';

/** The options of `MongoBackend` this suite uses (docs/API.md, "Adapters"). */
interface MongoBackendOptions {
  readonly url: string;
  readonly dbName: string;
  readonly collection: string;
  readonly documentTtlIndex?: boolean;
}

const DB = 'latchkey_bench';
const RAW = 'raw mongodb';
/** Fewer keys than the other suites: FerretDB (the usual server here) writes slowly. */
const KEY_COUNT = 300;
/**
 * Longer rounds at many in flight: on FerretDB a getMany(100) takes tens of ms, so draining 64
 * of them would fill most of a default 400 ms round and leave only a few dozen operations in it.
 */
const MANY_IN_FLIGHT_TIMING: Partial<Timing> = { roundMs: 1_000, warmupMs: 400 };

interface RawDocument {
  _id: string;
  /** `JSON.stringify` of the value. */
  v: string;
}

function missingValue(key: string): Error {
  return new Error(`${key} is missing`);
}

function decode(key: string, doc: RawDocument | null | undefined): unknown {
  if (doc === null || doc === undefined) throw missingValue(key);
  return JSON.parse(doc.v) as unknown;
}

/** What one would write by hand over the driver: one document per key, the value's JSON in a string field. */
function rawClient(collection: Collection<RawDocument>): KvClient {
  return {
    name: RAW,
    does: {
      get: '`findOne({ _id: key })` + `JSON.parse` of a string field (what you would write by hand)',
      set: '`updateOne({ _id: key }, { $set: { v: JSON.stringify(value) } }, { upsert: true })`',
      getMany: '`find({ _id: { $in: keys } })`, reordered to input order, + `JSON.parse` each',
    },
    fill: async (entries) => {
      await collection.bulkWrite(
        entries.map(([key, value]) => ({
          replaceOne: { filter: { _id: key }, replacement: { _id: key, v: JSON.stringify(value) }, upsert: true },
        })),
        { ordered: false },
      );
    },
    get: async (key) => decode(key, await collection.findOne({ _id: key })),
    set: (key, value) => collection.updateOne({ _id: key }, { $set: { v: JSON.stringify(value) } }, { upsert: true }),
    getMany: async (keys) => {
      const docs = await collection.find({ _id: { $in: [...keys] } }).toArray();
      const byId = new Map(docs.map((doc) => [doc._id, doc]));
      return keys.map((key) => decode(key, byId.get(key)));
    },
  };
}

/** Why the server cannot make a TTL index (FerretDB 1.x cannot), or `undefined` when it can. */
async function ttlIndexUnsupported(db: Db): Promise<string | undefined> {
  const probe = db.collection('ttl_probe');
  try {
    await probe.createIndex({ expiresAt: 1 }, { expireAfterSeconds: 0 });
    return undefined;
  } catch (error) {
    return errorMessage(error);
  } finally {
    // When createIndex failed the collection may not exist, and drop then fails: nothing to clean.
    await probe.drop().catch(() => false);
  }
}

/** The `mongo` suite. */
export const mongoSuite: Suite = {
  name: 'mongo',
  title: 'KeyValueStore over MongoBackend vs the raw mongodb driver vs keyv',
  description:
    `The same MongoDB-wire server, loopback, the same keys and the same number of operations in flight (${IN_FLIGHT.join(', then ')}) for every contender. ` +
    'The raw driver does the job by hand: one document per key, `JSON.stringify` of the value in a string field, `JSON.parse` on read. ' +
    `Targets: ≥ ${RAW_GOAL.toFixed(2)}× the raw driver and ≥ 1.00× keyv on get/set/getMany at both levels.`,
  prepare: async (options) => {
    const loaded = await loadBackendClass<MongoBackendOptions>('@latchkey/mongo', 'MongoBackend');
    if ('missing' in loaded && !options.withoutAdapter) return { skip: loaded.missing };
    const server = await mongoServer();
    if ('unavailable' in server) return { skip: server.unavailable };

    const closers: Closer[] = [['the server', () => server.stop()]];
    const teardown = (): Promise<void> => closeAll([...closers].reverse());
    try {
      const client = new MongoClient(server.url, { serverSelectionTimeoutMS: 5_000 });
      closers.push(['the raw MongoClient', () => client.close()]);
      await client.connect();
      const db = client.db(DB);
      if (!server.dedicated) closers.push(['dropping the bench database', () => db.dropDatabase()]);
      const collection = db.collection<RawDocument>('raw');
      const noTtl = await ttlIndexUnsupported(db);
      let keyvContender: KvClient;
      if (noTtl === undefined) {
        const keyv = new Keyv({ store: new KeyvMongo({ url: server.url, db: DB, collection: 'keyv' }) });
        closers.push(['keyv', () => keyv.disconnect()]);
        keyvContender = keyvClient(keyv, '@keyv/mongo');
      } else {
        // @keyv/mongo's connect never settles when its TTL index fails, leaking its MongoClient: do not start it.
        keyvContender = unavailableKvClient('keyv', `@keyv/mongo needs a TTL index, which this server refuses (${noTtl})`, {
          get: '@keyv/mongo',
          set: '',
          getMany: '',
        });
      }

      let store: KeyValueStore | string;
      if ('missing' in loaded) store = loaded.missing;
      else {
        try {
          // Without TTL indexes (FerretDB 1.x) the backend warns that expired documents stay until read; say we know.
          const ttl = noTtl === undefined ? {} : { documentTtlIndex: false };
          store = await storeOver('mongo', new loaded.backend({ url: server.url, dbName: DB, collection: 'latchkey', ...ttl }));
        } catch (error) {
          store = `MongoBackend could not be set up: ${errorMessage(error)}`;
        }
      }
      if (typeof store !== 'string') {
        const opened = store;
        closers.push(['the latchkey store', () => opened.close()]);
      }
      const build = (await db.admin().command({ buildInfo: 1 })) as { version?: string; ferretdbVersion?: string };
      const engine =
        build.ferretdbVersion === undefined
          ? `MongoDB ${build.version ?? '?'}`
          : `FerretDB (version ${build.ferretdbVersion}, reports MongoDB ${build.version ?? '?'})`;

      return {
        notes: [
          `server: ${server.origin}, ${engine}`,
          ...(noTtl === undefined ? [] : ['the server has no TTL indexes, so `MongoBackend` runs with `documentTtlIndex: false`']),
          `clients: ${versions('mongodb', 'keyv', '@keyv/mongo')}`,
          'every contender has its own MongoClient (connection pool)',
        ],
        cases: kvCasesInFlight(
          {
            baseline: RAW,
            clients: [latchkeyKvClient(store, '`MongoBackend`'), rawClient(collection), keyvContender],
            keyCount: KEY_COUNT,
          },
          IN_FLIGHT,
          (level) => (level > 1 ? MANY_IN_FLIGHT_TIMING : undefined),
        ),
        teardown,
      };
    } catch (error) {
      await teardown();
      throw error;
    }
  },
};
