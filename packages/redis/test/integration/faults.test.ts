import { BackendTimeoutError, BackendUnavailableError, KeyValueStore, LatchkeyError, LockTimeoutError, type Lease } from '@latchkey/core';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisCluster, requireService, type ServerHandle, startRedis, startRedisCluster, which } from '@latchkey/test-servers';
import { RedisBackend } from '../../src/index.js';

const TIMEOUT_MS = 500;
/** How late past its deadline a call may settle on this (shared, 2-core) machine. */
const MARGIN_MS = 400;

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Settled {
  readonly ms: number;
  readonly error: unknown;
}

/** Runs `call` and records how long it took to settle and how. */
async function timed(call: () => Promise<unknown>): Promise<Settled> {
  const started = performance.now();
  try {
    await call();
    return { ms: performance.now() - started, error: undefined };
  } catch (error) {
    return { ms: performance.now() - started, error };
  }
}

/** Every kind of call, once each, concurrently. */
function everyCall(backend: RedisBackend, tag: string): Promise<Settled>[] {
  return [
    timed(() => backend.get(`${tag}-g`)),
    timed(() => backend.set(`${tag}-s`, bytes('v'), { expiresAt: Date.now() + 60_000 })),
    timed(() => backend.getMany([`${tag}-a`, `${tag}-b`, `${tag}-c`])),
    timed(() =>
      backend.setMany([
        [`${tag}-a`, bytes('a')],
        [`${tag}-b`, bytes('b')],
      ]),
    ),
    timed(() => backend.delete(`${tag}-d`)),
    timed(() => backend.deleteMany([`${tag}-a`, `${tag}-z`])),
    timed(async () => {
      const lease = await backend.acquireLock(`${tag}-l`, { leaseMs: 1_000, waitMs: 0 });
      if (lease !== undefined) await backend.releaseLock(lease);
    }),
  ];
}

async function untilHealthy(backend: RedisBackend, deadlineMs = 10_000): Promise<void> {
  const until = performance.now() + deadlineMs;
  for (;;) {
    try {
      await backend.get('health');
      return;
    } catch (error) {
      if (performance.now() > until) throw error;
      await sleep(50);
    }
  }
}

function expectTypedOutage(results: readonly Settled[]): void {
  for (const { ms, error } of results) {
    expect(ms).toBeLessThan(TIMEOUT_MS + MARGIN_MS);
    if (error !== undefined) {
      expect(error).toBeInstanceOf(LatchkeyError);
      expect(error instanceof BackendUnavailableError || error instanceof BackendTimeoutError).toBe(true);
    }
  }
  expect(results.some(({ error }) => error !== undefined)).toBe(true);
}

const haveRedis = requireService(
  'RedisBackend fault tests',
  which('redis-server') && which('redis-cli'),
  'redis-server/redis-cli not installed',
);

