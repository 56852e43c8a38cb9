import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { BackendClosedError, KeyValueStore, LockTimeoutError, ValidationError, type Lease } from '@latchkey/core';
import { MongoBackend, type MongoBackendOptions } from '../../src/index.js';
import {
  bytes,
  closeTestClient,
  createBackend,
  dropCollection,
  mongoAvailable,
  mongoUrl,
  rawCollection,
  text,
  TEST_DB,
} from './mongo-test-env.js';

const LEASE_MS = 400;

describe.runIf(mongoAvailable('MongoBackend locks'))('MongoBackend locks', () => {
  const backends: MongoBackend[] = [];
  const stores: KeyValueStore[] = [];
  function fresh(options: Partial<MongoBackendOptions> = {}): MongoBackend {
    const backend = createBackend(options);
    backends.push(backend);
    return backend;
  }
  /** A second backend, with a client of its own, on the same collection (another process, in effect). */
  function peer(of: MongoBackend, options: Partial<MongoBackendOptions> = {}): MongoBackend {
    const backend = new MongoBackend({
      url: mongoUrl as string,
      dbName: TEST_DB,
      collection: of.collection.collectionName,
      documentTtlIndex: false,
      ...options,
    } as MongoBackendOptions);
    backends.push(backend);
    return backend;
  }
  /** Connects the clients first, so a short lease is not spent on the connection handshake. */
  async function warm(...all: MongoBackend[]): Promise<void> {
    await Promise.all(all.map((backend) => backend.get('warm-up')));
  }
  async function acquire(backend: MongoBackend, key = 'k', leaseMs = LEASE_MS, waitMs = 0): Promise<Lease> {
    const lease = await backend.acquireLock(key, { leaseMs, waitMs });
    if (lease === undefined) throw new Error(`expected to win the lock on ${key}`);
    return lease;
  }

  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    const [first] = backends;
    if (first !== undefined) await dropCollection(first);
    for (const backend of backends.splice(0)) await backend.close();
  });
  afterAll(closeTestClient);

  describe('exclusion', () => {
    it('lets one holder have a key at a time, across clients', async () => {
      const a = fresh();
      const b = peer(a);
      const lease = await acquire(a, 'k', 10_000);
      expect(await a.acquireLock('k', { leaseMs: LEASE_MS, waitMs: 0 })).toBeUndefined();
      expect(await b.acquireLock('k', { leaseMs: LEASE_MS, waitMs: 0 })).toBeUndefined();
      expect(await a.releaseLock(lease)).toBe(true);
      expect(await b.acquireLock('k', { leaseMs: LEASE_MS, waitMs: 0 })).toBeDefined();
    });

    it('gives a fresh key to exactly one of many concurrent acquirers (the upsert race)', async () => {
      const a = fresh();
      const b = peer(a);
      for (let round = 0; round < 5; round++) {
        const key = `race-${round}`;
        const tries = await Promise.all([a, b, a, b, a, b].map((backend) => backend.acquireLock(key, { leaseMs: 10_000, waitMs: 0 })));
        expect(tries.filter((lease) => lease !== undefined)).toHaveLength(1);
      }
    });

    it('waits for the holder to let go and then takes the key', async () => {
      const a = fresh();
      const b = peer(a);
      const lease = await acquire(a, 'k', 10_000);
      const waiting = b.acquireLock('k', { leaseMs: 10_000, waitMs: 3000 });
      await sleep(100);
      await a.releaseLock(lease);
      const next = await waiting;
      expect(next).toBeDefined();
      expect(next!.fencingToken).toBeGreaterThan(lease.fencingToken);
    });

    it('resolves undefined once waitMs passes without the key', async () => {
      const a = fresh();
      await acquire(a, 'k', 10_000);
      const startedAt = performance.now();
      expect(await a.acquireLock('k', { leaseMs: 10_000, waitMs: 150 })).toBeUndefined();
      expect(performance.now() - startedAt).toBeGreaterThanOrEqual(145);
      expect(performance.now() - startedAt).toBeLessThan(1000);
    });

    it('serves waiters of one process in arrival order, waking the next at once on a release here', async () => {
      const a = fresh({ lockPollIntervalMs: 5000 });
      const holder = await acquire(a, 'k', 10_000);
      const order: number[] = [];
      const waits = [0, 1, 2].map((i) =>
        a.acquireLock('k', { leaseMs: 10_000, waitMs: 5000 }).then(async (lease) => {
          order.push(i);
          await a.releaseLock(lease!);
        }),
      );
      await sleep(50);
      const releasedAt = performance.now();
      await a.releaseLock(holder);
      await Promise.all(waits);
      expect(order).toEqual([0, 1, 2]);
      // Three hand-overs without a single 5 s poll pause.
      expect(performance.now() - releasedAt).toBeLessThan(2000);
    });
  });

  describe('lapse and takeover', () => {
    it('lets a lapsed lease be taken over with a greater fence, and refuses every call of the old holder', async () => {
      const a = fresh();
      const b = peer(a);
      await warm(a, b);
      const old = await acquire(a);
      await a.set('k', bytes('old'), { lease: old });
      await sleep(LEASE_MS + 50);
      const taker = await acquire(b, 'k', 10_000);
      expect(taker.fencingToken).toBeGreaterThan(old.fencingToken);
      expect(await a.set('k', bytes('stale'), { lease: old })).toBe('lease-lost');
      expect(await a.delete('k', { lease: old })).toBe('lease-lost');
      expect(await a.extendLock(old, 10_000)).toBe(false);
      expect(await a.releaseLock(old)).toBe(false);
      expect(text(await b.get('k'))).toBe('old');
      expect(await b.set('k', bytes('new'), { lease: taker })).toBe('written');
      expect(await a.acquireLock('k', { leaseMs: LEASE_MS, waitMs: 0 })).toBeUndefined();
    });

    it('refuses a write under a lapsed lease even when nobody took the key over (the server checks the time)', async () => {
      const a = fresh();
      await warm(a);
      const lease = await acquire(a, 'k', 150);
      await sleep(200);
      expect(await a.set('k', bytes('late'), { lease })).toBe('lease-lost');
      expect(await a.get('k')).toBeUndefined();
    });

    it('refuses a write after a takeover the client cannot know about (token changed on the server)', async () => {
      const a = fresh();
      const lease = await acquire(a, 'k', 10_000);
      await a.set('k', bytes('mine'), { lease });
      await rawCollection(a).updateOne({ _id: { $eq: 'k' } } as object, { $set: { 'lock.token': 'someone-else' } });
      expect(await a.set('k', bytes('stale'), { lease })).toBe('lease-lost');
      expect(await a.delete('k', { lease })).toBe('lease-lost');
      expect(text(await a.get('k'))).toBe('mine');
    });

    it('with leaseMs 0 the lease never lapses', async () => {
      const a = fresh();
      const lease = await acquire(a, 'k', 0);
      await sleep(LEASE_MS);
      expect(await a.acquireLock('k', { leaseMs: LEASE_MS, waitMs: 0 })).toBeUndefined();
      expect(await a.set('k', bytes('v'), { lease })).toBe('written');
      expect(await a.releaseLock(lease)).toBe(true);
    });
  });

  describe('release and extend', () => {
    it('release is owner-checked and tells whether the lease still held', async () => {
      const a = fresh();
      const lease = await acquire(a, 'k', 10_000);
      expect(await a.releaseLock(lease)).toBe(true);
      expect(await a.releaseLock(lease)).toBe(false);
      const other = await acquire(a, 'k', 10_000);
      expect(await a.releaseLock(lease)).toBe(false);
      expect(await a.acquireLock('k', { leaseMs: LEASE_MS, waitMs: 0 })).toBeUndefined();
      expect(await a.set('k', bytes('v'), { lease: other })).toBe('written');
    });

    it('extend keeps the lease past its first term', async () => {
      const a = fresh();
      await warm(a);
      const lease = await acquire(a);
      await sleep(LEASE_MS / 4);
      expect(await a.extendLock(lease, 2000)).toBe(true);
      await sleep(LEASE_MS);
      expect(await a.acquireLock('k', { leaseMs: LEASE_MS, waitMs: 0 })).toBeUndefined();
      expect(await a.set('k', bytes('v'), { lease })).toBe('written');
    });

    it('extend of a released lease resolves false', async () => {
      const a = fresh();
      const lease = await acquire(a);
      await a.releaseLock(lease);
      expect(await a.extendLock(lease, 1000)).toBe(false);
    });
  });

  describe('abort', () => {
    it('rejects a waiting acquire with signal.reason promptly and leaves no lock behind', async () => {
      const a = fresh();
      const b = peer(a);
      const holder = await acquire(a, 'k', 10_000);
      const controller = new AbortController();
      const reason = new Error('give up');
      const waiting = b.acquireLock('k', { leaseMs: 10_000, waitMs: 5000, signal: controller.signal });
      await sleep(50);
      const abortedAt = performance.now();
      controller.abort(reason);
      await expect(waiting).rejects.toBe(reason);
      expect(performance.now() - abortedAt).toBeLessThan(100);
      await a.releaseLock(holder);
      expect(await b.acquireLock('k', { leaseMs: LEASE_MS, waitMs: 0 })).toBeDefined();
    });

    it('keeps a 30-day wait on a held key pending (no timer fires early)', async () => {
      const a = fresh();
      await acquire(a, 'k', 60_000);
      const controller = new AbortController();
      let outcome = 'pending';
      const waiting = a.acquireLock('k', { leaseMs: 10_000, waitMs: 30 * 24 * 3600 * 1000, signal: controller.signal }).then(
        (lease) => (outcome = lease === undefined ? 'gave up' : 'won'),
        (error: unknown) => (outcome = `rejected: ${String(error)}`),
      );
      await sleep(1000);
      expect(outcome).toBe('pending');
      controller.abort(new Error('done waiting'));
      await waiting;
      expect(outcome).toBe('rejected: Error: done waiting');
    });
  });

  describe('close', () => {
    it('rejects a waiting acquire with BackendClosedError', async () => {
      const a = fresh();
      const b = peer(a);
      await acquire(a, 'k', 10_000);
      const waiting = b.acquireLock('k', { leaseMs: 10_000, waitMs: 5000 }).then(
        (lease) => `resolved ${String(lease)}`,
        (error: unknown) => error,
      );
      await sleep(30);
      await b.close();
      expect(await waiting).toBeInstanceOf(BackendClosedError);
    });

    it('gives back the leases this backend holds, so another client takes them at once', async () => {
      const a = fresh();
      const b = peer(a);
      await warm(a, b);
      const lasting = await acquire(a, 'k', 60_000);
      const endless = await acquire(a, 'forever', 0);
      expect(await b.acquireLock('k', { leaseMs: LEASE_MS, waitMs: 0 })).toBeUndefined();
      await a.close();
      const taken = await Promise.all(['k', 'forever'].map((key) => b.acquireLock(key, { leaseMs: LEASE_MS, waitMs: 0 })));
      expect(taken.map((lease) => lease !== undefined)).toEqual([true, true]);
      expect(taken[0]!.fencingToken).toBeGreaterThan(lasting.fencingToken);
      expect(taken[1]!.fencingToken).toBeGreaterThan(endless.fencingToken);
    });

    it('rejects every call made after close started with BackendClosedError, sending nothing', async () => {
      const a = fresh();
      const lease = await acquire(a, 'k', 10_000);
      const closing = a.close();
      const calls: Record<string, () => Promise<unknown>> = {
        get: () => a.get('k'),
        getMany: () => a.getMany(['k']),
        set: () => a.set('k', bytes('v')),
        'set with a lease': () => a.set('k', bytes('v'), { lease }),
        setMany: () => a.setMany([['k', bytes('v')]]),
        delete: () => a.delete('k'),
        deleteMany: () => a.deleteMany(['k']),
        acquireLock: () => a.acquireLock('other', { leaseMs: 1000, waitMs: 0 }),
        releaseLock: () => a.releaseLock(lease),
        extendLock: () => a.extendLock(lease, 1000),
        purgeExpired: () => a.purgeExpired(),
      };
      const during = await Promise.allSettled(Object.values(calls).map((call) => call()));
      await closing;
      const after = await Promise.allSettled(Object.values(calls).map((call) => call()));
      const names = Object.keys(calls);
      for (const [when, outcomes] of [
        ['during close', during],
        ['after close', after],
      ] as const) {
        outcomes.forEach((outcome, i) => {
          const reason = outcome.status === 'rejected' ? (outcome.reason as unknown) : `resolved ${String(outcome.value)}`;
          expect(reason, `${names[i]} ${when}`).toBeInstanceOf(BackendClosedError);
        });
      }
      // Nothing was written: only the give-back of the held lease reached the server.
      expect(await rawCollection(a).findOne({ _id: 'k' } as object)).toMatchObject({ fence: expect.anything() });
      expect(await rawCollection(a).findOne({ _id: 'k', v: { $exists: true } } as object)).toBeNull();
    });
  });

  describe('malformed leases', () => {
    it.each([
      ['an empty object', {}],
      ['null', null],
      ['a lease without a fencing token', { key: 'k', token: 't' }],
      ['a lease with an empty token', { key: 'k', token: '', fencingToken: 1n }],
    ])('rejects %s with ValidationError in releaseLock, extendLock, set and delete', async (_name, malformed) => {
      const a = fresh();
      const lease = malformed as unknown as Lease;
      await expect(a.releaseLock(lease)).rejects.toBeInstanceOf(ValidationError);
      await expect(a.extendLock(lease, 1000)).rejects.toBeInstanceOf(ValidationError);
      await expect(a.set('k', bytes('v'), { lease })).rejects.toBeInstanceOf(ValidationError);
      await expect(a.delete('k', { lease })).rejects.toBeInstanceOf(ValidationError);
    });

    it('answers lease-lost for a lease of another key, writing nothing', async () => {
      const a = fresh();
      const lease = await acquire(a, 'mine', 10_000);
      await a.set('other', bytes('before'));
      expect(await a.set('other', bytes('after'), { lease })).toBe('lease-lost');
      expect(await a.delete('other', { lease })).toBe('lease-lost');
      expect(text(await a.get('other'))).toBe('before');
    });
  });

  describe('fencing', () => {
    it('grows with every acquire of a key: after release, lapse, data deletes and across clients', async () => {
      const a = fresh();
      const b = peer(a);
      await warm(a, b);
      const tokens: bigint[] = [];
      let lease = await acquire(a);
      tokens.push(lease.fencingToken);
      await a.set('k', bytes('v'), { lease });
      await a.releaseLock(lease);
      lease = await acquire(b);
      tokens.push(lease.fencingToken);
      await sleep(LEASE_MS + 50);
      lease = await acquire(a);
      tokens.push(lease.fencingToken);
      await a.delete('k');
      await a.deleteMany(['k']);
      await a.releaseLock(lease);
      lease = await acquire(b);
      tokens.push(lease.fencingToken);
      expect(tokens).toEqual([...tokens].sort((x, y) => (x < y ? -1 : 1)));
      expect(new Set(tokens).size).toBe(tokens.length);
    });
  });

  describe('through KeyValueStore', () => {
    it('a lock lost on the server (the collection dropped while held) makes the next locked write fail with LockTimeoutError', async () => {
      const a = fresh();
      const store = new KeyValueStore('mongo-dropped');
      stores.push(store);
      await store.configure(a, { lockTimeoutMs: 10_000 });
      const lock = await store.getLock('k').acquire();
      await store.set('k', 'before', { lock });
      await rawCollection(a).drop();
      await expect(store.set('k', 'after', { lock })).rejects.toBeInstanceOf(LockTimeoutError);
      expect(lock.signal.aborted).toBe(true);
      await expect(store.get('k')).rejects.toThrow('Could not find');
      await lock.release();
      const again = await store.getLock('k').acquire({ waitMs: 0 });
      expect(again.fencingToken).toBeDefined();
    });

    it('getOrCreate runs the creator once across two clients', async () => {
      const a = fresh();
      const b = peer(a);
      const one = new KeyValueStore('mongo-goc-1');
      const two = new KeyValueStore('mongo-goc-2');
      stores.push(one, two);
      await one.configure(a, { lockTimeoutMs: 5000 });
      await two.configure(b, { lockTimeoutMs: 5000 });
      let runs = 0;
      const creator = async (): Promise<string> => {
        runs++;
        await sleep(100);
        return 'made';
      };
      const results = await Promise.all([one.getOrCreate('k', creator), two.getOrCreate('k', creator), one.getOrCreate('k', creator)]);
      expect(results).toEqual(['made', 'made', 'made']);
      expect(runs).toBe(1);
    });
  });
});
