import { BackendTimeoutError, BackendUnavailableError, getKeyValueStore, LockTimeoutError, type Lease } from '@latchkey/core';
import { readFile } from 'node:fs/promises';
import { Client } from 'memjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { requireService, type SingleServer, startMemcached, which } from '@latchkey/test-servers';
import { MemcachedBackend } from '../../src/index.js';
import { bytes, sleep, text, uniquePrefix } from '../support/targets.js';

const DEADLINE_MS = 500;
/** What "settles within the deadline" allows on top of it on a busy two-core machine. */
const MARGIN_MS = 400;

// These suites kill, pause and flush servers, so they start their own instead of sharing.
const installed = which('memcached') === undefined ? undefined : 'memcached';

describe.runIf(requireService('MemcachedBackend faults', installed, 'memcached is not installed'))('MemcachedBackend faults', () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  let servers: SingleServer[] = [];
  const opened: MemcachedBackend[] = [];
  const open = (server: SingleServer | readonly SingleServer[]): MemcachedBackend => {
    const list = Array.isArray(server) ? server : [server];
    const backend = new MemcachedBackend({
      servers: list.map((s: SingleServer) => s.url),
      keyPrefix: uniquePrefix(),
      operationTimeoutMs: DEADLINE_MS,
    });
    opened.push(backend);
    return backend;
  };

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    servers = await Promise.all([startMemcached(), startMemcached()]);
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((backend) => backend.close()));
    await Promise.all(servers.map((server) => (server.process.running ? server.resume() : server.restart())));
  });
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.stop()));
    process.off('unhandledRejection', onUnhandled);
    expect(unhandled).toStrictEqual([]);
  });
  const server = (): SingleServer => servers[0] as SingleServer;

  describe('data lost while a lock is held', () => {
    it('fails the next locked write with LockTimeoutError after flush_all', async () => {
      const store = getKeyValueStore(`faults-flush-${uniquePrefix()}`);
      await store.configure(open(server()), { lockTimeoutMs: 5000 });
      const lock = await store.getLock('k').acquire();
      await store.set('k', 'before', { lock });
      const raw = Client.create(server().url, { logger: { log: () => undefined } });
      await raw.flush();
      raw.close();
      await expect(store.set('k', 'after', { lock })).rejects.toBeInstanceOf(LockTimeoutError);
      await expect(store.get('k')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await lock.release();
      await store.close();
    });

    it('refuses locked writes, deletes, release and extend after the server restarted', async () => {
      const backend = open(server());
      const lease = (await backend.acquireLock('k', { leaseMs: 5000, waitMs: 0 })) as Lease;
      await backend.set('k', bytes('before'), { lease });
      await server().restart();
      expect(await backend.set('k', bytes('after'), { lease })).toBe('lease-lost');
      expect(await backend.delete('k', { lease })).toBe('lease-lost');
      expect(await backend.extendLock(lease, 5000)).toBe(false);
      expect(await backend.releaseLock(lease)).toBe(false);
      expect(await backend.get('k')).toBeUndefined();
      const next = await backend.acquireLock('k', { leaseMs: 5000, waitMs: 0 });
      expect(next?.fencingToken).toBeGreaterThan(lease.fencingToken);
    });
  });

  describe('a server killed mid-run', () => {
    it('settles every call within the deadline with a typed error, and works again after a restart', async () => {
      const backend = open(server());
      const outcomes: { ms: number; error?: unknown }[] = [];
      let stop = false;
      const call = async (op: () => Promise<unknown>): Promise<void> => {
        const startedAt = performance.now();
        try {
          await op();
          outcomes.push({ ms: performance.now() - startedAt });
        } catch (error) {
          outcomes.push({ ms: performance.now() - startedAt, error });
        }
      };
      const worker = async (id: number): Promise<void> => {
        for (let i = 0; !stop; i++) {
          const key = `k${id}:${i % 7}`;
          await call(() => backend.set(key, bytes('v')));
          await call(() => backend.get(key));
          await call(() => backend.getMany([key, `${key}x`, 'shared']));
          await call(() =>
            backend.setMany([
              [key, bytes('w')],
              ['shared', bytes('s')],
            ]),
          );
          await call(async () => {
            const lease = await backend.acquireLock(key, { leaseMs: 5000, waitMs: 0 });
            if (lease !== undefined) {
              await backend.set(key, bytes('locked'), { lease });
              await backend.releaseLock(lease);
            }
          });
          await call(() => backend.delete(key));
          await sleep(5);
        }
      };
      const workers = [1, 2, 3, 4].map(worker);
      await sleep(300);
      await server().kill();
      await sleep(1200);
      const failuresWhileDown = outcomes.filter((outcome) => outcome.error !== undefined).length;
      await server().restart();
      await sleep(800);
      stop = true;
      await Promise.all(workers);

      expect(failuresWhileDown).toBeGreaterThan(0);
      for (const { ms, error } of outcomes) {
        expect(ms).toBeLessThan(DEADLINE_MS + MARGIN_MS);
        if (error !== undefined) expect(error instanceof BackendUnavailableError || error instanceof BackendTimeoutError).toBe(true);
      }
      for (const { error } of outcomes) {
        if (error instanceof BackendUnavailableError) expect(error.cause).toBeDefined();
      }
      await backend.set('after', bytes('restart'));
      expect(text(await backend.get('after'))).toBe('restart');
    });

    it('fails fast with BackendUnavailableError while the server is down', async () => {
      const backend = open(server());
      await backend.set('k', bytes('v'));
      await server().kill();
      const startedAt = performance.now();
      const error = await backend.get('k').catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(BackendUnavailableError);
      expect((error as Error).cause).toBeDefined();
      expect(performance.now() - startedAt).toBeLessThan(DEADLINE_MS);
      await expect(backend.acquireLock('k', { leaseMs: 5000, waitMs: 2000 })).rejects.toBeInstanceOf(BackendUnavailableError);
    });

    it('keeps serving the keys of the live server when one of two dies', async () => {
      const backend = open(servers);
      const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
      await backend.setMany(keys.map((key) => [key, bytes(key)]));
      await server().kill();
      const live = keys.filter((key) => backend.serverFor(key) !== server().url);
      const dead = keys.filter((key) => backend.serverFor(key) === server().url);
      expect(live.length).toBeGreaterThan(0);
      expect(dead.length).toBeGreaterThan(0);
      expect((await backend.getMany(live)).map(text)).toStrictEqual(live);
      await expect(backend.get(dead[0] as string)).rejects.toBeInstanceOf(BackendUnavailableError);
      await expect(backend.getMany(keys)).rejects.toBeInstanceOf(BackendUnavailableError);
    });
  });

  describe('a stalled server', () => {
    it('times out within the deadline with BackendTimeoutError, and recovers when it resumes', async () => {
      const backend = open(server());
      await backend.set('k', bytes('v'));
      await server().pause();
      await stopped(server().pid);
      for (const op of [
        () => backend.get('k'),
        () => backend.set('k', bytes('w')),
        () => backend.acquireLock('k', { leaseMs: 5000, waitMs: 0 }),
      ]) {
        const startedAt = performance.now();
        await expect(op()).rejects.toBeInstanceOf(BackendTimeoutError);
        expect(performance.now() - startedAt).toBeLessThan(DEADLINE_MS + MARGIN_MS);
      }
      await server().resume();
      await sleep(100);
      expect(await backend.set('k', bytes('x'))).toBe('written');
      expect(text(await backend.get('k'))).toBe('x');
    });
  });

  describe('close', () => {
    it('leaves no socket or timer behind and rejects calls afterwards', async () => {
      await sleep(50);
      const before = countResources();
      const backend = open(servers);
      await backend.setMany([
        ['a', bytes('1')],
        ['b', bytes('2')],
      ]);
      const lease = (await backend.acquireLock('a', { leaseMs: 5000, waitMs: 0 })) as Lease;
      const waiting = backend.acquireLock('a', { leaseMs: 5000, waitMs: 5000 }).then(
        () => 'resolved',
        (error: unknown) => error,
      );
      await backend.close();
      expect(await waiting).toMatchObject({ code: 'BACKEND_CLOSED' });
      await expect(backend.get('a')).rejects.toMatchObject({ code: 'BACKEND_CLOSED' });
      await expect(backend.releaseLock(lease)).rejects.toMatchObject({ code: 'BACKEND_CLOSED' });
      await backend.close();
      await sleep(20);
      const after = countResources();
      for (const resource of ['TCPSocketWrap', 'Timeout']) expect(after[resource] ?? 0).toBeLessThanOrEqual(before[resource] ?? 0);
    });

    it('leaves a client it was given open', async () => {
      const client = Client.create(server().url, { logger: { log: () => undefined } });
      const backend = new MemcachedBackend({ client, keyPrefix: uniquePrefix() });
      await backend.set('k', bytes('v'));
      await backend.close();
      const { value } = await client.get(`${backend.keyPrefix}k`);
      expect(value?.toString()).toBe('v');
      client.close();
    });
  });
});

/** Waits until the kernel reports `pid` stopped (SIGSTOP is delivered asynchronously). */
async function stopped(pid: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    if (/^\d+ \(.*\) [tT] /.test(stat)) return;
    await sleep(10);
  }
  throw new Error(`process ${pid} did not stop`);
}

function countResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const resource of process.getActiveResourcesInfo()) {
    if (resource === 'TCPSocketWrap' || resource === 'Timeout') counts[resource] = (counts[resource] ?? 0) + 1;
  }
  return counts;
}
