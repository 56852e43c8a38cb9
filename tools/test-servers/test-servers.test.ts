import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { getFreeClusterPort, getFreePort, isPortFree } from './free-port.js';
import { startServices } from './global-setup.js';
import type { ServerHandle } from './handle.js';
import { memcachedVersion, startMemcached } from './memcached.js';
import { startMongo } from './mongo.js';
import { findPostgresBinaries, postgresPing, startPostgres } from './postgres.js';
import { mongoPing, redisCommand, tcpRequest } from './probe.js';
import { startRedisCluster } from './redis-cluster.js';
import { startRedisSentinel } from './redis-sentinel.js';
import { redisPing, startRedis } from './redis.js';
import { requireService } from './require-service.js';
import { which } from './which.js';

const HOST = '127.0.0.1';
const seenPids = new Set<number>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function track(h: ServerHandle): number {
  seenPids.add(h.pid);
  return h.pid;
}

async function memcachedSetGet(port: number, key: string, value?: string): Promise<string> {
  const cmd = value === undefined ? `get ${key}\r\n` : `set ${key} 0 0 ${value.length}\r\n${value}\r\nget ${key}\r\n`;
  const reply = await tcpRequest(HOST, port, cmd, (b) => b.toString().endsWith('END\r\n'));
  return reply.toString();
}

/** Kills with SIGKILL, checks it is down, restarts on the same port, checks it is up again. */
async function killAndRestart(h: ServerHandle, answers: () => Promise<boolean>): Promise<void> {
  const before = track(h);
  const port = h.port;
  await h.kill();
  expect(alive(before)).toBe(false);
  await expect(answers()).rejects.toThrow();
  await h.restart();
  expect(h.port).toBe(port);
  expect(h.pid).not.toBe(before);
  track(h);
  expect(await answers()).toBe(true);
}

async function stopAndCheckGone(h: ServerHandle): Promise<void> {
  const pid = track(h);
  await h.stop();
  expect(alive(pid)).toBe(false);
  expect(existsSync(h.dir)).toBe(false);
  expect(await isPortFree(h.port)).toBe(true);
}

const has = (bin: string): boolean => which(bin) !== undefined;

afterAll(() => {
  for (const pid of seenPids) expect(alive(pid), `pid ${pid} still alive`).toBe(false);
});

describe('free ports', () => {
  it('hands out distinct bindable loopback ports', async () => {
    const ports = await Promise.all(Array.from({ length: 10 }, () => getFreePort()));
    expect(new Set(ports).size).toBe(10);
    for (const p of ports) expect(await isPortFree(p)).toBe(true);
  });

  it('cluster ports have a free bus port', async () => {
    const p = await getFreeClusterPort();
    expect(p + 10_000).toBeLessThan(65_536);
    expect(await isPortFree(p + 10_000)).toBe(true);
  });
});

describe.runIf(requireService('redis tooling', which('redis-server'), 'redis-server not installed'))('redis', () => {
  it('starts, answers, survives kill + restart on the same port, pauses, stops cleanly', async () => {
    const redis = await startRedis();
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    expect(redis.port).not.toBe(6379);
    expect(await redisCommand(HOST, redis.port, 'SET k v')).toBe('+OK\r\n');
    await killAndRestart(redis, () => redisPing(HOST, redis.port));
    // no persistence by default: the key is gone
    expect(await redisCommand(HOST, redis.port, 'GET k')).toBe('$-1\r\n');

    await redis.pause();
    await expect(redisCommand(HOST, redis.port, 'PING', 300)).rejects.toThrow(/no answer/);
    await redis.resume();
    expect(await redisPing(HOST, redis.port)).toBe(true);
    await stopAndCheckGone(redis);
    await redis.stop(); // idempotent
  });

  it('keeps data across a hard kill with appendonly', async () => {
    await using redis = await startRedis({ appendonly: true });
    expect(await redisCommand(HOST, redis.port, 'SET durable yes')).toBe('+OK\r\n');
    await killAndRestart(redis, () => redisPing(HOST, redis.port));
    expect(await redisCommand(HOST, redis.port, 'GET durable')).toBe('$3\r\nyes\r\n');
    track(redis);
  });

  it('works with ioredis', async () => {
    const { Redis } = await import('ioredis');
    await using redis = await startRedis();
    track(redis);
    const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await client.set('a', '1');
      expect(await client.get('a')).toBe('1');
    } finally {
      client.disconnect();
    }
  });
});

