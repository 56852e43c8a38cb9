import { randomUUID } from 'node:crypto';
import { BackendTimeoutError, BackendUnavailableError, type Lease } from '@latchkey/core';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RedisReplicaSet, requireService, startRedisReplicaSet, type SingleServer, which } from '@latchkey/test-servers';
import { fenceKeyOf, KeyLayout, lockKeyOf } from '../../src/internal/key-layout.js';
import { RedisBackend, type RedisBackendOptions } from '../../src/index.js';

const OPERATION_MS = 2_500;
const WAIT_MS = 1_000;
/** How late past a deadline a call may settle on this (shared, 2-core) machine. */
const MARGIN_MS = 700;

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** How a call settled, and when. */
async function settle<T>(call: () => Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  const started = performance.now();
  try {
    const value = await call();
    return { ms: performance.now() - started, value };
  } catch (error) {
    return { ms: performance.now() - started, error };
  }
}

describe.runIf(requireService('RedisBackend replicated locks (Sentinel)', which('redis-sentinel'), 'redis-sentinel not installed'))(
  'RedisBackend replicated locks: a primary, 2 replicas, 3 Sentinels',
  () => {
    let set: RedisReplicaSet;
    const opened: { close(): unknown }[] = [];

    beforeAll(async () => {
      set = await startRedisReplicaSet();
    }, 120_000);

    afterEach(async () => {
      await Promise.all(opened.splice(0).map((item) => item.close()));
      // Every test leaves the set whole: paused replicas resumed, killed ones back.
      for (const node of set.nodes) {
        await node.resume();
        if (!node.process.running) await node.restart();
      }
      await set.waitUntilSettled(60_000);
    }, 90_000);

    afterAll(async () => {
      await Promise.all(opened.splice(0).map((item) => item.close()));
      await set?.stop();
    });

    const make = (prefix: string, options: Partial<RedisBackendOptions> = {}): RedisBackend => {
      const backend = new RedisBackend({
        sentinel: {
          sentinels: set.sentinels.map((address) => ({ host: '127.0.0.1', port: Number(address.slice(address.lastIndexOf(':') + 1)) })),
          name: set.masterName,
        },
        keyPrefix: prefix,
        operationTimeoutMs: OPERATION_MS,
        ...options,
      });
      opened.push(backend);
      return backend;
    };
    const replicated = (prefix: string, replicas = 2): RedisBackend => make(prefix, { lockReplication: { replicas, timeoutMs: WAIT_MS } });
    const client = (node: SingleServer): Redis => {
      const redis = new Redis({ port: node.port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
      opened.push({ close: () => redis.disconnect() });
      return redis;
    };
    const prefix = (): string => `repl-${randomUUID().slice(0, 8)}:`;
    const keysOf = (keyPrefix: string, key: string): { data: string; lock: string; fence: string } => {
      const data = new KeyLayout(keyPrefix).dataKey(key);
      return { data, lock: lockKeyOf(data), fence: fenceKeyOf(data) };
    };

    it('grants a lock only once both replicas have it: a stalled replica delays the grant', async () => {
      const keyPrefix = prefix();
      const backend = replicated(keyPrefix);
      const [slow, other] = (await set.replicas()) as [SingleServer, SingleServer];
      expect(await backend.get('warm-up')).toBeUndefined();
      await slow.pause();
      const acquiring = settle(() => backend.acquireLock('k', { leaseMs: 30_000, waitMs: 0 })).then((result) => ({
        ...result,
        at: performance.now(),
      }));
      await sleep(250);
      await slow.resume();
      const resumedAt = performance.now();
      const { value: lease, error, ms, at } = await acquiring;
      expect(error).toBeUndefined();
      expect(lease).toBeDefined();
      // WAIT held the answer until the stalled replica had the lock too.
      expect(at, `acquire took ${ms} ms`).toBeGreaterThan(resumedAt);
      const { lock } = keysOf(keyPrefix, 'k');
      expect(await client(slow).get(lock)).toBe((lease as Lease).token);
      expect(await client(other).get(lock)).toBe((lease as Lease).token);
    });

    it('acknowledges a locked write only once both replicas have it', async () => {
      const keyPrefix = prefix();
      const backend = replicated(keyPrefix);
      const lease = (await backend.acquireLock('k', { leaseMs: 30_000, waitMs: 0 })) as Lease;
      expect(await backend.set('k', bytes('v1'), { lease })).toBe('written');
      const { data } = keysOf(keyPrefix, 'k');
      for (const replica of await set.replicas()) expect(await client(replica).get(data)).toBe('v1');
      expect(await backend.delete('k', { lease })).toBe('deleted');
      for (const replica of await set.replicas()) expect(await client(replica).exists(data)).toBe(0);
      expect(await backend.extendLock(lease, 30_000)).toBe(true);
      expect(await backend.releaseLock(lease)).toBe(true);
    });

    it('rejects an acquire no replica quorum confirms with BackendUnavailableError within the deadline, and gives the lock back', async () => {
      const keyPrefix = prefix();
      const backend = replicated(keyPrefix);
      const [paused] = (await set.replicas()) as [SingleServer];
      expect(await backend.get('warm-up')).toBeUndefined();
      await paused.pause();
      const { error, ms } = await settle(() => backend.acquireLock('k', { leaseMs: 30_000, waitMs: 0 }));
      expect(error).toBeInstanceOf(BackendUnavailableError);
      expect((error as Error).message).toContain('1 of 2 replicas');
      expect(ms, `settled after ${ms} ms`).toBeGreaterThanOrEqual(WAIT_MS - 50);
      expect(ms, `settled after ${ms} ms`).toBeLessThan(OPERATION_MS + MARGIN_MS);
      // The give-back runs in the background: the lock the script took is gone soon after.
      const primary = client(await set.primary());
      const { lock } = keysOf(keyPrefix, 'k');
      const until = performance.now() + 2_000;
      while ((await primary.exists(lock)) === 1 && performance.now() < until) await sleep(20);
      expect(await primary.exists(lock)).toBe(0);
      // The default mode does not wait for replicas: it is granted at once.
      const plain = make(keyPrefix);
      const granted = await settle(() => plain.acquireLock('k', { leaseMs: 30_000, waitMs: 0 }));
      expect(granted.value).toBeDefined();
      expect(granted.ms, `default acquire took ${granted.ms} ms`).toBeLessThan(WAIT_MS);
    });

    it('counts acknowledgements, not replicas: with replicas: 1, one stalled replica of two does not matter', async () => {
      const backend = replicated(prefix(), 1);
      const [paused] = (await set.replicas()) as [SingleServer];
      await paused.pause();
      const lease = (await backend.acquireLock('k', { leaseMs: 30_000, waitMs: 0 })) as Lease;
      expect(lease).toBeDefined();
      expect(await backend.set('k', bytes('v'), { lease })).toBe('written');
    });

    it('reports a locked write, delete or extend too few replicas acknowledged as BackendTimeoutError: it happened on the primary only', async () => {
      const keyPrefix = prefix();
      const backend = replicated(keyPrefix);
      const lease = (await backend.acquireLock('k', { leaseMs: 30_000, waitMs: 0 })) as Lease;
      expect(await backend.set('k', bytes('before'), { lease })).toBe('written');
      const [paused] = (await set.replicas()) as [SingleServer];
      await paused.pause();
      const primary = client(await set.primary());
      const { data, lock } = keysOf(keyPrefix, 'k');

      const write = await settle(() => backend.set('k', bytes('after'), { lease }));
      expect(write.error).toBeInstanceOf(BackendTimeoutError);
      expect((write.error as BackendTimeoutError).timeoutMs).toBe(WAIT_MS);
      expect(write.ms, `set settled after ${write.ms} ms`).toBeLessThan(OPERATION_MS + MARGIN_MS);
      expect(await primary.get(data)).toBe('after');

      const extend = await settle(() => backend.extendLock(lease, 60_000));
      expect(extend.error).toBeInstanceOf(BackendTimeoutError);
      expect(await primary.pttl(lock)).toBeGreaterThan(30_000);

      const removal = await settle(() => backend.delete('k', { lease }));
      expect(removal.error).toBeInstanceOf(BackendTimeoutError);
      expect(removal.ms, `delete settled after ${removal.ms} ms`).toBeLessThan(OPERATION_MS + MARGIN_MS);
      expect(await primary.exists(data)).toBe(0);

      // Nothing changed, nothing to wait for: a refused write and a delete of a missing key answer as usual.
      expect(await backend.delete('k', { lease })).toBe('missing');
      expect(await backend.set('k', bytes('x'), { lease: { ...lease, token: 'not-held' } })).toBe('lease-lost');
    });

    it('rejects with a typed error within the deadline when a replica was killed', async () => {
      const backend = replicated(prefix());
      const [victim] = (await set.replicas()) as [SingleServer];
      expect(await backend.get('warm-up')).toBeUndefined();
      await victim.kill('SIGKILL');
      const { error, ms } = await settle(() => backend.acquireLock('k', { leaseMs: 30_000, waitMs: 0 }));
      expect(error).toBeInstanceOf(BackendUnavailableError);
      expect(ms, `settled after ${ms} ms`).toBeLessThan(OPERATION_MS + MARGIN_MS);
      // The waiting form fails the same way: the backend cannot lock safely right now.
      const waiting = await settle(() => backend.acquireLock('k2', { leaseMs: 30_000, waitMs: 5_000 }));
      expect(waiting.error).toBeInstanceOf(BackendUnavailableError);
      expect(waiting.ms, `settled after ${waiting.ms} ms`).toBeLessThan(OPERATION_MS + MARGIN_MS);
    });

    it('issues fencing tokens no lower than the server clock in microseconds, rising even when the counter falls back', async () => {
      const keyPrefix = prefix();
      const backend = replicated(keyPrefix);
      const primary = client(await set.primary());
      const [seconds = 0, micros = 0] = await primary.time();
      const before = BigInt(seconds) * 1_000_000n + BigInt(micros);
      const first = (await backend.acquireLock('k', { leaseMs: 30_000, waitMs: 0 })) as Lease;
      expect(first.fencingToken).toBeGreaterThanOrEqual(before);
      await backend.releaseLock(first);
      // As a new primary that lost the last increments would have it: the counter far behind.
      await primary.set(keysOf(keyPrefix, 'k').fence, '5');
      const second = (await backend.acquireLock('k', { leaseMs: 30_000, waitMs: 0 })) as Lease;
      expect(second.fencingToken).toBeGreaterThan(first.fencingToken);
      await backend.releaseLock(second);
      // Many acquires within one microsecond-tick still rise strictly.
      const tokens: bigint[] = [];
      for (let i = 0; i < 20; i++) {
        const lease = (await backend.acquireLock('k', { leaseMs: 30_000, waitMs: 0 })) as Lease;
        tokens.push(lease.fencingToken);
        await backend.releaseLock(lease);
      }
      for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1] as bigint);
      // A default-mode backend on the same keys keeps counting up from there.
      const plain = make(keyPrefix);
      const after = (await plain.acquireLock('k', { leaseMs: 30_000, waitMs: 0 })) as Lease;
      expect(after.fencingToken).toBe((tokens.at(-1) as bigint) + 1n);
    });

    it('sends the script in full to a primary that lost it, and says nothing was written when replicas are short', async () => {
      const keyPrefix = prefix();
      const backend = replicated(keyPrefix);
      const primary = client(await set.primary());
      await backend.releaseLock((await backend.acquireLock('warm', { leaseMs: 30_000, waitMs: 0 })) as Lease);
      await primary.script('FLUSH');
      const lease = (await backend.acquireLock('k', { leaseMs: 30_000, waitMs: 0 })) as Lease;
      expect(lease).toBeDefined();
      await backend.releaseLock(lease);
      await primary.script('FLUSH');
      const [paused] = (await set.replicas()) as [SingleServer];
      await paused.pause();
      const { error, ms } = await settle(() => backend.acquireLock('k', { leaseMs: 30_000, waitMs: 0 }));
      expect(error).toBeInstanceOf(BackendUnavailableError);
      expect((error as Error).message).toContain('nothing was written');
      expect(ms, `settled after ${ms} ms`).toBeLessThan(OPERATION_MS + MARGIN_MS);
      expect(await primary.exists(keysOf(keyPrefix, 'k').lock)).toBe(0);
    });

    it('keeps a granted lock across kill -9 of the primary: the promoted replica refuses another holder', { timeout: 90_000 }, async () => {
      const keyPrefix = prefix();
      const holder = replicated(keyPrefix);
      const lease = (await holder.acquireLock('k', { leaseMs: 60_000, waitMs: 0 })) as Lease;
      expect(await holder.set('k', bytes('held'), { lease })).toBe('written');
      const report = await set.killPrimary();
      expect(report.to).not.toBe(report.from);
      const other = replicated(keyPrefix);
      let attempt = await settle(() => other.acquireLock('k', { leaseMs: 1_000, waitMs: 0 }));
      // The new primary may still be settling in: retry what failed for availability only.
      for (let i = 0; i < 20 && attempt.error instanceof BackendUnavailableError; i++) {
        await sleep(250);
        attempt = await settle(() => other.acquireLock('k', { leaseMs: 1_000, waitMs: 0 }));
      }
      expect(attempt.error).toBeUndefined();
      expect(attempt.value).toBeUndefined();
      expect(Array.from((await other.get('k')) ?? [])).toEqual(Array.from(bytes('held')));
    });
  },
);
