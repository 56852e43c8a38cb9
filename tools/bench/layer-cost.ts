/**
 * Where a data call's client time goes: CPU per operation of each layer of the default
 * configuration (sha1 key mangler, `taggedCodec`, expiry envelope, the store's `CallRunner`
 * deadline, tracing with nobody subscribed) and, for redis, memcached and the MongoDB-wire
 * server, of the driver by hand, the adapter's backend alone and the whole store.
 *
 *   npm run build && npx tsx tools/bench/layer-cost.ts [--rounds N] [--ops N] [--servers redis,memcached,mongo]
 *
 * Everything is timed on process CPU time (`process.cpuUsage()`, user + system) rather than
 * wall time: time spent descheduled while other processes use the cores does not count, and
 * the server's own CPU (another process) is not included, so the numbers hold up on a loaded
 * machine far better than wall-clock latency. What remains sensitive to load is cache and
 * frequency noise, hence the median of `--rounds` (9) rounds, the contenders alternating
 * which goes first. Calls are made one at a time (1 in flight): per-call client cost, the
 * quantity that bounds throughput once the server is not the bottleneck. The event-loop
 * utilisation column (`performance.eventLoopUtilization`) shows how much of the wall time the
 * loop was busy: low for server round trips, near 1 for the pure layers.
 *
 * Layer rows run `--ops` (200 000) times per round; server rows `--ops / 100` times (getMany:
 * `/ 1000`, each call 100 keys). "adapter" = backend alone − driver by hand; "core" = store −
 * backend alone: the part latchkey adds on top of the driver.
 *
 * @module
 */
import { createHash, hash } from 'node:crypto';
import { channel } from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { CallRunner, KeyValueStore, sha1KeyMangler, taggedCodec, type Backend } from '@latchkey/core';
import { open, seal } from '../../packages/core/src/internal/envelope.js';
import { memcachedServer, mongoServer, redisServer, type BenchServer, type NoServer } from './suites/servers.js';

const args = new Map<string, string>();
for (let index = 2; index < process.argv.length; index += 2) args.set(process.argv[index] ?? '', process.argv[index + 1] ?? '');
const rounds = Number(args.get('--rounds') ?? 9);
const ops = Number(args.get('--ops') ?? 200_000);
const servers = (args.get('--servers') ?? 'redis,memcached,mongo').split(',');

const value = { id: 42, name: 'Ada Lovelace', email: 'ada@example.com', roles: ['admin', 'ops'], active: true, score: 97.5 };
const KEYS = Array.from({ length: 1000 }, (_, index) => `user:${index}`);
const BATCH = 100;
const windows = Array.from({ length: KEYS.length / BATCH }, (_, index) => KEYS.slice(index * BATCH, (index + 1) * BATCH));

function cpuUs(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

interface Row {
  readonly name: string;
  readonly ops: number;
  readonly run: (i: number) => unknown;
}

interface Measured {
  readonly cpuUs: number;
  readonly elu: number;
}

let sink = 0;

async function round(row: Row): Promise<Measured> {
  const elu = performance.eventLoopUtilization();
  const started = cpuUs();
  for (let i = 0; i < row.ops; i++) {
    const result = row.run(i);
    if (result instanceof Promise) sink += (await result) === undefined ? 0 : 1;
    else sink += result === undefined ? 0 : 1;
  }
  const cpu = (cpuUs() - started) / row.ops;
  return { cpuUs: cpu, elu: performance.eventLoopUtilization(elu).utilization };
}

async function measure(rows: readonly Row[]): Promise<Map<string, Measured>> {
  const samples = new Map<string, Measured[]>(rows.map((row) => [row.name, []]));
  for (const row of rows) await round({ ...row, ops: Math.max(1, Math.floor(row.ops / 10)) }); // warm-up
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? rows : [...rows].reverse();
    for (const row of order) samples.get(row.name)?.push(await round(row));
  }
  return new Map(
    [...samples].map(([name, list]) => [name, { cpuUs: median(list.map((m) => m.cpuUs)), elu: median(list.map((m) => m.elu)) }]),
  );
}

function fmt(us: number): string {
  return us >= 100 ? us.toFixed(0) : us >= 10 ? us.toFixed(1) : us.toFixed(2);
}

