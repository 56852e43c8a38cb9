import { randomUUID } from 'node:crypto';
import { KeyValueStore, type Lease } from '@latchkey/core';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { CLAIM_MS, COHORT_MAX, QUEUE_ENTRY_MS, QUEUE_REFRESH_MS } from '../../src/internal/locks.js';
import type { Redis, Cluster } from 'ioredis';
import { availableTargets, closeAll, commandCalls, sleep } from '../support/targets.js';

afterAll(closeAll);

const LEASE_MS = 10_000;

/** Resolves once `check` holds, polling every 10 ms; rejects after `ms` with what it last saw. */
async function eventually(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const until = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > until) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(10);
  }
}

describe.each(availableTargets('RedisBackend lock queue'))('RedisBackend lock queue on $name', (target) => {
  const keysOf = (prefix: string) => ({
    lock: `${prefix}{k}:lock`,
    queue: `${prefix}{k}:queue`,
    entries: `${prefix}{k}:waiters`,
  });

  /** Queues a waiter of a process that is gone, as its backend would have: first in line. */
  async function queueGone(admin: Redis | Cluster, prefix: string, leaseMs: number, refreshedAgoMs = 0): Promise<void> {
    const [seconds, micros] = await admin.time();
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    await admin.hset(keysOf(prefix).entries, 'gone', `${now - refreshedAgoMs} gone-token ${leaseMs}`);
    await admin.rpush(keysOf(prefix).queue, 'gone');
    await admin.pexpire(keysOf(prefix).entries, QUEUE_ENTRY_MS);
    await admin.pexpire(keysOf(prefix).queue, QUEUE_ENTRY_MS);
  }

  it('hands the lock to waiting backends in the order they queued, with rising fencing tokens', async () => {
    const prefix = `fifo-${randomUUID().slice(0, 8)}:`;
    const admin = target.admin();
    const holder = target.create({ keyPrefix: prefix });
    const first = (await holder.acquireLock('k', { leaseMs: LEASE_MS, waitMs: 0 })) as Lease;
    const order: string[] = [];
    const waiters = ['a', 'b', 'c', 'd'].map((name) => ({ name, backend: target.create({ keyPrefix: prefix }) }));
    const won: Promise<Lease>[] = [];
    for (const [index, { name, backend }] of waiters.entries()) {
      won.push(
        backend.acquireLock('k', { leaseMs: LEASE_MS, waitMs: 20_000 }).then(async (lease) => {
          order.push(name);
          // Hold briefly, then pass it on: the next in line must be the next to queue.
          await sleep(5);
          await backend.releaseLock(lease as Lease);
          return lease as Lease;
        }),
      );
      // Each waiter is queued before the next one starts.
      await eventually(`waiter ${name} queued`, 5_000, async () => (await admin.llen(keysOf(prefix).queue)) === index + 1);
    }
    await holder.releaseLock(first);
    const leases = await Promise.all(won);
    expect(order).toEqual(['a', 'b', 'c', 'd']);
    const tokens = [first, ...leases].map((lease) => lease.fencingToken);
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1] as bigint);
    // Nothing queued is left behind, and the lock is free.
    expect(await admin.exists(keysOf(prefix).queue, keysOf(prefix).entries, keysOf(prefix).lock)).toBe(0);
  });

  it('passes the lock within a backend at most COHORT_MAX times in a row while another backend waits', async () => {
    const prefix = `cohort-${randomUUID().slice(0, 8)}:`;
    const admin = target.admin();
    const busy = target.create({ keyPrefix: prefix });
    const first = (await busy.acquireLock('k', { leaseMs: LEASE_MS, waitMs: 0 })) as Lease;
    const order: string[] = [];
    const hold = async (name: string, backend: typeof busy): Promise<Lease> => {
      const lease = (await backend.acquireLock('k', { leaseMs: LEASE_MS, waitMs: 20_000 })) as Lease;
      order.push(name);
      await sleep(5);
      await backend.releaseLock(lease);
      return lease;
    };
    const own = Array.from({ length: COHORT_MAX + 3 }, (_, i) => hold(`own${i}`, busy));
    const other = target.create({ keyPrefix: prefix });
    const others = hold('other', other);
    await eventually('the other backend queued', 5_000, async () => (await admin.hlen(keysOf(prefix).entries)) === 1);
    await busy.releaseLock(first);
    const leases = await Promise.all([...own, others]);
    expect(order.indexOf('other'), order.join(' ')).toBe(COHORT_MAX);
    const tokens = [first, ...leases].map((lease) => lease.fencingToken).sort((a, b) => (a < b ? -1 : 1));
    expect(new Set(tokens).size).toBe(tokens.length);
    expect(await admin.exists(keysOf(prefix).queue, keysOf(prefix).entries, keysOf(prefix).lock)).toBe(0);
  });

  it('costs each release one attempt, whatever the number of waiting backends', async () => {
    const prefix = `cost-${randomUUID().slice(0, 8)}:`;
    const masters = await target.masters();
    const backends = Array.from({ length: 12 }, () => target.create({ keyPrefix: prefix }));
    const stores = await Promise.all(
      backends.map(async (backend, index) => {
        const store = new KeyValueStore(`queue-cost-${prefix}-${index}`);
        await store.configure(backend);
        return store;
      }),
    );
    await (stores[0] as KeyValueStore).set('counter', 0);
    // One warm-up round so every backend has its scripts loaded and its subscription up.
    const increment = (store: KeyValueStore): Promise<void> =>
      store.withLock(
        'counter',
        async (lock) => {
          const value = await store.get<number>('counter');
          await store.set('counter', value + 1, { lock });
        },
        { waitMs: 20_000 },
      );
    await Promise.all(stores.map(increment));
    const rounds = 4;
    const before = await commandCalls(masters, 'evalsha');
    await Promise.all(
      stores.map(async (store) => {
        for (let i = 0; i < rounds; i++) await increment(store);
      }),
    );
    const scripts = (await commandCalls(masters, 'evalsha')) - before;
    const increments = rounds * stores.length;
    expect(await (stores[0] as KeyValueStore).get('counter')).toBe(increments + stores.length);
    // Per increment: locked set and release (the release hands the lease over with no acquire),
    // the first acquire that queues a backend, and a refresh per queued backend per
    // QUEUE_REFRESH_MS, which a slow run may reach. Without the queue every release woke every
    // backend's head: 12 attempts per release.
    expect(scripts / increments, `${scripts} scripts for ${increments} increments`).toBeLessThanOrEqual(3.5);
    await Promise.all(stores.map((store) => store.close()));
  });

  it('takes a waiter that timed out out of the queue, so the next one gets the lock at once', async () => {
    const prefix = `leave-${randomUUID().slice(0, 8)}:`;
    const admin = target.admin();
    const holder = target.create({ keyPrefix: prefix });
    const lease = (await holder.acquireLock('k', { leaseMs: LEASE_MS, waitMs: 0 })) as Lease;
    const quitter = target.create({ keyPrefix: prefix });
    expect(await quitter.acquireLock('k', { leaseMs: LEASE_MS, waitMs: 200 })).toBeUndefined();
    await eventually('the quitter left the queue', 5_000, async () => (await admin.exists(keysOf(prefix).entries)) === 0);
    const aborter = target.create({ keyPrefix: prefix });
    const controller = new AbortController();
    const aborted = aborter.acquireLock('k', { leaseMs: LEASE_MS, waitMs: 20_000, signal: controller.signal });
    await eventually('the aborter queued', 5_000, async () => (await admin.hlen(keysOf(prefix).entries)) === 1);
    controller.abort(new Error('stop'));
    await expect(aborted).rejects.toThrow('stop');
    await eventually('the aborter left the queue', 5_000, async () => (await admin.exists(keysOf(prefix).entries)) === 0);

    const next = target.create({ keyPrefix: prefix });
    const waiting = next.acquireLock('k', { leaseMs: LEASE_MS, waitMs: 20_000 });
    await eventually('the next waiter queued', 5_000, async () => (await admin.hlen(keysOf(prefix).entries)) === 1);
    const releasedAt = performance.now();
    await holder.releaseLock(lease);
    expect(await waiting).toBeDefined();
    const took = performance.now() - releasedAt;
    // Handed over at the release, not after a refresh.
    expect(took, `took ${took.toFixed(0)} ms`).toBeLessThan(QUEUE_REFRESH_MS);
  });

  it('skips a queued waiter that stopped refreshing its entry (a crashed process)', async () => {
    const prefix = `stale-${randomUUID().slice(0, 8)}:`;
    const admin = target.admin();
    const holder = target.create({ keyPrefix: prefix });
    const lease = (await holder.acquireLock('k', { leaseMs: LEASE_MS, waitMs: 0 })) as Lease;
    await queueGone(admin, prefix, LEASE_MS, QUEUE_ENTRY_MS + 1_000);
    const next = target.create({ keyPrefix: prefix });
    const waiting = next.acquireLock('k', { leaseMs: LEASE_MS, waitMs: 20_000 });
    await eventually('the next waiter queued', 5_000, async () => (await admin.hlen(keysOf(prefix).entries)) === 2);
    const releasedAt = performance.now();
    await holder.releaseLock(lease);
    const second = (await waiting) as Lease;
    const took = performance.now() - releasedAt;
    expect(second.fencingToken).toBeGreaterThan(lease.fencingToken);
    expect(took, `took ${took.toFixed(0)} ms`).toBeLessThan(QUEUE_REFRESH_MS);
  });

  it('lets the next waiter in once a hand-over to a crashed waiter lapses like a lease', async () => {
    const prefix = `crash-${randomUUID().slice(0, 8)}:`;
    const admin = target.admin();
    const keys = keysOf(prefix);
    const holder = target.create({ keyPrefix: prefix });
    const lease = (await holder.acquireLock('k', { leaseMs: LEASE_MS, waitMs: 0 })) as Lease;
    const goneLeaseMs = 400;
    await queueGone(admin, prefix, goneLeaseMs);
    const next = target.create({ keyPrefix: prefix });
    const waiting = next.acquireLock('k', { leaseMs: LEASE_MS, waitMs: 20_000 });
    await eventually('the next waiter queued', 5_000, async () => (await admin.hlen(keys.entries)) === 2);
    const releasedAt = performance.now();
    await holder.releaseLock(lease);
    expect(await admin.get(keys.lock)).toBe('gone-token');
    const second = (await waiting) as Lease;
    const took = performance.now() - releasedAt;
    expect(second.fencingToken).toBeGreaterThan(lease.fencingToken + 1n);
    // The gone waiter's lease lapses; the next one looks again by its refresh at the latest.
    expect(took, `took ${took.toFixed(0)} ms`).toBeGreaterThanOrEqual(goneLeaseMs - 50);
    expect(took, `took ${took.toFixed(0)} ms`).toBeLessThan(goneLeaseMs + QUEUE_REFRESH_MS + 2_000);
  });

  it('hands a lease of 0 over for the claim window only, and the waiter claims it for good', async () => {
    const prefix = `zero-${randomUUID().slice(0, 8)}:`;
    const admin = target.admin();
    const keys = keysOf(prefix);
    const holder = target.create({ keyPrefix: prefix });
    const lease = (await holder.acquireLock('k', { leaseMs: LEASE_MS, waitMs: 0 })) as Lease;
    const next = target.create({ keyPrefix: prefix });
    const waiting = next.acquireLock('k', { leaseMs: 0, waitMs: 20_000 });
    await eventually('the next waiter queued', 5_000, async () => (await admin.hlen(keys.entries)) === 1);
    await holder.releaseLock(lease);
    const second = (await waiting) as Lease;
    expect(await admin.get(keys.lock)).toBe(second.token);
    expect(await admin.pttl(keys.lock)).toBe(-1);
    expect(CLAIM_MS).toBeGreaterThan(0);
  });

  it('refuses the old lease and every single attempt while the lock is handed over', async () => {
    const prefix = `handed-${randomUUID().slice(0, 8)}:`;
    const admin = target.admin();
    const keys = keysOf(prefix);
    const holder = target.create({ keyPrefix: prefix });
    const lease = (await holder.acquireLock('k', { leaseMs: LEASE_MS, waitMs: 0 })) as Lease;
    await queueGone(admin, prefix, LEASE_MS);
    await holder.releaseLock(lease);
    expect(await admin.get(keys.lock)).toBe('gone-token');
    expect(await holder.set('k', new TextEncoder().encode('stale'), { lease })).toBe('lease-lost');
    expect(await holder.delete('k', { lease })).toBe('lease-lost');
    expect(await holder.releaseLock(lease)).toBe(false);
    expect(await target.create({ keyPrefix: prefix }).acquireLock('k', { leaseMs: LEASE_MS, waitMs: 0 })).toBeUndefined();
    expect(await admin.exists(`${prefix}{k}`)).toBe(0);
    expect(await admin.get(keys.lock)).toBe('gone-token');
  });

  /**
   * A connection that records every message on `prefix`'s shared release channel and, with
   * `own`, on every backend's own channel (by pattern, which PUBLISH counts as a subscriber).
   */
  async function listen(prefix: string, own = true): Promise<{ shared: string[]; own: string[] }> {
    const [node] = await target.masters();
    const subscriber = (node as Redis).duplicate();
    const heard = { shared: [] as string[], own: [] as string[] };
    subscriber.on('message', (_channel: string, message: string) => heard.shared.push(message));
    subscriber.on('pmessage', (_pattern: string, _channel: string, message: string) => heard.own.push(message));
    await subscriber.subscribe(`${prefix}latchkey:released`);
    if (own) await subscriber.psubscribe(`${prefix}latchkey:released@*`);
    onTestFinished(() => void subscriber.disconnect());
    return heard;
  }

  it("tells only the backend it hands the lock to, on that backend's own channel", async () => {
    const prefix = `own-${randomUUID().slice(0, 8)}:`;
    const admin = target.admin();
    const heard = await listen(prefix);
    const holder = target.create({ keyPrefix: prefix });
    const lease = (await holder.acquireLock('k', { leaseMs: LEASE_MS, waitMs: 0 })) as Lease;
    const next = target.create({ keyPrefix: prefix });
    const waiting = next.acquireLock('k', { leaseMs: LEASE_MS, waitMs: 20_000 });
    await eventually('the next waiter queued', 5_000, async () => (await admin.hlen(keysOf(prefix).entries)) === 1);
    await holder.releaseLock(lease);
    const second = (await waiting) as Lease;
    await eventually('the hand-over heard', 5_000, () => Promise.resolve(heard.own.length > 0));
    expect(heard.own).toHaveLength(1);
    expect(heard.own[0]).toMatch(new RegExp(`^@[^/]+/${second.token}/${second.fencingToken}/\\d+ ${prefix}\\{k\\}$`));
    // On one server the backend's own channel had a subscriber, so nobody else was told. On
    // Cluster PUBLISH counts only the node's own subscribers: the shared channel may get a copy.
    if (target.name === 'standalone') expect(heard.shared).toEqual([]);
    else expect(heard.shared.length).toBeLessThanOrEqual(1);
  });

  it('tells the shared channel of a hand-over to a waiter nobody listens for on its own channel', async () => {
    const prefix = `shared-${randomUUID().slice(0, 8)}:`;
    const admin = target.admin();
    // As a backend that listens on the shared channel only would.
    const heard = await listen(prefix, false);
    const holder = target.create({ keyPrefix: prefix });
    const lease = (await holder.acquireLock('k', { leaseMs: LEASE_MS, waitMs: 0 })) as Lease;
    await queueGone(admin, prefix, LEASE_MS);
    await holder.releaseLock(lease);
    await eventually('the hand-over heard', 5_000, () => Promise.resolve(heard.shared.length > 0));
    expect(heard.shared).toHaveLength(1);
    expect(heard.shared[0]).toMatch(new RegExp(`^@gone/gone-token/\\d+/\\d+ ${prefix}\\{k\\}$`));
  });

  it('never queues a single attempt', async () => {
    const prefix = `once-${randomUUID().slice(0, 8)}:`;
    const admin = target.admin();
    const holder = target.create({ keyPrefix: prefix });
    await holder.acquireLock('k', { leaseMs: LEASE_MS, waitMs: 0 });
    expect(await target.create({ keyPrefix: prefix }).acquireLock('k', { leaseMs: LEASE_MS, waitMs: 0 })).toBeUndefined();
    expect(await admin.exists(keysOf(prefix).queue, keysOf(prefix).entries)).toBe(0);
  });
});
