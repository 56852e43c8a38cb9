import { randomUUID } from 'node:crypto';
import { KeyValueStore, LockTimeoutError, sha1KeyMangler, ValidationError, type Lease } from '@latchkey/core';
import { afterAll, describe, expect, it } from 'vitest';
import { availableTargets, closeAll, sleep } from '../support/targets.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (value: Uint8Array | undefined): string | undefined => (value === undefined ? undefined : new TextDecoder().decode(value));
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

afterAll(closeAll);

describe.each(availableTargets('RedisBackend locks'))('RedisBackend locks on $name', (target) => {
  describe('acquire', () => {
    it('grants a free lock with a lease and refuses a second holder', async () => {
      const prefix = `grant-${randomUUID().slice(0, 8)}:`;
      const backend = target.create({ keyPrefix: prefix });
      const lease = await backend.acquireLock('k', { leaseMs: 5_000, waitMs: 0 });
      expect(lease?.key).toBe('k');
      expect(typeof lease?.token).toBe('string');
      expect(await backend.acquireLock('k', { leaseMs: 5_000, waitMs: 0 })).toBeUndefined();
      expect(await target.create({ keyPrefix: prefix }).acquireLock('k', { leaseMs: 5_000, waitMs: 0 })).toBeUndefined();
    });

    it('keeps locks of different keys independent', async () => {
      const backend = target.create();
      expect(await backend.acquireLock('a', { leaseMs: 5_000, waitMs: 0 })).toBeDefined();
      expect(await backend.acquireLock('b', { leaseMs: 5_000, waitMs: 0 })).toBeDefined();
    });

    it('raises the fencing token with every acquire, across lapses and backends', async () => {
      const prefix = `fence-${randomUUID().slice(0, 8)}:`;
      const a = target.create({ keyPrefix: prefix });
      const b = target.create({ keyPrefix: prefix });
      const tokens: bigint[] = [];
      for (const backend of [a, b, a, b]) {
        const lease = (await backend.acquireLock('k', { leaseMs: 50, waitMs: 1_000 })) as Lease;
        tokens.push(lease.fencingToken);
        if (tokens.length % 2 === 0) await backend.releaseLock(lease);
      }
      for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1] as bigint);
    });

    it('lets the next holder in once the lease lapses, not before', async () => {
      const prefix = `lapse-${randomUUID().slice(0, 8)}:`;
      const holder = target.create({ keyPrefix: prefix });
      const waiter = target.create({ keyPrefix: prefix });
      await holder.acquireLock('k', { leaseMs: 300, waitMs: 0 });
      const started = performance.now();
      const lease = await waiter.acquireLock('k', { leaseMs: 1_000, waitMs: 3_000 });
      const waited = performance.now() - started;
      expect(lease).toBeDefined();
      expect(waited).toBeGreaterThanOrEqual(250);
      expect(waited).toBeLessThan(1_000);
    });

    it('keeps a lease of 0 ms until it is released', async () => {
      const prefix = `forever-${randomUUID().slice(0, 8)}:`;
      const backend = target.create({ keyPrefix: prefix });
      const lease = (await backend.acquireLock('k', { leaseMs: 0, waitMs: 0 })) as Lease;
      expect(await target.admin().pttl(`${prefix}{k}:lock`)).toBe(-1);
      expect(await target.create({ keyPrefix: prefix }).acquireLock('k', { leaseMs: 0, waitMs: 200 })).toBeUndefined();
      await backend.releaseLock(lease);
      expect(await target.create({ keyPrefix: prefix }).acquireLock('k', { leaseMs: 0, waitMs: 0 })).toBeDefined();
    });

    it('resolves undefined when the wait runs out', async () => {
      const prefix = `wait-${randomUUID().slice(0, 8)}:`;
      await target.create({ keyPrefix: prefix }).acquireLock('k', { leaseMs: 10_000, waitMs: 0 });
      const started = performance.now();
      expect(await target.create({ keyPrefix: prefix }).acquireLock('k', { leaseMs: 1_000, waitMs: 150 })).toBeUndefined();
      expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    });
  });

  describe('long waits', () => {
    it('keeps a 30-day wait on a held key waiting (no timer overflow), and ends it on abort', async () => {
      const prefix = `long-${randomUUID().slice(0, 8)}:`;
      await target.create({ keyPrefix: prefix }).acquireLock('k', { leaseMs: 60_000, waitMs: 0 });
      const controller = new AbortController();
      let settled = false;
      const waiting = target
        .create({ keyPrefix: prefix })
        .acquireLock('k', { leaseMs: 1_000, waitMs: 30 * 24 * 60 * 60 * 1_000, signal: controller.signal })
        .finally(() => (settled = true));
      await sleep(1_000);
      expect(settled).toBe(false);
      const reason = new Error('done waiting');
      controller.abort(reason);
      await expect(waiting).rejects.toBe(reason);
    });

    it('accepts an endless wait (waitMs: Infinity) and serves it on release', async () => {
      const prefix = `endless-${randomUUID().slice(0, 8)}:`;
      const holder = target.create({ keyPrefix: prefix });
      const lease = (await holder.acquireLock('k', { leaseMs: 60_000, waitMs: 0 })) as Lease;
      const waiting = target.create({ keyPrefix: prefix }).acquireLock('k', { leaseMs: 1_000, waitMs: Infinity });
      await sleep(50);
      await holder.releaseLock(lease);
      expect((await waiting)?.fencingToken).toBe(lease.fencingToken + 1n);
    });
  });

  describe('waking waiters', () => {
    it('wakes a waiter in another backend when the lock is released (pub/sub), long before the lease lapses', async () => {
      const prefix = `wake-${randomUUID().slice(0, 8)}:`;
      const holder = target.create({ keyPrefix: prefix });
      const waiter = target.create({ keyPrefix: prefix });
      const latencies: number[] = [];
      for (let round = 0; round < 15; round++) {
        const lease = (await holder.acquireLock('k', { leaseMs: 10_000, waitMs: 1_000 })) as Lease;
        const waiting = waiter.acquireLock('k', { leaseMs: 10_000, waitMs: 5_000 });
        await sleep(20);
        const releasedAt = performance.now();
        await holder.releaseLock(lease);
        const next = (await waiting) as Lease;
        latencies.push(performance.now() - releasedAt);
        await waiter.releaseLock(next);
      }
      console.info(
        `[${target.name}] cross-backend hand-over after release: median ${median(latencies).toFixed(2)} ms, max ${Math.max(...latencies).toFixed(2)} ms`,
      );
      expect(median(latencies)).toBeLessThan(100);
    });

    it('serves waiters of one process in arrival order', async () => {
      const backend = target.create();
      const first = (await backend.acquireLock('k', { leaseMs: 10_000, waitMs: 0 })) as Lease;
      const order: number[] = [];
      const waiters = Array.from({ length: 8 }, (_, i) =>
        backend.acquireLock('k', { leaseMs: 10_000, waitMs: 10_000 }).then(async (lease) => {
          order.push(i);
          await sleep(2);
          await backend.releaseLock(lease as Lease);
        }),
      );
      await sleep(20);
      await backend.releaseLock(first);
      await Promise.all(waiters);
      expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    });

    it('hands over within a process promptly (median release → next holder)', async () => {
      const backend = target.create();
      const store = new KeyValueStore(`handover-${target.name}`);
      await store.configure(backend, { lockTimeoutMs: 10_000 });
      let releasedAt = 0;
      const latencies: number[] = [];
      await Promise.all(
        Array.from({ length: 64 }, () =>
          store.withLock(
            'k',
            async () => {
              if (releasedAt > 0) latencies.push(performance.now() - releasedAt);
              await sleep(1);
              releasedAt = performance.now();
            },
            { waitMs: 30_000 },
          ),
        ),
      );
      console.info(`[${target.name}] in-process hand-over (64 waiters): median ${median(latencies).toFixed(2)} ms`);
      expect(latencies).toHaveLength(63);
      expect(median(latencies)).toBeLessThan(50);
      await store.close();
    });
  });

  describe('abort', () => {
    it('rejects promptly with the reason and leaves no lock behind', async () => {
      const prefix = `abort-${randomUUID().slice(0, 8)}:`;
      const holder = target.create({ keyPrefix: prefix });
      const waiter = target.create({ keyPrefix: prefix });
      const lease = (await holder.acquireLock('k', { leaseMs: 10_000, waitMs: 0 })) as Lease;
      const controller = new AbortController();
      const waiting = waiter.acquireLock('k', { leaseMs: 10_000, waitMs: 10_000, signal: controller.signal });
      await sleep(30);
      const reason = new Error('caller gave up');
      const abortedAt = performance.now();
      controller.abort(reason);
      await expect(waiting).rejects.toBe(reason);
      expect(performance.now() - abortedAt).toBeLessThan(50);
      await holder.releaseLock(lease);
      const next = await target.create({ keyPrefix: prefix }).acquireLock('k', { leaseMs: 1_000, waitMs: 1_000 });
      expect(next).toBeDefined();
    });

    it('releases a lock won while the abort was on its way', async () => {
      const prefix = `abort2-${randomUUID().slice(0, 8)}:`;
      const backend = target.create({ keyPrefix: prefix });
      for (let i = 0; i < 5; i++) {
        const controller = new AbortController();
        const pending = backend.acquireLock('k', { leaseMs: 10_000, waitMs: 1_000, signal: controller.signal });
        controller.abort(new Error('now'));
        await expect(pending).rejects.toThrow('now');
      }
      expect(await target.create({ keyPrefix: prefix }).acquireLock('k', { leaseMs: 1_000, waitMs: 1_000 })).toBeDefined();
    });
  });

  describe('release and extend', () => {
    it('releases only its own lease', async () => {
      const prefix = `rel-${randomUUID().slice(0, 8)}:`;
      const a = target.create({ keyPrefix: prefix });
      const b = target.create({ keyPrefix: prefix });
      const stale = (await a.acquireLock('k', { leaseMs: 50, waitMs: 0 })) as Lease;
      const current = (await b.acquireLock('k', { leaseMs: 10_000, waitMs: 1_000 })) as Lease;
      expect(await a.releaseLock(stale)).toBe(false);
      expect(await a.acquireLock('k', { leaseMs: 1_000, waitMs: 0 })).toBeUndefined();
      expect(await b.releaseLock(current)).toBe(true);
      expect(await b.releaseLock(current)).toBe(false);
    });

    it('extends only its own lease, for the new length', async () => {
      const prefix = `ext-${randomUUID().slice(0, 8)}:`;
      const a = target.create({ keyPrefix: prefix });
      const admin = target.admin();
      const lease = (await a.acquireLock('k', { leaseMs: 300, waitMs: 0 })) as Lease;
      expect(await a.extendLock(lease, 5_000)).toBe(true);
      expect(await admin.pttl(`${prefix}{k}:lock`)).toBeGreaterThan(4_000);
      expect(await a.extendLock(lease, 0)).toBe(true);
      expect(await admin.pttl(`${prefix}{k}:lock`)).toBe(-1);
      await a.releaseLock(lease);
      expect(await a.extendLock(lease, 5_000)).toBe(false);
      const other = (await a.acquireLock('k', { leaseMs: 5_000, waitMs: 0 })) as Lease;
      expect(await a.extendLock(lease, 5_000)).toBe(false);
      expect(await a.releaseLock(other)).toBe(true);
    });
  });

  describe('malformed leases', () => {
    it('rejects a lease that is not one with ValidationError, in every call that takes one', async () => {
      const backend = target.create();
      const malformed: unknown[] = [
        {},
        null,
        'lease',
        { key: 'k', token: '', fencingToken: 1n },
        { key: 'k', token: 't', fencingToken: 1 },
      ];
      for (const lease of malformed) {
        await expect(backend.releaseLock(lease as Lease)).rejects.toBeInstanceOf(ValidationError);
        await expect(backend.extendLock(lease as Lease, 1_000)).rejects.toBeInstanceOf(ValidationError);
        await expect(backend.set('k', bytes('v'), { lease: lease as Lease })).rejects.toBeInstanceOf(ValidationError);
        await expect(backend.delete('k', { lease: lease as Lease })).rejects.toBeInstanceOf(ValidationError);
      }
      expect(await backend.get('k')).toBeUndefined();
    });
  });

  describe('lease-checked writes', () => {
    it('writes and deletes while the lease holds', async () => {
      const backend = target.create();
      const lease = (await backend.acquireLock('k', { leaseMs: 5_000, waitMs: 0 })) as Lease;
      expect(await backend.set('k', bytes('v'), { lease, expiresAt: Date.now() + 5_000 })).toBe('written');
      expect(text(await backend.get('k'))).toBe('v');
      expect(await backend.delete('k', { lease })).toBe('deleted');
      expect(await backend.delete('k', { lease })).toBe('missing');
    });

    it('refuses a write and a delete after the lock was taken over, changing nothing', async () => {
      const prefix = `over-${randomUUID().slice(0, 8)}:`;
      const a = target.create({ keyPrefix: prefix });
      const b = target.create({ keyPrefix: prefix });
      const stale = (await a.acquireLock('k', { leaseMs: 50, waitMs: 0 })) as Lease;
      const current = (await b.acquireLock('k', { leaseMs: 10_000, waitMs: 1_000 })) as Lease;
      expect(await b.set('k', bytes('new'), { lease: current })).toBe('written');
      expect(await a.set('k', bytes('stale'), { lease: stale })).toBe('lease-lost');
      expect(await a.delete('k', { lease: stale })).toBe('lease-lost');
      expect(text(await b.get('k'))).toBe('new');
    });

    it('refuses a write after the lease lapsed with nobody else holding it', async () => {
      const backend = target.create();
      const lease = (await backend.acquireLock('k', { leaseMs: 30, waitMs: 0 })) as Lease;
      await sleep(60);
      expect(await backend.set('k', bytes('late'), { lease })).toBe('lease-lost');
      expect(await backend.get('k')).toBeUndefined();
    });

    it('refuses a lease for another key', async () => {
      const backend = target.create();
      const lease = (await backend.acquireLock('a', { leaseMs: 5_000, waitMs: 0 })) as Lease;
      expect(await backend.set('b', bytes('v'), { lease })).toBe('lease-lost');
      expect(await backend.delete('b', { lease })).toBe('lease-lost');
    });
  });

  describe('through KeyValueStore', () => {
    it('loses no update when two backends increment one counter concurrently', async () => {
      const prefix = `count-${randomUUID().slice(0, 8)}:`;
      const stores = await Promise.all(
        [0, 1].map(async (i) => {
          const store = new KeyValueStore(`counter-${target.name}-${i}`);
          await store.configure(target.create({ keyPrefix: prefix }), { lockTimeoutMs: 5_000 });
          return store;
        }),
      );
      await stores[0]?.set('n', 0);
      await Promise.all(
        stores.flatMap((store) =>
          Array.from({ length: 24 }, () =>
            store.withLock(
              'n',
              async (lock) => {
                const n = await store.get<number>('n');
                await store.set('n', n + 1, { lock });
              },
              { waitMs: 30_000 },
            ),
          ),
        ),
      );
      expect(await stores[1]?.get('n')).toBe(48);
      await Promise.all(stores.map((store) => store.close()));
    });

    it('rejects a locked write with LockTimeoutError after another holder took over', async () => {
      const prefix = `kvs-${randomUUID().slice(0, 8)}:`;
      const store = new KeyValueStore(`takeover-${target.name}`);
      await store.configure(target.create({ keyPrefix: prefix }), { lockTimeoutMs: 1_100, lockSafetyWindowMs: 1_000 });
      const lock = await store.getLock('k').acquire();
      const storedKey = sha1KeyMangler('k');
      expect(await target.admin().del(`${prefix}{${storedKey}}:lock`)).toBe(1);
      expect(await target.create({ keyPrefix: prefix }).acquireLock(storedKey, { leaseMs: 10_000, waitMs: 0 })).toBeDefined();
      await expect(store.set('k', 'mine', { lock })).rejects.toBeInstanceOf(LockTimeoutError);
      expect(lock.signal.aborted).toBe(true);
      await store.close();
    });
  });
});