function printTable(title: string, rows: readonly Row[], results: Map<string, Measured>): void {
  console.log(`\n| ${title} | CPU µs/op | event loop busy |`);
  console.log('| --- | --- | --- |');
  for (const row of rows) {
    const m = results.get(row.name) as Measured;
    console.log(`| ${row.name} | ${fmt(m.cpuUs)} | ${(m.elu * 100).toFixed(0)} % |`);
  }
}

async function layers(): Promise<void> {
  const payload = taggedCodec.encode(value);
  const sealed = seal(payload, 1_800_000_000_000);
  const json = JSON.stringify(value);
  const runner = new CallRunner({ name: 'bench', timeoutMs: 5_000 });
  const answer = Promise.resolve(payload);
  const tracing = channel('latchkey:bench:unsubscribed');
  // Keys the mangler's cache has not seen: the hashing itself, not a lookup.
  const fresh = Array.from({ length: 20_000 }, (_, index) => `session:${index}:${'k'.repeat(12)}`);
  const rows: Row[] = [
    { name: 'sha1 mangler, repeated key (cache hit)', ops, run: (i) => sha1KeyMangler(KEYS[i % KEYS.length] as string) },
    { name: 'sha1 mangler, new key (hash)', ops, run: (i) => sha1KeyMangler(`${fresh[i % fresh.length] as string}${i}`) },
    {
      name: 'node:crypto createHash sha1 hex',
      ops,
      run: (i) =>
        createHash('sha1')
          .update(`${fresh[i % fresh.length] as string}${i}`)
          .digest('hex'),
    },
    { name: 'node:crypto hash(sha1) one-shot', ops, run: (i) => hash('sha1', `${fresh[i % fresh.length] as string}${i}`) },
    { name: 'taggedCodec.encode (small record)', ops, run: () => taggedCodec.encode(value) },
    { name: 'taggedCodec.decode (small record)', ops, run: () => taggedCodec.decode(payload) },
    { name: 'JSON.stringify + Buffer.from (by hand)', ops, run: () => Buffer.from(JSON.stringify(value)) },
    { name: 'JSON.parse (by hand)', ops, run: () => JSON.parse(json) as unknown },
    { name: 'envelope seal (with expiry)', ops, run: () => seal(payload, 1_800_000_000_000) },
    { name: 'envelope open', ops, run: () => open(sealed) },
    { name: 'tracing check, nobody subscribed', ops, run: () => (tracing.hasSubscribers ? 1 : undefined) },
    { name: 'awaiting a resolved promise (floor)', ops, run: () => answer },
    { name: 'CallRunner.run (deadline) around it', ops, run: () => runner.run('get', () => answer) },
  ];
  // The whole core over an in-process backend (the default configuration: sha1 keys, tagged
  // codec, envelope, deadlines): store − backend alone is the core's share without any I/O.
  const { MemoryBackend } = await import('@latchkey/memory');
  const memory = new MemoryBackend();
  const store = new KeyValueStore('layer-cost-memory');
  await store.configure(memory);
  await store.setMany(Object.fromEntries(KEYS.map((key) => [key, value])));
  const alone = backendContender(memory);
  rows.push(
    { name: 'store.get over MemoryBackend', ops: ops / 2, run: (i) => store.get(KEYS[i % KEYS.length] as string) },
    { name: 'MemoryBackend.get alone', ops: ops / 2, run: (i) => alone.get(KEYS[i % KEYS.length] as string) },
    { name: 'store.set over MemoryBackend', ops: ops / 2, run: (i) => store.set(KEYS[i % KEYS.length] as string, value) },
    { name: 'MemoryBackend.set alone', ops: ops / 2, run: (i) => alone.set(KEYS[i % KEYS.length] as string) },
    { name: 'store.getMany(100) over MemoryBackend', ops: ops / 100, run: (i) => store.getMany(windows[i % windows.length] as string[]) },
    { name: 'MemoryBackend.getMany(100) alone', ops: ops / 100, run: (i) => alone.getMany(windows[i % windows.length] as string[]) },
  );
  const results = await measure(rows);
  printTable('layer (pure, no I/O)', rows, results);
  runner.close();
  await store.close();
}