describe.runIf(requireService('redis cluster tooling', which('redis-cli'), 'redis-cli not installed'))('redis cluster', () => {
  it('forms a 3-master cluster, serves ioredis Cluster, re-forms after kill + restart', async () => {
    const cluster = await startRedisCluster();
    expect(cluster.nodes).toHaveLength(3);
    for (const m of cluster.members) track(m);
    const { Cluster } = await import('ioredis');
    const client = new Cluster(
      cluster.nodes.map((n) => ({ host: HOST, port: Number(n.split(':')[1]) })),
      { lazyConnect: true },
    );
    try {
      for (let i = 0; i < 20; i++) await client.set(`key:${i}`, String(i));
      expect(await client.get('key:7')).toBe('7');
    } finally {
      client.disconnect();
    }
    const pids = cluster.members.map((m) => m.pid);
    await cluster.kill();
    for (const pid of pids) expect(alive(pid)).toBe(false);
    await cluster.restart(); // waits for cluster_state:ok on every node
    for (const m of cluster.members) track(m);
    const info = await redisCommand(HOST, cluster.port, 'CLUSTER INFO');
    expect(info).toContain('cluster_state:ok');
    await cluster.stop();
    for (const m of cluster.members) expect(alive(m.pid)).toBe(false);
    expect(existsSync(cluster.dir)).toBe(false);
  });
});

describe.runIf(requireService('redis sentinel tooling', which('redis-sentinel'), 'redis-sentinel not installed'))('redis sentinel', () => {
  it('monitors a master named latchkey', async () => {
    const s = await startRedisSentinel();
    track(s.master);
    track(s.sentinel);
    const reply = await redisCommand(HOST, s.port, 'SENTINEL get-master-addr-by-name latchkey');
    expect(reply).toContain(`\r\n${s.master.port}\r\n`);
    const { Redis } = await import('ioredis');
    const client = new Redis({ sentinels: [{ host: HOST, port: s.port }], name: s.masterName, lazyConnect: true });
    try {
      await client.set('via-sentinel', 'ok');
      expect(await client.get('via-sentinel')).toBe('ok');
    } finally {
      client.disconnect();
    }
    await s.stop();
    expect(alive(s.master.pid)).toBe(false);
    expect(alive(s.sentinel.pid)).toBe(false);
  });
});

describe.runIf(requireService('memcached tooling', which('memcached'), 'memcached not installed'))('memcached', () => {
  it('starts, answers, survives kill + restart on the same port, stops cleanly', async () => {
    const mc = await startMemcached({ itemSizeLimit: '2m' });
    expect(mc.url).toBe(`127.0.0.1:${mc.port}`);
    expect(await memcachedSetGet(mc.port, 'k', 'hello')).toContain('VALUE k 0 5\r\nhello\r\n');
    await killAndRestart(mc, () => memcachedVersion(HOST, mc.port));
    expect(await memcachedSetGet(mc.port, 'k')).toBe('END\r\n');
    const stats = await tcpRequest(HOST, mc.port, 'stats settings\r\n', (b) => b.toString().endsWith('END\r\n'));
    expect(stats.toString()).toContain('STAT item_size_max 2097152');
    await stopAndCheckGone(mc);
  });

  it('works with memjs', async () => {
    const memjs = await import('memjs');
    await using mc = await startMemcached();
    track(mc);
    const client = memjs.Client.create(mc.url, { retries: 0, timeout: 1 });
    try {
      await client.set('a', 'b', {});
      expect((await client.get('a')).value?.toString()).toBe('b');
    } finally {
      client.close();
    }
  });
});

const mongoAvailable =
  has('mongod') || existsSync(fileURLToPath(new URL('../.bin/ferretdb', import.meta.url))) || existsSync('/usr/local/go/bin/go');
describe.runIf(requireService('mongo tooling', mongoAvailable ? true : undefined, 'no mongod, no FerretDB binary, no Go'))('mongo', () => {
  it('starts, answers the driver, keeps data across kill + restart, stops cleanly', async () => {
    const mongo = await startMongo();
    expect(mongo.url).toBe(`mongodb://127.0.0.1:${mongo.port}/`);
    const { MongoClient } = await import('mongodb');
    const open = () => new MongoClient(mongo.url, { serverSelectionTimeoutMS: 5_000 });
    let client = open();
    try {
      const col = client.db('t').collection<{ _id: string; v: number }>('kv');
      await col.insertOne({ _id: 'a', v: 1 });
      const doc = await col.findOneAndUpdate({ _id: 'b' }, { $inc: { v: 1 } }, { upsert: true, returnDocument: 'after' });
      expect(doc).toEqual({ _id: 'b', v: 1 });
    } finally {
      await client.close();
    }
    await killAndRestart(mongo, () => mongoPing(HOST, mongo.port));
    client = open();
    try {
      expect(
        await client
          .db('t')
          .collection('kv')
          .findOne({ _id: 'a' as never }),
      ).toEqual({ _id: 'a', v: 1 });
    } finally {
      await client.close();
    }
    await stopAndCheckGone(mongo);
  });

  it.runIf(!has('mongod'))('FerretDB runs concurrent conditional updates one at a time', async () => {
    await using mongo = await startMongo({ engine: 'ferretdb' });
    track(mongo);
    const { MongoClient } = await import('mongodb');
    const client = new MongoClient(mongo.url, { serverSelectionTimeoutMS: 5_000 });
    try {
      const col = client.db('t').collection<{ _id: string; lock: string | null; n: number }>('locks');
      await col.insertOne({ _id: 'k', lock: null, n: 0 });
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          col.findOneAndUpdate({ _id: 'k', lock: null }, { $set: { lock: `t${i}` }, $inc: { n: 1 } }, { returnDocument: 'after' }),
        ),
      );
      expect(results.filter((r) => r !== null)).toHaveLength(1);
      await Promise.all(Array.from({ length: 30 }, () => col.updateOne({ _id: 'k' }, { $inc: { n: 1 } })));
      expect((await col.findOne({ _id: 'k' }))?.n).toBe(31);
    } finally {
      await client.close();
    }
  });
});