describe.runIf(haveRedis)('RedisBackend faults on a standalone server', () => {
  let server: ServerHandle;
  let admin: Redis;
  const backends: RedisBackend[] = [];
  const make = (prefix = 'f:'): RedisBackend => {
    const backend = new RedisBackend({ url: server.url, keyPrefix: prefix, operationTimeoutMs: TIMEOUT_MS });
    backends.push(backend);
    return backend;
  };

  beforeAll(async () => {
    server = await startRedis();
    admin = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    admin.on('error', () => undefined);
  });

  afterAll(async () => {
    await Promise.all(backends.map((backend) => backend.close()));
    admin.disconnect();
    await server.stop();
  });

  it('fails fast with BackendUnavailableError when nothing listens', async () => {
    const backend = new RedisBackend({ url: 'redis://127.0.0.1:1', operationTimeoutMs: TIMEOUT_MS });
    backends.push(backend);
    const result = await timed(() => backend.get('k'));
    expect(result.error).toBeInstanceOf(BackendUnavailableError);
    expect((result.error as Error).cause).toBeDefined();
    expect(result.ms).toBeLessThan(TIMEOUT_MS + MARGIN_MS);
  });

  it('makes the next locked write fail with LockTimeoutError when the server lost the lock (FLUSHALL)', async () => {
    const store = new KeyValueStore('faults-flushall');
    await store.configure(make('flush:'), { lockTimeoutMs: 5_000 });
    await store.set('k', 1);
    const lock = await store.getLock('k').acquire();
    await admin.flushall();
    await expect(store.set('k', 2, { lock })).rejects.toBeInstanceOf(LockTimeoutError);
    await expect(store.get('k')).rejects.toThrow('Could not find');
    await lock.release();
    await store.close();
  });

  it('runs its scripts again after the server forgot them (SCRIPT FLUSH)', async () => {
    const backend = make('noscript:');
    const first = (await backend.acquireLock('k', { leaseMs: 5_000, waitMs: 0 })) as Lease;
    await admin.script('FLUSH');
    expect(await backend.set('k', bytes('v'), { lease: first })).toBe('written');
    await admin.script('FLUSH');
    expect(await backend.releaseLock(first)).toBe(true);
    await admin.script('FLUSH');
    const second = (await backend.acquireLock('k', { leaseMs: 5_000, waitMs: 0 })) as Lease;
    expect(second.fencingToken).toBeGreaterThan(first.fencingToken);
  });

  it('settles every call with a typed error while the server is down, and recovers after a restart', async () => {
    const backend = make('kill:');
    const other = make('kill:');
    await untilHealthy(backend);
    const held = (await other.acquireLock('w', { leaseMs: 10_000, waitMs: 0 })) as Lease;
    const waiting = timed(() => backend.acquireLock('w', { leaseMs: 1_000, waitMs: 5_000 }));
    const inFlight = everyCall(backend, 'before');
    await server.kill();
    const during = await Promise.all([...inFlight, ...everyCall(backend, 'down'), waiting]);
    expectTypedOutage(during);
    await sleep(300);
    expectTypedOutage(await Promise.all(everyCall(backend, 'still-down')));
    const ghost = await timed(() => backend.set('ghost', bytes('boo')));
    expect(ghost.error).toBeInstanceOf(BackendUnavailableError);
    await server.restart();
    await untilHealthy(backend);
    await sleep(200);
    expect(await backend.get('ghost')).toBeUndefined();
    const after = await Promise.all(everyCall(backend, 'after'));
    expect(after.map(({ error }) => error)).toEqual(after.map(() => undefined));
    expect(held.fencingToken).toBeGreaterThan(0n);
  });

  it('settles calls with BackendTimeoutError while the server is frozen, and recovers when it resumes', async () => {
    const backend = make('pause:');
    await untilHealthy(backend);
    await server.pause();
    try {
      const results = await Promise.all(everyCall(backend, 'frozen'));
      expectTypedOutage(results);
      expect(results.some(({ error }) => error instanceof BackendTimeoutError)).toBe(true);
    } finally {
      await server.resume();
    }
    await untilHealthy(backend);
    expect(await backend.set('thawed', bytes('ok'))).toBe('written');
  });

  it('never lets a locked write that timed out land after its lease lapsed', async () => {
    const backend = make('late:');
    await untilHealthy(backend);
    const lease = (await backend.acquireLock('k', { leaseMs: 200, waitMs: 0 })) as Lease;
    await server.pause();
    let late: Settled;
    try {
      late = await timed(() => backend.set('k', bytes('late'), { lease }));
      await sleep(100);
    } finally {
      await server.resume();
    }
    expect(late.error).toBeInstanceOf(BackendTimeoutError);
    await untilHealthy(backend);
    expect(await backend.get('k')).toBeUndefined();
  });
});

describe.runIf(haveRedis)('RedisBackend faults on a Redis Cluster', () => {
  let cluster: RedisCluster;
  let backend: RedisBackend;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    backend = new RedisBackend({ cluster: { nodes: cluster.nodes }, keyPrefix: 'cf:', operationTimeoutMs: TIMEOUT_MS });
  });

  afterAll(async () => {
    await backend.close();
    await cluster.stop();
  });

  it('settles every call with a typed error while the cluster is down, and recovers after a restart', async () => {
    await untilHealthy(backend);
    const keys = Array.from({ length: 30 }, (_, i) => `k${i}`);
    await backend.setMany(keys.map((key) => [key, bytes(key)] as const));
    const inFlight = everyCall(backend, 'before');
    await cluster.kill();
    expectTypedOutage(await Promise.all([...inFlight, ...everyCall(backend, 'down')]));
    await sleep(300);
    expectTypedOutage(await Promise.all([...everyCall(backend, 'still-down'), timed(() => backend.getMany(keys))]));
    await cluster.restart();
    await untilHealthy(backend, 20_000);
    const after = await Promise.all(everyCall(backend, 'after'));
    expect(after.map(({ error }) => error)).toEqual(after.map(() => undefined));
    expect(await backend.getMany(keys)).toHaveLength(keys.length);
  });

  it('makes the next locked write fail with LockTimeoutError when the cluster lost the lock (FLUSHALL)', async () => {
    const store = new KeyValueStore('faults-cluster-flushall');
    await store.configure(new RedisBackend({ cluster: { nodes: cluster.nodes }, keyPrefix: 'cflush:', operationTimeoutMs: TIMEOUT_MS }), {
      lockTimeoutMs: 5_000,
    });
    await store.set('k', 1);
    const lock = await store.getLock('k').acquire();
    for (const member of cluster.members) {
      const node = new Redis(member.url);
      await node.flushall();
      node.disconnect();
    }
    await expect(store.set('k', 2, { lock })).rejects.toBeInstanceOf(LockTimeoutError);
    await expect(store.get('k')).rejects.toThrow('Could not find');
    await lock.release();
    await store.close();
  });

  it('keeps a given Cluster client open and usable after close()', async () => {
    const client = new Cluster(cluster.nodes.map((node) => ({ host: '127.0.0.1', port: Number(node.split(':')[1]) })));
    const given = new RedisBackend({ client, keyPrefix: 'given:' });
    expect(await given.set('k', bytes('v'))).toBe('written');
    await given.close();
    expect(await client.get('given:{k}')).toBe('v');
    client.disconnect();
  });
});