interface Contender {
  readonly name: string;
  readonly get: (key: string) => Promise<unknown>;
  readonly set: (key: string) => Promise<unknown>;
  readonly getMany: (keys: readonly string[]) => Promise<unknown>;
}

function storeContender(store: KeyValueStore): Contender {
  return {
    name: 'store (default config)',
    get: (key) => store.get(key),
    set: (key) => store.set(key, value),
    getMany: (keys) => store.getMany(keys),
  };
}

/** The backend alone: the stored keys (sha1) and envelope bytes the store would use, made in advance. */
function backendContender(backend: Backend): Contender {
  const stored = new Map(KEYS.map((key) => [key, sha1KeyMangler(key)]));
  const storedWindows = new Map(windows.map((keys) => [keys, keys.map((key) => stored.get(key) as string)]));
  const bytes = seal(taggedCodec.encode(value), undefined, 'user:0');
  return {
    name: 'adapter backend alone',
    get: (key) => backend.get(stored.get(key) as string),
    set: (key) => backend.set(stored.get(key) as string, bytes, {}),
    getMany: (keys) => backend.getMany(storedWindows.get(keys as string[]) as string[]),
  };
}

async function serverRows(kind: string, contenders: readonly Contender[]): Promise<void> {
  const rows: Row[] = [];
  for (const operation of ['get', 'set', 'getMany(100)'] as const) {
    for (const c of contenders) {
      const run =
        operation === 'get'
          ? (i: number) => c.get(KEYS[i % KEYS.length] as string)
          : operation === 'set'
            ? (i: number) => c.set(KEYS[i % KEYS.length] as string)
            : (i: number) => c.getMany(windows[i % windows.length] as string[]);
      rows.push({
        name: `${operation}: ${c.name}`,
        ops: operation === 'getMany(100)' ? Math.max(1, ops / 1000) : Math.max(1, ops / 100),
        run,
      });
    }
  }
  const results = await measure(rows);
  printTable(`${kind}, 1 in flight`, rows, results);
  const cpu = (name: string): number => (results.get(name) as Measured).cpuUs;
  console.log('\n| split | get | set | getMany(100) |');
  console.log('| --- | --- | --- | --- |');
  const ops3 = ['get', 'set', 'getMany(100)'];
  const [raw, backend, store] = contenders.map((c) => c.name) as [string, string, string];
  console.log(`| driver by hand | ${ops3.map((o) => fmt(cpu(`${o}: ${raw}`))).join(' | ')} |`);
  console.log(`| adapter (backend − by hand) | ${ops3.map((o) => fmt(cpu(`${o}: ${backend}`) - cpu(`${o}: ${raw}`))).join(' | ')} |`);
  console.log(`| core (store − backend) | ${ops3.map((o) => fmt(cpu(`${o}: ${store}`) - cpu(`${o}: ${backend}`))).join(' | ')} |`);
  console.log(`| store / by hand (CPU) | ${ops3.map((o) => (cpu(`${o}: ${store}`) / cpu(`${o}: ${raw}`)).toFixed(2)).join(' | ')} |`);
}

function missing(key: string): never {
  throw new Error(`${key} is missing`);
}

async function withServer(start: () => Promise<BenchServer | NoServer>, body: (server: BenchServer) => Promise<void>): Promise<void> {
  const server = await start();
  if ('unavailable' in server) {
    console.log(`\n(skipped: ${server.unavailable})`);
    return;
  }
  try {
    await body(server);
  } finally {
    await server.stop();
  }
}

async function redis(): Promise<void> {
  await withServer(redisServer, async (server) => {
    const { Redis } = await import('ioredis');
    const { RedisBackend } = await import('@latchkey/redis');
    const raw = new Redis(server.url);
    const store = new KeyValueStore('layer-cost-redis');
    await store.configure(new RedisBackend({ url: server.url }));
    const backend = new RedisBackend({ url: server.url });
    const json = JSON.stringify(value);
    await Promise.all(KEYS.map((key) => Promise.all([raw.set(`raw:${key}`, json), store.set(key, value)])));
    const byHand: Contender = {
      name: 'ioredis by hand (JSON)',
      get: async (key) => JSON.parse((await raw.get(`raw:${key}`)) ?? missing(key)) as unknown,
      set: (key) => raw.set(`raw:${key}`, JSON.stringify(value)),
      getMany: async (keys) =>
        (await raw.mget(keys.map((key) => `raw:${key}`))).map((s, i) => JSON.parse(s ?? missing(keys[i] as string)) as unknown),
    };
    await serverRows('redis', [byHand, backendContender(backend), storeContender(store)]);
    raw.disconnect();
    await backend.close();
    await store.close();
  });
}

