import { BackendClosedError, getKeyValueStore, InvalidKeyError, LockTimeoutError, ValidationError, type Lease } from '@latchkey/core';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../../src/index.js';

const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('MemoryBackend', () => {
  let backend = new MemoryBackend();
  afterEach(async () => {
    await backend.close();
    backend = new MemoryBackend();
  });

  describe('values', () => {
    it('isolates stored bytes from the buffers passed in and handed out', async () => {
      const input = bytes(1, 2, 3);
      await backend.set('k', input);
      input[0] = 9;
      const output = (await backend.get('k')) as Uint8Array;
      output[1] = 9;
      expect([...((await backend.get('k')) as Uint8Array)]).toStrictEqual([1, 2, 3]);
    });

    it('answers getMany in input order with undefined for missing keys', async () => {
      await backend.setMany([
        ['a', bytes(1)],
        ['b', bytes(2)],
      ]);
      const found = await backend.getMany(['b', 'x', 'a', 'b']);
      expect(found.map((value) => value?.[0])).toStrictEqual([2, undefined, 1, 2]);
    });

    it('reports whether delete found the key', async () => {
      await backend.set('k', bytes(1));
      expect(await backend.delete('k')).toBe('deleted');
      expect(await backend.delete('k')).toBe('missing');
    });

    it('expires values at their absolute expiry', async () => {
      await backend.set('k', bytes(1), { expiresAt: Date.now() + 30 });
      expect(await backend.get('k')).toBeDefined();
      await sleep(40);
      expect(await backend.get('k')).toBeUndefined();
      expect(await backend.delete('k')).toBe('missing');
    });

    it('rejects empty and non-string keys with InvalidKeyError', async () => {
      await expect(backend.get('')).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(backend.set(1 as never, bytes(1))).rejects.toBeInstanceOf(InvalidKeyError);
    });
  });

  describe('maxEntries', () => {
    it('drops the least recently used entry first', async () => {
      backend = new MemoryBackend({ maxEntries: 2 });
      await backend.set('a', bytes(1));
      await backend.set('b', bytes(2));
      await backend.get('a');
      await backend.set('c', bytes(3));
      expect(await backend.get('b')).toBeUndefined();
      expect(await backend.get('a')).toBeDefined();
      expect(await backend.get('c')).toBeDefined();
      expect(backend.size).toBe(2);
      expect(backend.capabilities.mayEvict).toBe(true);
    });

    it.each([0, -1, 1.5, NaN])('rejects maxEntries %s with ValidationError', (maxEntries) => {
      expect(() => new MemoryBackend({ maxEntries })).toThrow(ValidationError);
    });
  });

  describe('lease-conditional writes', () => {
    it('writes while the lease holds and refuses after takeover', async () => {
      const first = (await backend.acquireLock('k', { leaseMs: 20, waitMs: 0 })) as Lease;
      expect(await backend.set('k', bytes(1), { lease: first })).toBe('written');
      await sleep(30);
      const second = (await backend.acquireLock('k', { leaseMs: 1000, waitMs: 0 })) as Lease;
      expect(second.fencingToken > first.fencingToken).toBe(true);
      expect(await backend.set('k', bytes(2), { lease: first })).toBe('lease-lost');
      expect(await backend.delete('k', { lease: first })).toBe('lease-lost');
      expect((await backend.get('k'))?.[0]).toBe(1);
      expect(await backend.releaseLock(first)).toBe(false);
      expect(await backend.releaseLock(second)).toBe(true);
    });

    it('refuses a lease for another key', async () => {
      const lease = (await backend.acquireLock('a', { leaseMs: 1000, waitMs: 0 })) as Lease;
      expect(await backend.set('b', bytes(1), { lease })).toBe('lease-lost');
    });

    it('loses every lease on flush, so the next locked write through a store fails', async () => {
      const store = getKeyValueStore(`memory-flush-${process.pid}`);
      await store.configure(backend);
      const lock = await store.getLock('k').acquire();
      backend.flush();
      await expect(store.set('k', 1, { lock })).rejects.toBeInstanceOf(LockTimeoutError);
      expect(lock.signal.aborted).toBe(true);
      await store.close();
    });
  });

  describe('malformed leases', () => {
    it('rejects a value that is not a lease with ValidationError, in every lease-taking method', async () => {
      const notALease = {} as Lease;
      await expect(backend.releaseLock(notALease)).rejects.toBeInstanceOf(ValidationError);
      await expect(backend.extendLock(notALease, 1000)).rejects.toBeInstanceOf(ValidationError);
      await expect(backend.set('k', bytes(1), { lease: notALease })).rejects.toBeInstanceOf(ValidationError);
      await expect(backend.delete('k', { lease: notALease })).rejects.toBeInstanceOf(ValidationError);
      expect(await backend.get('k')).toBeUndefined();
    });
  });

  describe('close', () => {
    it('rejects every call after close with BackendClosedError', async () => {
      await backend.close();
      const lease: Lease = { key: 'k', token: 't', fencingToken: 1n };
      const calls: Promise<unknown>[] = [
        backend.get('k'),
        backend.getMany(['k']),
        backend.set('k', bytes(1)),
        backend.setMany([['k', bytes(1)]]),
        backend.delete('k'),
        backend.deleteMany(['k']),
        backend.acquireLock('k', { leaseMs: 0, waitMs: 0 }),
        backend.releaseLock(lease),
        backend.extendLock(lease, 1000),
      ];
      for (const call of calls) await expect(call).rejects.toBeInstanceOf(BackendClosedError);
      await expect(backend.close()).resolves.toBeUndefined();
    });

    it('rejects a waiter interrupted by close with BackendClosedError', async () => {
      await backend.acquireLock('k', { leaseMs: 0, waitMs: 0 });
      const waiting = backend.acquireLock('k', { leaseMs: 0, waitMs: 5000 });
      await backend.close();
      await expect(waiting).rejects.toBeInstanceOf(BackendClosedError);
    });
  });
});
