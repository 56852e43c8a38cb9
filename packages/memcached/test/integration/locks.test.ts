import { BackendClosedError, ValidationError, type Lease } from '@latchkey/core';
import { Client } from 'memjs';
import { afterEach, describe, expect, it } from 'vitest';
import { MemcachedBackend } from '../../src/index.js';
import { ServerChannel } from '../../src/internal/channel.js';
import type { MemjsServer } from '../../src/internal/memjs-internals.js';
import { requests, Status, type Reply } from '../../src/internal/protocol.js';
import { backendOn, bytes, rawClients, sleep, targets, text } from '../support/targets.js';

describe.each(targets('MemcachedBackend locks'))('MemcachedBackend locks on $name', (target) => {
  const opened: MemcachedBackend[] = [];
  /** A backend; `peerOf` gives a second client on the same servers and prefix. */
  const open = (peerOf?: MemcachedBackend): MemcachedBackend => {
    const backend =
      peerOf === undefined ? backendOn(target) : new MemcachedBackend({ servers: target.servers, keyPrefix: peerOf.keyPrefix });
    opened.push(backend);
    return backend;
  };
  const acquire = async (backend: MemcachedBackend, key: string, leaseMs = 5000, waitMs = 0): Promise<Lease> => {
    const lease = await backend.acquireLock(key, { leaseMs, waitMs });
    expect(lease).toBeDefined();
    return lease as Lease;
  };
  /** Runs `fn` on a raw memjs client connected to the server that holds `key`. */
  const onServerOf = async <T>(backend: MemcachedBackend, key: string, fn: (client: Client) => Promise<T>): Promise<T> => {
    const raw = rawClients(target.servers);
    try {
      return await fn(raw.get(backend.serverFor(key)) as Client);
    } finally {
      for (const client of raw.values()) client.close();
    }
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((backend) => backend.close()));
  });

  describe('exclusion', () => {
    it('lets one holder at a time run a read-modify-write, across clients', async () => {
      const first = open();
      const clients = [first, open(first), open(first)];
      let inside = 0;
      let overlaps = 0;
      const worker = async (backend: MemcachedBackend): Promise<void> => {
        for (let i = 0; i < 5; i++) {
          const lease = await acquire(backend, 'counter', 5000, 10_000);
          inside += 1;
          if (inside > 1) overlaps += 1;
          const current = Number(text(await backend.get('counter')) ?? '0');
          await sleep(2);
          expect(await backend.set('counter', bytes(String(current + 1)), { lease })).toBe('written');
          inside -= 1;
          expect(await backend.releaseLock(lease)).toBe(true);
        }
      };
      await Promise.all(clients.flatMap((backend) => [worker(backend), worker(backend)]));
      expect(overlaps).toBe(0);
      expect(text(await first.get('counter'))).toBe('30');
    });

    it('refuses a second holder while the lease is held, and tryAcquire does not wait', async () => {
      const backend = open();
      const lease = await acquire(backend, 'k');
      const startedAt = performance.now();
      expect(await open(backend).acquireLock('k', { leaseMs: 5000, waitMs: 0 })).toBeUndefined();
      expect(performance.now() - startedAt).toBeLessThan(200);
      expect(await backend.releaseLock(lease)).toBe(true);
      expect(await open(backend).acquireLock('k', { leaseMs: 5000, waitMs: 0 })).toBeDefined();
    });

    it('gives a waiter in this process the key right after a release', async () => {
      const backend = open();
      const lease = await acquire(backend, 'k');
      const waiting = backend.acquireLock('k', { leaseMs: 5000, waitMs: 5000 });
      await sleep(400);
      const releasedAt = performance.now();
      await backend.releaseLock(lease);
      expect(await waiting).toBeDefined();
      // Well under the 100 ms the poll would have paused (one round trip to take the lock).
      expect(performance.now() - releasedAt).toBeLessThan(90);
    });

    it('gives a waiter in another client the key within its longest poll pause', async () => {
      const backend = open();
      const lease = await acquire(backend, 'k');
      const waiting = open(backend).acquireLock('k', { leaseMs: 5000, waitMs: 5000 });
      await sleep(600);
      const releasedAt = performance.now();
      await backend.releaseLock(lease);
      expect(await waiting).toBeDefined();
      expect(performance.now() - releasedAt).toBeLessThan(100 + 150);
    });
  });

  describe('lapse and abort', () => {
    it('keeps a 2 s lease for its 2 s and lets it lapse within the next two seconds', async () => {
      const backend = open();
      const lease = await acquire(backend, 'k', 2000);
      const peer = open(backend);
      await sleep(1700);
      const blocked = await peer.acquireLock('k', { leaseMs: 2000, waitMs: 0 });
      const written = await backend.set('k', bytes('mine'), { lease });
      // On a machine stalled past the lease itself nothing is promised; otherwise it held.
      if (performance.now() - (lease.acquiredAt as number) < 2000) {
        expect(blocked).toBeUndefined();
        expect(written).toBe('written');
      }
      const taken = await peer.acquireLock('k', { leaseMs: 2000, waitMs: 2500 });
      expect(taken).toBeDefined();
      expect(await backend.set('k', bytes('stale'), { lease })).toBe('lease-lost');
      expect(await backend.releaseLock(lease)).toBe(false);
      expect(await backend.extendLock(lease, 2000)).toBe(false);
      expect(await peer.acquireLock('k', { leaseMs: 2000, waitMs: 0 })).toBeUndefined();
      expect(text(await backend.get('k'))).toBe(written === 'written' ? 'mine' : undefined);
    });

    it('rejects an aborted wait promptly with the reason and leaves no lock behind', async () => {
      const backend = open();
      const lease = await acquire(backend, 'k');
      const controller = new AbortController();
      const waiting = open(backend).acquireLock('k', { leaseMs: 5000, waitMs: 10_000, signal: controller.signal });
      await sleep(150);
      const reason = new Error('caller gave up');
      const abortedAt = performance.now();
      controller.abort(reason);
      await expect(waiting).rejects.toBe(reason);
      // Promptly: no server round trip or poll pause in between (loose bound for busy machines).
      expect(performance.now() - abortedAt).toBeLessThan(150);
      await backend.releaseLock(lease);
      await sleep(150);
      expect(await open(backend).acquireLock('k', { leaseMs: 5000, waitMs: 0 })).toBeDefined();
    });
  });

  describe('long waits', () => {
    it("keeps a 30-day wait on a held key waiting (timers beyond setTimeout's range do not fire early)", async () => {
      const backend = open();
      const lease = await acquire(backend, 'k');
      const waiter = open(backend);
      let settled = false;
      const waiting = waiter.acquireLock('k', { leaseMs: 5000, waitMs: 30 * 24 * 60 * 60 * 1000 }).finally(() => {
        settled = true;
      });
      await sleep(1000);
      expect(settled).toBe(false);
      await backend.releaseLock(lease);
      expect(await waiting).toBeDefined();
    });
  });

  describe('close', () => {
    it('gives back the leases it holds, so another client takes them at once', async () => {
      const backend = open();
      const peer = open(backend);
      await acquire(backend, 'k', 60_000);
      await acquire(backend, 'forever', 0);
      await backend.close();
      expect(await peer.acquireLock('k', { leaseMs: 5000, waitMs: 0 })).toBeDefined();
      expect(await peer.acquireLock('forever', { leaseMs: 5000, waitMs: 0 })).toBeDefined();
    });

    it('gives back a lease won by an attempt already on its way when close began', async () => {
      const backend = open();
      const peer = open(backend);
      const refused = expect(backend.acquireLock('k', { leaseMs: 60_000, waitMs: 0 })).rejects.toBeInstanceOf(BackendClosedError);
      await backend.close();
      await refused;
      expect(await peer.acquireLock('k', { leaseMs: 5000, waitMs: 0 })).toBeDefined();
    });

    it('rejects a waiter it interrupts with BackendClosedError', async () => {
      const backend = open();
      await acquire(open(backend), 'k');
      const refused = expect(backend.acquireLock('k', { leaseMs: 5000, waitMs: 10_000 })).rejects.toBeInstanceOf(BackendClosedError);
      await sleep(50);
      await backend.close();
      await refused;
    });

    it('rejects every call made after it with BackendClosedError', async () => {
      const backend = open();
      const lease = await acquire(backend, 'k');
      await backend.close();
      const calls: [string, () => Promise<unknown>][] = [
        ['get', () => backend.get('k')],
        ['getMany', () => backend.getMany(['k'])],
        ['set', () => backend.set('k', bytes('v'))],
        ['setMany', () => backend.setMany([['k', bytes('v')]])],
        ['delete', () => backend.delete('k')],
        ['deleteMany', () => backend.deleteMany(['k'])],
        ['acquireLock', () => backend.acquireLock('other', { leaseMs: 5000, waitMs: 0 })],
        ['releaseLock', () => backend.releaseLock(lease)],
        ['extendLock', () => backend.extendLock(lease, 5000)],
      ];
      for (const [name, call] of calls) await expect(call(), name).rejects.toBeInstanceOf(BackendClosedError);
    });
  });

  describe('malformed leases', () => {
    it('rejects a malformed lease with ValidationError in releaseLock, extendLock, set and delete', async () => {
      const backend = open();
      await acquire(backend, 'k');
      for (const lease of [{}, { key: 'k', token: '', fencingToken: 1n }, { key: 'k', token: 't', fencingToken: 1 }, null]) {
        const bad = lease as unknown as Lease;
        await expect(backend.releaseLock(bad)).rejects.toBeInstanceOf(ValidationError);
        await expect(backend.extendLock(bad, 5000)).rejects.toBeInstanceOf(ValidationError);
        await expect(backend.set('k', bytes('v'), { lease: bad })).rejects.toBeInstanceOf(ValidationError);
        await expect(backend.delete('k', { lease: bad })).rejects.toBeInstanceOf(ValidationError);
      }
      expect(await backend.get('k')).toBeUndefined();
    });
  });

  describe('owner checks', () => {
    it('never releases or extends a lock another holder took over', async () => {
      const backend = open();
      const lease = await acquire(backend, 'k');
      // The lock item vanishes (evicted) and someone else takes the key.
      await onServerOf(backend, 'k', (raw) => raw.delete(`${backend.keyPrefix}~lk`));
      const peer = open(backend);
      const taken = await acquire(peer, 'k');
      expect(await backend.releaseLock(lease)).toBe(false);
      expect(await backend.extendLock(lease, 5000)).toBe(false);
      expect(await open(backend).acquireLock('k', { leaseMs: 5000, waitMs: 0 })).toBeUndefined();
      expect(await peer.set('k', bytes('theirs'), { lease: taken })).toBe('written');
    });

    it('releases after a concurrent extend moved the lock item on', async () => {
      const backend = open();
      const lease = await acquire(backend, 'k');
      const [extended, released] = await Promise.all([backend.extendLock(lease, 5000), backend.releaseLock(lease)]);
      expect(released).toBe(true);
      expect(typeof extended).toBe('boolean');
      expect(await open(backend).acquireLock('k', { leaseMs: 5000, waitMs: 0 })).toBeDefined();
    });

    it('accepts a lease handed over to another client of the same servers', async () => {
      const backend = open();
      const lease = await acquire(backend, 'k');
      const peer = open(backend);
      const copy: Lease = { key: lease.key, token: lease.token, fencingToken: lease.fencingToken };
      expect(await peer.set('k', bytes('via peer'), { lease: copy })).toBe('written');
      expect(await peer.extendLock(copy, 5000)).toBe(true);
      expect(await peer.releaseLock(copy)).toBe(true);
    });
  });

  describe('fencing', () => {
    it('hands out strictly increasing fencing tokens, per key and across clients', async () => {
      const backend = open();
      const tokens: bigint[] = [];
      for (const client of [backend, open(backend), backend]) {
        const lease = await acquire(client, 'k');
        tokens.push(lease.fencingToken);
        await client.releaseLock(lease);
      }
      expect(tokens[1]).toBeGreaterThan(tokens[0] as bigint);
      expect(tokens[2]).toBeGreaterThan(tokens[1] as bigint);
    });

    it('keeps tokens increasing when the fence counter is lost (it restarts from the clock)', async () => {
      const backend = open();
      const first = await acquire(backend, 'k');
      await backend.releaseLock(first);
      await onServerOf(backend, 'k', (raw) => raw.delete(`${backend.keyPrefix}~fence`));
      const second = await acquire(backend, 'k');
      expect(second.fencingToken).toBeGreaterThan(first.fencingToken);
    });
  });

  describe('CAS-fenced writes', () => {
    it('refuses the writes of a holder whose lock item was evicted and whose key another holder took', async () => {
      const backend = open();
      const stale = await acquire(backend, 'k');
      await backend.set('k', bytes('v1'), { lease: stale });
      await onServerOf(backend, 'k', (raw) => raw.delete(`${backend.keyPrefix}~lk`));
      const peer = open(backend);
      const current = await acquire(peer, 'k');
      expect(await backend.set('k', bytes('stale'), { lease: stale })).toBe('lease-lost');
      expect(await backend.delete('k', { lease: stale })).toBe('lease-lost');
      expect(await peer.set('k', bytes('v2'), { lease: current })).toBe('written');
      expect(text(await backend.get('k'))).toBe('v2');
    });

    it('makes a CAS read before a later acquire useless after it (the acquire bumps the CAS)', async () => {
      const backend = open();
      await backend.set('present', bytes('v0'));
      const raw = Client.create(target.servers, { logger: { log: () => undefined } });
      const channelOf = (key: string): ServerChannel => {
        const index = backend.servers.indexOf(backend.serverFor(key));
        return new ServerChannel(raw.servers[index] as unknown as MemjsServer, () => (raw.incrSeq(), raw.seq >>> 0), 2000);
      };
      try {
        // What a holder's locked write reads first: the data item's CAS (or that it is missing).
        const [read] = (await channelOf('present').send([requests.get(`${backend.keyPrefix}present`)])) as [Reply];
        const [missing] = (await channelOf('absent').send([requests.get(`${backend.keyPrefix}absent`)])) as [Reply];
        expect(missing.status).toBe(Status.notFound);
        // Another holder acquires in between.
        await acquire(open(backend), 'present');
        await acquire(open(backend), 'absent');
        // The holder's write with what it read is refused by the server.
        const [late] = (await channelOf('present').send([requests.set(`${backend.keyPrefix}present`, bytes('stale'), 0, 0, read.cas)])) as [
          Reply,
        ];
        const [lateAdd] = (await channelOf('absent').send([requests.add(`${backend.keyPrefix}absent`, bytes('stale'), 0, 0)])) as [Reply];
        expect(late.status).toBe(Status.exists);
        expect(lateAdd.status).toBe(Status.exists);
        expect(text(await backend.get('present'))).toBe('v0');
        expect(await backend.get('absent')).toBeUndefined();
      } finally {
        raw.close();
      }
    });

    it('refuses a locked write after the lock item was evicted, and writes nothing', async () => {
      const backend = open();
      const lease = await acquire(backend, 'k');
      await backend.set('k', bytes('kept'), { lease });
      await onServerOf(backend, 'k', (raw) => raw.delete(`${backend.keyPrefix}~lk`));
      expect(await backend.set('k', bytes('lost'), { lease })).toBe('lease-lost');
      expect(await backend.delete('k', { lease })).toBe('lease-lost');
      expect(text(await backend.get('k'))).toBe('kept');
    });

    it('still writes under a held lease after the data item was evicted', async () => {
      const backend = open();
      const lease = await acquire(backend, 'k');
      await backend.set('k', bytes('v1'), { lease });
      await onServerOf(backend, 'k', (raw) => raw.delete(`${backend.keyPrefix}k`));
      expect(await backend.set('k', bytes('v2'), { lease })).toBe('written');
      expect(text(await backend.get('k'))).toBe('v2');
    });

    it('lets the holder write after a write made without the lock (locks are advisory)', async () => {
      const backend = open();
      const lease = await acquire(backend, 'k');
      await open(backend).set('k', bytes('unlocked'));
      expect(await backend.set('k', bytes('locked'), { lease })).toBe('written');
      expect(text(await backend.get('k'))).toBe('locked');
    });

    it('reports a locked delete of a missing (placeholder) key as missing and of a value as deleted', async () => {
      const backend = open();
      const lease = await acquire(backend, 'k');
      expect(await backend.delete('k', { lease })).toBe('missing');
      await backend.set('k', bytes('v'), { lease });
      expect(await backend.delete('k', { lease })).toBe('deleted');
      expect(await backend.get('k')).toBeUndefined();
      expect(await backend.set('k', bytes('again'), { lease })).toBe('written');
    });

    it('removes the key for a locked write whose expiry has passed', async () => {
      const backend = open();
      const lease = await acquire(backend, 'k');
      await backend.set('k', bytes('v'), { lease });
      expect(await backend.set('k', bytes('gone'), { lease, expiresAt: Date.now() - 1 })).toBe('written');
      expect(await backend.get('k')).toBeUndefined();
    });

    it('refuses a lease for another key', async () => {
      const backend = open();
      const lease = await acquire(backend, 'k');
      expect(await backend.set('other', bytes('v'), { lease })).toBe('lease-lost');
      expect(await backend.get('other')).toBeUndefined();
    });
  });
});
