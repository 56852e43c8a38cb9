/**
 * Redis suite: `KeyValueStore` over `RedisBackend` against raw ioredis and keyv's Redis
 * adapter on the same server, and locked increments against redlock and redis-semaphore.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { KeyValueStore } from '@latchkey/core';
import KeyvRedis from '@keyv/redis';
import { Redis } from 'ioredis';
import Keyv from 'keyv';
import { errorMessage, metricAtLeast, metricAtMost, withTimeout, type BenchCase, type RoundMetrics, type Suite } from '../harness/index.js';
import { closeAll, loadBackendClass, storeOver, type Closer } from './adapters.js';
import { IN_FLIGHT, kvCasesInFlight, latchkeyKvClient, RAW_GOAL, type KvClient } from './kv-cases.js';
import { COMMAND_METRICS, COUNTING_INCREMENTS, INCREMENT_METRICS, incrementContender, type CommandCounter } from './lock-increment.js';
import { latchkeyIncrementer, peerIncrementers } from './redis-incrementers.js';
import { crossProcessLockCases } from './lock-processes.js';
import { keyvClient } from './keyv-client.js';
import { versions } from './packages.js';
import { redisServer } from './servers.js';

/** The options of `RedisBackend` this suite uses (docs/API.md, "Adapters"). */
interface RedisBackendOptions {
  readonly url: string;
  readonly keyPrefix?: string;
}

const RAW_PREFIX = 'bench:raw:';
const LATCHKEY_PREFIX = 'bench:lk:';
const KEYV_NAMESPACE = 'bench-keyv';
const WORKERS = 128;
const RAW = 'raw ioredis';
const RAW_PIPELINED = 'raw ioredis, auto-pipelined';

function missingValue(key: string): Error {
  return new Error(`${key} is missing`);
}

function decode(key: string, text: string | null): unknown {
  if (text === null) throw missingValue(key);
  return JSON.parse(text) as unknown;
}

/** What one would write by hand over ioredis: plain GET / SET / MGET of `JSON.stringify` strings. */
function rawClient(redis: Redis, name: string, how: string): KvClient {
  return {
    name,
    does: {
      get: `\`redis.get(key)\` + \`JSON.parse\` (${how})`,
      set: '`redis.set(key, JSON.stringify(value))`',
      getMany: '`redis.mget(...keys)` + `JSON.parse` each',
    },
    fill: async (entries) => {
      const pipeline = redis.pipeline();
      for (const [key, value] of entries) pipeline.set(RAW_PREFIX + key, JSON.stringify(value));
      await pipeline.exec();
    },
    get: async (key) => decode(key, await redis.get(RAW_PREFIX + key)),
    set: (key, value) => redis.set(RAW_PREFIX + key, JSON.stringify(value)),
    getMany: async (keys) => {
      const found = await redis.mget(...keys.map((key) => RAW_PREFIX + key));
      return found.map((text, i) => decode(keys[i] as string, text));
    },
  };
}

/** Total `calls` in `INFO commandstats`, without the INFO calls themselves. */
async function commandCalls(admin: Redis): Promise<number> {
  const stats = await admin.info('commandstats');
  let total = 0;
  for (const match of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (match[1] !== 'info') total += Number(match[2]);
  return total;
}

/**
 * Counts the commands Redis executes during `work`: `INFO commandstats` deltas for all of them
 * (a `redis.call` inside a Lua script counts like a command sent by a client), and `MONITOR`
 * to tell the commands clients sent from those run inside scripts (source `lua`).
 */
function commandCounter(admin: Redis): CommandCounter {
  return async (work) => {
    const monitor = await admin.monitor();
    const marker = `bench-marker-${randomUUID()}`;
    let sent = 0;
    let markerSeen: () => void = () => undefined;
    const seen = new Promise<void>((resolve) => (markerSeen = resolve));
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (args[0]?.toLowerCase() === 'echo' && args[1] === marker) markerSeen();
      else if (source !== 'lua' && args[0]?.toLowerCase() !== 'info') sent++;
    });
    try {
      const before = await commandCalls(admin);
      const succeeded = await work();
      const all = (await commandCalls(admin)) - before;
      await admin.echo(marker);
      await withTimeout(seen, 5_000, 'MONITOR delivering the end marker');
      if (succeeded === 0) throw new Error('no increment succeeded in the counting pass');
      const metrics: RoundMetrics = { commandsPerOp: sent / succeeded, commandsAllPerOp: all / succeeded };
      return metrics;
    } finally {
      monitor.disconnect();
    }
  };
}

interface Connections {
  readonly admin: Redis;
  readonly connect: (enableAutoPipelining?: boolean) => Redis;
}