async function memcached(): Promise<void> {
  await withServer(memcachedServer, async (server) => {
    const memjs = (await import('memjs')).default;
    const { MemcachedBackend } = await import('@latchkey/memcached');
    const raw = memjs.Client.create(server.url, { retries: 0, logger: { log: () => undefined } });
    const store = new KeyValueStore('layer-cost-memcached');
    await store.configure(new MemcachedBackend({ servers: server.url }));
    const backend = new MemcachedBackend({ servers: server.url });
    const json = JSON.stringify(value);
    for (const key of KEYS) {
      await raw.set(`raw:${key}`, json, {});
      await store.set(key, value);
    }
    const byHand: Contender = {
      name: 'memjs by hand (JSON)',
      get: async (key) => JSON.parse((await raw.get(`raw:${key}`)).value?.toString() ?? missing(key)) as unknown,
      set: (key) => raw.set(`raw:${key}`, JSON.stringify(value), {}),
      getMany: async (keys) => {
        // memjs has no multi-get: parallel gets, as the memcached suite's raw client does.
        const found = await Promise.all(keys.map((key) => raw.get(`raw:${key}`)));
        return found.map((f, i) => JSON.parse(f.value?.toString() ?? missing(keys[i] as string)) as unknown);
      },
    };
    await serverRows('memcached', [byHand, backendContender(backend), storeContender(store)]);
    raw.close();
    await backend.close();
    await store.close();
  });
}

async function mongo(): Promise<void> {
  await withServer(mongoServer, async (server) => {
    const { MongoClient } = await import('mongodb');
    const { MongoBackend } = await import('@latchkey/mongo');
    const client = new MongoClient(server.url, { serverSelectionTimeoutMS: 5_000 });
    const collection = client.db('layer_cost').collection<{ _id: string; v: string }>('raw');
    const store = new KeyValueStore('layer-cost-mongo');
    await store.configure(new MongoBackend({ url: server.url, dbName: 'layer_cost', collection: 'latchkey' }));
    const backend = new MongoBackend({ url: server.url, dbName: 'layer_cost', collection: 'latchkey' });
    const json = JSON.stringify(value);
    await collection.bulkWrite(
      KEYS.map((key) => ({ replaceOne: { filter: { _id: key }, replacement: { _id: key, v: json }, upsert: true } })),
      { ordered: false },
    );
    await store.setMany(Object.fromEntries(KEYS.map((key) => [key, value])));
    const byHand: Contender = {
      name: 'mongodb driver by hand (JSON)',
      get: async (key) => JSON.parse((await collection.findOne({ _id: key }))?.v ?? missing(key)) as unknown,
      set: (key) => collection.updateOne({ _id: key }, { $set: { v: JSON.stringify(value) } }, { upsert: true }),
      getMany: async (keys) => {
        const docs = await collection.find({ _id: { $in: [...keys] } }).toArray();
        const byId = new Map(docs.map((doc) => [doc._id, doc.v]));
        return keys.map((key) => JSON.parse(byId.get(key) ?? missing(key)) as unknown);
      },
    };
    await serverRows('MongoDB wire', [byHand, backendContender(backend), storeContender(store)]);
    await client.close();
    await backend.close();
    await store.close();
  });
}

console.log(`layer cost: client CPU µs per operation, median of ${rounds} rounds, ${ops} ops per layer round`);
console.log(
  `node ${process.version}, load average ${(await import('node:os'))
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}, ${new Date().toISOString()}`,
);
await layers();
if (servers.includes('redis')) await redis();
if (servers.includes('memcached')) await memcached();
if (servers.includes('mongo')) await mongo();
if (sink < 0) throw new Error('unreachable');
