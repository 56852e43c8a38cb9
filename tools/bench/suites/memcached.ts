/**
 * memcached suite: `KeyValueStore` over `MemcachedBackend` against raw memjs and keyv's
 * memcache adapter on the same server.
 *
 * @module
 */
import type { KeyValueStore } from '@latchkey/core';
import KeyvMemcache from '@keyv/memcache';
import Keyv from 'keyv';
import memjs from 'memjs';
import { errorMessage, type Suite } from '../harness/index.js';
import { closeAll, loadBackendClass, storeOver, type Closer } from './adapters.js';
import { BATCH, IN_FLIGHT, kvCasesInFlight, latchkeyKvClient, RAW_GOAL, type KvClient } from './kv-cases.js';
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
  return JSON.parse(found.value.toString('utf8')) as unknown;
}

/** What one would write by hand over memjs: `JSON.stringify` strings, `JSON.parse` of the returned bytes. */
function rawClient(client: memjs.Client): KvClient {
  return {
    name: RAW,
    does: {
      get: '`client.get(key)` + `JSON.parse` (what you would write by hand)',
      set: '`client.set(key, JSON.stringify(value), { expires: 0 })`',
      getMany: `${BATCH} parallel \`client.get(key)\` (memjs has no multi-get) + \`JSON.parse\` each`,
    },
    fill: async (entries) => {
      await Promise.all(entries.map(([key, value]) => client.set(RAW_PREFIX + key, JSON.stringify(value), { expires: 0 })));
    },
    get: async (key) => decodeFound(key, await client.get(RAW_PREFIX + key)),
    set: (key, value) => client.set(RAW_PREFIX + key, JSON.stringify(value), { expires: 0 }),
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
    `One memcached server, loopback, the same keys and the same number of operations in flight (${IN_FLIGHT.join(', then ')}) for every contender. ` +
    'Raw memjs does the job by hand: `JSON.stringify` on write, `JSON.parse` on read; memjs has no multi-get, so its getMany is ' +
    `${BATCH} parallel gets. Targets: ≥ ${RAW_GOAL.toFixed(2)}× raw memjs and ≥ 1.00× keyv on get/set/getMany at both levels.`,
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
        cases: kvCasesInFlight({
          baseline: RAW,
          clients: [latchkeyKvClient(store, '`MemcachedBackend`'), rawClient(raw), keyvClient(keyv, '@keyv/memcache on memjs')],
        }),
        teardown,
      };
    } catch (error) {
      await teardown();
      throw error;
    }
  },
};