function lockCase(c: Connections, makeLatchkeyStore: () => Promise<KeyValueStore | string>): BenchCase {
  return {
    name: `locked increment × ${WORKERS}`,
    description:
      `${WORKERS} concurrent waiters each take the lock, read a counter, write it + 1 and release; ops/s = increments/s; ` +
      '*lost updates* = increments that completed − final counter; *failed acquisitions* = waits that ran out; ' +
      `*handoff* = one holder leaving the critical section → the next one entering it; commands per successful increment counted in a separate untimed pass of ${COUNTING_INCREMENTS} increments ` +
      "(*sent*: by the clients, from `MONITOR`; *incl. script-internal*: every command Redis ran, from `INFO commandstats`, so a Lua script's `redis.call`s count too)",
    baseline: 'latchkey',
    concurrency: WORKERS,
    fixedConcurrency: true,
    timing: { rounds: 3, roundMs: 1_000, warmupMs: 300 },
    metrics: [...INCREMENT_METRICS, ...COMMAND_METRICS],
    targets: [
      metricAtMost('latchkey', 'lost', 0, 'latchkey: 0 lost updates'),
      metricAtMost('latchkey', 'commandsPerOp', 6, 'latchkey: ≤ 6 commands sent per increment'),
      metricAtLeast('no lock (control)', 'lost', 1, 'the control loses updates (the check can fail)'),
    ],
    setup: async () => {
      const store = await makeLatchkeyStore();
      const counter = commandCounter(c.admin);
      const incrementers = [latchkeyIncrementer(store), ...peerIncrementers(() => c.connect())];
      return {
        contenders: incrementers.map((incrementer) => incrementContender(incrementer, WORKERS, counter)),
        teardown: async () => {
          if (typeof store !== 'string') await store.close();
        },
      };
    },
  };
}

async function serverVersion(admin: Redis): Promise<string> {
  const info = await admin.info('server');
  return /redis_version:(\S+)/.exec(info)?.[1] ?? '?';
}

async function deleteBenchKeys(admin: Redis): Promise<void> {
  for (const pattern of ['bench:*', `${KEYV_NAMESPACE}*`]) {
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      if (keys.length > 0) await admin.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  }
}

/** The `redis` suite. */
export const redisSuite: Suite = {
  name: 'redis',
  title: 'KeyValueStore over RedisBackend vs raw ioredis vs keyv; locks vs redlock and redis-semaphore',
  description:
    `The same server, loopback, the same keys and the same number of operations in flight (${IN_FLIGHT.join(', then ')}) for every contender. ` +
    'Raw ioredis does the job by hand: plain GET / SET / MGET of `JSON.stringify` strings, `JSON.parse` on read; the raw ioredis row with auto-pipelining is shown for information, not as a goal. ' +
    `Targets: ≥ ${RAW_GOAL.toFixed(2)}× raw ioredis and ≥ 1.00× keyv on get/set/getMany at both levels; ≤ 6 commands per locked increment; 0 lost updates.`,
  prepare: async (options) => {
    const loaded = await loadBackendClass<RedisBackendOptions>('@latchkey/redis', 'RedisBackend');
    if ('missing' in loaded && !options.withoutAdapter) return { skip: loaded.missing };
    const server = await redisServer();
    if ('unavailable' in server) return { skip: server.unavailable };

    const clients: Redis[] = [];
    const connect = (enableAutoPipelining = false): Redis => {
      const client = new Redis(server.url, { maxRetriesPerRequest: 1, enableAutoPipelining });
      clients.push(client);
      return client;
    };
    const closers: Closer[] = [];
    const teardown = async (): Promise<void> => {
      await closeAll([
        ...[...closers].reverse(),
        ['the ioredis connections', () => Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())))],
        ['the server', () => server.stop()],
      ]);
    };
    try {
      const admin = connect();
      const raw = connect();
      const pipelined = connect(true);
      const keyvStore = new KeyvRedis(server.url);
      const keyv = new Keyv({ store: keyvStore, namespace: KEYV_NAMESPACE });
      closers.push(['keyv', () => keyv.disconnect()]);
      if (!server.dedicated) closers.push(['deleting the bench keys', () => deleteBenchKeys(admin)]);

      const makeLatchkeyStore = async (): Promise<KeyValueStore | string> => {
        if ('missing' in loaded) return loaded.missing;
        try {
          return await storeOver('redis', new loaded.backend({ url: server.url, keyPrefix: LATCHKEY_PREFIX }));
        } catch (error) {
          return `RedisBackend could not be set up: ${errorMessage(error)}`;
        }
      };
      const sharedStore = await makeLatchkeyStore();
      if (typeof sharedStore !== 'string') closers.push(['the latchkey store', () => sharedStore.close()]);

      const connections: Connections = { admin, connect };
      return {
        notes: [
          `server: ${server.origin}, Redis ${await serverVersion(admin)}`,
          `clients: ${versions('ioredis', 'keyv', '@keyv/redis', 'redlock', 'redis-semaphore')}`,
          "every contender has its own connection(s); keyv's Redis adapter runs on node-redis, not ioredis",
        ],
        cases: [
          ...kvCasesInFlight({
            baseline: RAW,
            clients: [
              latchkeyKvClient(sharedStore, '`RedisBackend`'),
              rawClient(raw, RAW, 'default ioredis client: what you would write by hand'),
              rawClient(
                pipelined,
                RAW_PIPELINED,
                'ioredis with `enableAutoPipelining: true`, which batches the commands of one tick into one write',
              ),
              keyvClient(keyv, '@keyv/redis on node-redis'),
            ],
          }),
          lockCase(connections, makeLatchkeyStore),
          ...crossProcessLockCases(server.url, admin),
        ],
        teardown,
      };
    } catch (error) {
      await teardown();
      throw error;
    }
  },
};
