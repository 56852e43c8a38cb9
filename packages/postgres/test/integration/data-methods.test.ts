import { BackendClosedError, BackendError, type Lease } from '@latchkey/core';
import { afterAll, describe, expect, it } from 'vitest';
import { KEYS_PAGE_SIZE } from '../../src/internal/sql.js';
import { PostgresBackend } from '../../src/index.js';
import { admin, closeAll, createBackend, postgresAvailable, postgresUrl, rowsOf, track, uniqueTable } from '../support/postgres.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (value: Uint8Array | undefined): string | undefined => (value === undefined ? undefined : new TextDecoder().decode(value));

async function listKeys(backend: PostgresBackend): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of backend.keys()) keys.push(key);
  return keys;
}

/** A second backend on `backend`'s table: another handle, as another process would have. */
function peerOf(backend: PostgresBackend): PostgresBackend {
  return track(new PostgresBackend({ url: postgresUrl as string, table: backend.table }));
}

describe.runIf(postgresAvailable('PostgresBackend optional data methods'))('PostgresBackend optional data methods', () => {
  afterAll(closeAll);

  describe('clear', () => {
    it('run by another handle while a lease is held: the holder still writes under it, fencing keeps increasing', async () => {
      const holder = createBackend();
      const other = peerOf(holder);
      const lease = (await holder.acquireLock('locked', { leaseMs: 60_000, waitMs: 0 })) as Lease;
      expect(await holder.set('locked', bytes('before'), { lease })).toBe('written');
      await holder.setMany([
        ['a', bytes('1')],
        ['b', bytes('2')],
      ]);
      await other.clear();
      expect(await holder.getMany(['a', 'b', 'locked'])).toEqual([undefined, undefined, undefined]);
      // The never-locked rows are gone; the locked row keeps its lease and fence, without a value.
      expect(await rowsOf(holder.table)).toMatchObject([
        { key: 'locked', value: null, expires_at: null, lock_token: lease.token, fence: '1' },
      ]);
      expect(await other.acquireLock('locked', { leaseMs: 60_000, waitMs: 0 }), 'an acquire by the other handle').toBeUndefined();
      expect(await holder.set('locked', bytes('after'), { lease })).toBe('written');
      expect(text(await other.get('locked'))).toBe('after');
      expect(await holder.releaseLock(lease)).toBe(true);
      const next = (await other.acquireLock('locked', { leaseMs: 60_000, waitMs: 0 })) as Lease;
      expect(next.fencingToken).toBe(lease.fencingToken + 1n);
      await other.releaseLock(next);
    });

    it('keeps the fence of a released lock, and leaves other tables alone', async () => {
      const backend = createBackend();
      const neighbour = createBackend();
      const first = (await backend.acquireLock('k', { leaseMs: 60_000, waitMs: 0 })) as Lease;
      await backend.set('k', bytes('v'), { lease: first });
      await backend.releaseLock(first);
      await neighbour.set('k', bytes('kept'));
      await backend.clear();
      expect(await backend.get('k')).toBeUndefined();
      expect(text(await neighbour.get('k'))).toBe('kept');
      const second = (await backend.acquireLock('k', { leaseMs: 60_000, waitMs: 0 })) as Lease;
      expect(second.fencingToken > first.fencingToken, `fencing ${second.fencingToken} after ${first.fencingToken}`).toBe(true);
      await backend.releaseLock(second);
    });

    it('never deadlocks with setMany and deleteMany locking the same rows', async () => {
      const backend = createBackend();
      const other = peerOf(backend);
      const keys = Array.from({ length: 200 }, (_, i) => `k${String(i).padStart(3, '0')}`);
      const reversed = [...keys].reverse();
      const rounds = Array.from({ length: 10 }, (_, round) =>
        Promise.all([
          round % 2 === 0 ? other.setMany(reversed.map((key) => [key, bytes('1')])) : other.deleteMany(reversed),
          backend.clear(),
        ]),
      );
      await expect(Promise.all(rounds)).resolves.toHaveLength(10);
    });
  });

  describe('keys', () => {
    it(`lists every live key once across pages of ${KEYS_PAGE_SIZE}, never a lock-only, deleted or expired one`, async () => {
      const backend = createBackend();
      const count = KEYS_PAGE_SIZE * 2 + 37;
      const stored = Array.from({ length: count }, (_, i) => `key-${String(i).padStart(5, '0')}`);
      await backend.setMany(stored.map((key) => [key, bytes(key)]));
      const lease = (await backend.acquireLock('lock-only', { leaseMs: 60_000, waitMs: 0 })) as Lease;
      await backend.set('deleted', bytes('x'));
      await backend.delete('deleted');
      await backend.set('expired', bytes('x'), { expiresAt: Date.now() - 1 });
      const listed = await listKeys(backend);
      expect(listed).toHaveLength(count);
      expect(listed).toEqual(stored);
      await backend.releaseLock(lease);
    });

    it('ends after a last page that is exactly full', async () => {
      const backend = createBackend();
      const stored = Array.from({ length: KEYS_PAGE_SIZE }, (_, i) => `k${String(i).padStart(4, '0')}`);
      await backend.setMany(stored.map((key) => [key, bytes('v')]));
      expect(await listKeys(backend)).toEqual(stored);
    });

    it('yields a key stored throughout even when keys before it are deleted between pages', async () => {
      const backend = createBackend();
      const stored = Array.from({ length: KEYS_PAGE_SIZE + 10 }, (_, i) => `k${String(i).padStart(4, '0')}`);
      await backend.setMany(stored.map((key) => [key, bytes('v')]));
      const listed: string[] = [];
      for await (const key of backend.keys()) {
        if (listed.length === 0) await backend.deleteMany(stored.slice(0, KEYS_PAGE_SIZE));
        listed.push(key);
      }
      // The first page was read before the delete; the second continues after its last key.
      expect(listed).toEqual(stored);
    });

    it('rejects next() with the mapped error when a page fails, and BackendClosedError after close', async () => {
      const missing = createBackend({ createTable: false });
      const error = await listKeys(missing).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(BackendError);
      expect((error as BackendError).cause).toMatchObject({ code: '42P01' });
      const backend = createBackend();
      await backend.setMany(Array.from({ length: KEYS_PAGE_SIZE + 1 }, (_, i) => [`k${i}`, bytes('v')]));
      const iterator = backend.keys()[Symbol.asyncIterator]();
      for (let i = 0; i < KEYS_PAGE_SIZE; i++) expect((await iterator.next()).done).toBe(false);
      await backend.close();
      await expect(iterator.next()).rejects.toBeInstanceOf(BackendClosedError);
    });
  });

  describe('has', () => {
    it("is false for a lock-only row and for a value expired on the server's clock", async () => {
      const backend = createBackend();
      const lease = (await backend.acquireLock('locked', { leaseMs: 60_000, waitMs: 0 })) as Lease;
      expect(await backend.has('locked')).toBe(false);
      await backend.set('short', bytes('v'), { expiresAt: Date.now() + 60_000 });
      expect(await backend.has('short')).toBe(true);
      // Move the expiry into the past on the server itself: has must read the server's clock.
      await admin().query(`UPDATE "${backend.table}" SET expires_at = clock_timestamp() - interval '1 second' WHERE key = 'short'`);
      expect(await backend.has('short')).toBe(false);
      await backend.releaseLock(lease);
    });
  });

  describe('compareAndSet', () => {
    it('leaves the lock of the key alone, and a lease-checked write after it still succeeds', async () => {
      const backend = createBackend();
      const other = peerOf(backend);
      const lease = (await backend.acquireLock('k', { leaseMs: 60_000, waitMs: 0 })) as Lease;
      expect(await backend.set('k', bytes('1'), { lease })).toBe('written');
      expect(await other.compareAndSet('k', bytes('1'), bytes('2'))).toBe(true);
      expect(await rowsOf(backend.table)).toMatchObject([{ key: 'k', value: Buffer.from('2'), lock_token: lease.token, fence: '1' }]);
      expect(await backend.set('k', bytes('3'), { lease })).toBe('written');
      expect(text(await other.get('k'))).toBe('3');
      await backend.releaseLock(lease);
    });

    it('is false for a lock-only row and an expired value, and matches an empty value', async () => {
      const backend = createBackend();
      const lease = (await backend.acquireLock('locked', { leaseMs: 60_000, waitMs: 0 })) as Lease;
      expect(await backend.compareAndSet('locked', new Uint8Array(0), bytes('x'))).toBe(false);
      await backend.set('expired', bytes('v'), { expiresAt: Date.now() - 1 });
      expect(await backend.compareAndSet('expired', bytes('v'), bytes('w'))).toBe(false);
      expect(await backend.get('expired')).toBeUndefined();
      await backend.set('empty', new Uint8Array(0));
      expect(await backend.compareAndSet('empty', new Uint8Array(0), bytes('full'), { expiresAt: Date.now() + 60_000 })).toBe(true);
      expect(text(await backend.get('empty'))).toBe('full');
      await backend.releaseLock(lease);
    });

    it('lets exactly one of many concurrent swaps from the same value win', async () => {
      const table = uniqueTable();
      const backends = [0, 1, 2, 3].map(() => createBackend({ table }));
      await backends[0]!.set('k', bytes('start'));
      const outcomes = await Promise.all(
        Array.from({ length: 20 }, (_, i) => backends[i % backends.length]!.compareAndSet('k', bytes('start'), bytes(`w${i}`))),
      );
      expect(outcomes.filter(Boolean)).toHaveLength(1);
      expect(text(await backends[0]!.get('k'))).toBe(`w${outcomes.indexOf(true)}`);
    });
  });
});