function postgresBinariesFound(): true | undefined {
  try {
    findPostgresBinaries();
    return true;
  } catch {
    return undefined;
  }
}

describe.runIf(requireService('postgres tooling', postgresBinariesFound(), 'no initdb on the PATH or under /usr/lib/postgresql'))(
  'postgres',
  () => {
    it('starts a fresh cluster, keeps data across kill + restart, pauses every process, stops cleanly', async () => {
      const postgres = await startPostgres();
      expect(postgres.url).toBe(`postgres://postgres@127.0.0.1:${postgres.port}/postgres`);
      expect(postgres.port).not.toBe(5432);
      const { Client } = await import('pg');
      const query = async (sql: string): Promise<unknown[]> => {
        const client = new Client({ connectionString: postgres.url, connectionTimeoutMillis: 5_000 });
        await client.connect();
        try {
          return (await client.query(sql)).rows;
        } finally {
          await client.end();
        }
      };
      await query("CREATE TABLE kv (k text PRIMARY KEY, v int); INSERT INTO kv VALUES ('a', 1)");
      await killAndRestart(postgres, () => postgresPing(HOST, postgres.port));
      expect(await query('SELECT k, v FROM kv')).toEqual([{ k: 'a', v: 1 }]);

      await postgres.pause();
      await expect(postgresPing(HOST, postgres.port, 300)).rejects.toThrow(/no answer/);
      await postgres.resume();
      expect(await postgresPing(HOST, postgres.port)).toBe(true);
      await stopAndCheckGone(postgres);
    });
  },
);

/** Runs `fn` with every LATCHKEY_* variable cleared, then `vars` set; restores the environment after. */
async function withEnv(vars: Record<string, string>, fn: () => Promise<void>): Promise<void> {
  const saved = { ...process.env };
  for (const key of Object.keys(process.env)) if (key.startsWith('LATCHKEY_')) delete process.env[key];
  Object.assign(process.env, vars);
  try {
    await fn();
  } finally {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  }
}

describe('global setup', () => {
  it('starts requested kinds, provides their addresses and stops them', () =>
    withEnv({}, async () => {
      const services = await startServices(['redis', 'memcached-pair']);
      const { provided, handles } = services;
      handles.forEach(track);
      expect(handles).toHaveLength(3);
      expect(provided.redisUrl).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
      expect(provided.memcachedPairServers?.split(',')).toHaveLength(2);
      expect(await redisPing(HOST, Number(provided.redisUrl?.split(':')[2]))).toBe(true);
      await services.stop();
      for (const h of handles) expect(alive(h.pid)).toBe(false);
    }));

  it('uses LATCHKEY_* servers instead of starting its own', () =>
    withEnv({ LATCHKEY_REDIS_URL: 'redis://example.invalid:1', LATCHKEY_MEMCACHED_SERVERS: 'a:1,b:2' }, async () => {
      const services = await startServices(['redis', 'memcached', 'memcached-pair']);
      expect(services.handles).toHaveLength(0);
      expect(services.provided).toEqual({
        redisUrl: 'redis://example.invalid:1',
        memcachedServers: 'a:1,b:2',
        memcachedPairServers: 'a:1,b:2',
      });
    }));

  it('reports a missing binary as unavailable, or throws when services are required', () =>
    withEnv({ PATH: '/nonexistent' }, async () => {
      const services = await startServices(['memcached']);
      expect(services.provided.memcachedServers).toBeUndefined();
      expect(services.provided.memcachedUnavailable).toMatch(/memcached not found on PATH/);
      process.env['LATCHKEY_REQUIRE_SERVICES'] = '1';
      await expect(startServices(['memcached'])).rejects.toThrow(/LATCHKEY_REQUIRE_SERVICES=1/);
    }));
});

describe.runIf(has('redis-server'))('cli', () => {
  it('prints the URL as JSON and stops the server on SIGINT', async () => {
    const tsx = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));
    const cli = fileURLToPath(new URL('./cli.ts', import.meta.url));
    const child = spawn(tsx, [cli, 'redis'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout }).once('line', resolve);
      child.once('exit', (code) => reject(new Error(`cli exited early (${code})`)));
    });
    const info = JSON.parse(line) as { url: string; port: number; pid: number; dir: string };
    seenPids.add(info.pid);
    expect(info.url).toBe(`redis://127.0.0.1:${info.port}`);
    expect(await redisPing(HOST, info.port)).toBe(true);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(alive(info.pid)).toBe(false);
    expect(existsSync(info.dir)).toBe(false);
  });
});
