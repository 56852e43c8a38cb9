/**
 * memcached suite: `KeyValueStore` over `MemcachedBackend` against raw memjs and keyv's
 * memcache adapter on the same server.
 *
 * @module
 */
import { deserialize, serialize } from 'node:v8';
import type { KeyValueStore } from '@latchkey/core';
import KeyvMemcache from '@keyv/memcache';
import Keyv from 'keyv';
import memjs from 'memjs';
import { errorMessage, ratioAtLeast, type Suite } from '../harness/index.js';
import { closeAll, loadBackendClass, storeOver, type Closer } from './adapters.js';
import { BATCH, kvCasesWithSingleCall, latchkeyKvClient, type KvClient } from './kv-cases.js';
import { keyvClient } from './keyv-client.js';
import { versions } from './packages.js';
import { memcachedServer } from './servers.js';

/** The options of `MemcachedBackend` this suite uses (docs/API.md, "Adapters"). */
interface MemcachedBackendOptions {
  readonly servers: string;
  readonly keyPrefix?: string;
}

const RAW_PREFIX = 'bench:raw:';
const LATCHKEY_PREFIX = 'bench:lk:';
const KEYV_NAMESPACE = 'bench-keyv';
const RAW = 'raw memjs';

function missingValue(key: string): Error {
  return new Error(`${key} is missing`);
}

function decodeFound(key: string, found: { value: Buffer | null }): unknown {
  if (found.value === null) throw missingValue(key);
  return deserialize(found.value) as unknown;
}

function rawClient(client: memjs.Client): KvClient {
  return {
    name: RAW,
    does: {
      get: '`client.get(key)` + `v8.deserialize` (what you would write by hand)',
      set: '`client.set(key, v8.serialize(value), { expires: 0 })`',
      getMany: `${BATCH} parallel \`client.get(key)\` (memjs has no multi-get) + \`v8.deserialize\` each`,
    },
    fill: async (entries) => {
      await Promise.all(entries.map(([key, value]) => client.set(RAW_PREFIX + key, serialize(value), { expires: 0 })));
    },
    get: async (key) => decodeFound(key, await client.get(RAW_PREFIX + key)),
    set: (key, value) => client.set(RAW_PREFIX + key, serialize(value), { expires: 0 }),
    getMany: async (keys) => {
      const found = await Promise.all(keys.map((key) => client.get(RAW_PREFIX + key)));
      return found.map((item, i) => decodeFound(keys[i] as string, item));
    },
  };
}

/** The first server's version from `stats` (memjs calls back once per server). */
function serverVersion(client: memjs.Client): Promise<string> {
  return new Promise<string>((resolve) => {
    let answered = false;
    const timer = setTimeout(() => finish('?'), 2_000);
    function finish(version: string): void {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      resolve(version);
    }
    client.stats((error, _server, stats) => finish(error === null ? (stats?.['version'] ?? '?') : '?'));
  });
}

/** The `memcached` suite. */
export const memcachedSuite: Suite = {
  name: 'memcached',
  title: 'KeyValueStore over MemcachedBackend vs raw memjs vs keyv',
  description:
    'One memcached server, loopback, the same number of operations in flight for every contender. Raw memjs encodes with `v8.serialize` like the store does. ' +
    `Targets: ≥ 0.9× raw memjs on get/set; latchkey's getMany(${BATCH}) faster than ${BATCH} parallel raw gets.`,
  prepare: async (options) => {
    const loaded = await loadBackendClass<MemcachedBackendOptions>('@latchkey/memcached', 'MemcachedBackend');
    if ('missing' in loaded && !options.withoutAdapter) return { skip: loaded.missing };
    const server = await memcachedServer();
    if ('unavailable' in server) return { skip: server.unavailable };

    const closers: Closer[] = [['the server', () => server.stop()]];
    const teardown = (): Promise<void> => closeAll([...closers].reverse());
    try {
      const raw = memjs.Client.create(server.url, { retries: 0, logger: { log: () => undefined } });
      closers.push(['the raw memjs client', () => raw.close()]);
      const keyv = new Keyv({ store: new KeyvMemcache(server.url), namespace: KEYV_NAMESPACE });
      closers.push(['keyv', () => keyv.disconnect()]);

      let store: KeyValueStore | string;
      if ('missing' in loaded) store = loaded.missing;
      else {
        try {
          store = await storeOver('memcached', new loaded.backend({ servers: server.url, keyPrefix: LATCHKEY_PREFIX }));
        } catch (error) {
          store = `MemcachedBackend could not be set up: ${errorMessage(error)}`;
        }
      }
      if (typeof store !== 'string') {
        const opened = store;
        closers.push(['the latchkey store', () => opened.close()]);
      }

      return {
        notes: [
          `server: ${server.origin}, memcached ${await serverVersion(raw)}`,
          `clients: ${versions('memjs', 'keyv', '@keyv/memcache')}; raw memjs with \`retries: 0\` and its default 0.5 s timeout (its timeouts show as failed ops)`,
          'every contender has its own connection',
        ],
        cases: kvCasesWithSingleCall({
          baseline: RAW,
          clients: [latchkeyKvClient(store, '`MemcachedBackend`'), rawClient(raw), keyvClient(keyv, '@keyv/memcache on memjs')],
          concurrency: 32,
          batchConcurrency: 8,
          targets: {
            get: [ratioAtLeast('latchkey', RAW, 0.9)],
            set: [ratioAtLeast('latchkey', RAW, 0.9)],
            getMany: [
              ratioAtLeast('latchkey', RAW, 1, `latchkey getMany(${BATCH}) faster than ${BATCH} parallel raw memjs gets (> 1.00×)`),
            ],
          },
        }),
        teardown,
      };
    } catch (error) {
      await teardown();
      throw error;
    }
  },
};
