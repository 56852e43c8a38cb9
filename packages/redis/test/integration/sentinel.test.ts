import { randomUUID } from 'node:crypto';
import { KeyValueStore, type Lease } from '@latchkey/core';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { requireService } from '@latchkey/test-servers';
import { RedisBackend } from '../../src/index.js';

const sentinels = inject('redisSentinels');
const name = inject('redisSentinelMasterName');

describe.runIf(requireService('RedisBackend through Sentinel', sentinels, inject('redisSentinelUnavailable')))(
  'RedisBackend through Sentinel',
  () => {
    const backends: RedisBackend[] = [];
    const make = (keyPrefix: string): RedisBackend => {
      const backend = new RedisBackend({
        sentinel: {
          sentinels: (sentinels ?? []).map((address) => ({
            host: address.slice(0, address.lastIndexOf(':')),
            port: Number(address.slice(address.lastIndexOf(':') + 1)),
          })),
          name: name ?? 'latchkey',
        },
        keyPrefix,
      });
      backends.push(backend);
      return backend;
    };

    afterAll(async () => {
      await Promise.all(backends.map((backend) => backend.close()));
    });

    it('finds the master through the Sentinel and stores and reads values', async () => {
      const backend = make(`sent-${randomUUID().slice(0, 8)}:`);
      expect(await backend.set('k', Uint8Array.of(1, 2, 3), { expiresAt: Date.now() + 60_000 })).toBe('written');
      expect(Array.from((await backend.get('k')) ?? [])).toEqual([1, 2, 3]);
      expect(await backend.getMany(['k', 'missing'])).toHaveLength(2);
    });

    it('locks across two backends, waking the waiter on release', async () => {
      const prefix = `sent-${randomUUID().slice(0, 8)}:`;
      const holder = make(prefix);
      const waiter = make(prefix);
      const lease = (await holder.acquireLock('k', { leaseMs: 10_000, waitMs: 0 })) as Lease;
      const waiting = waiter.acquireLock('k', { leaseMs: 10_000, waitMs: 5_000 });
      await new Promise((resolve) => setTimeout(resolve, 30));
      const releasedAt = performance.now();
      expect(await holder.releaseLock(lease)).toBe(true);
      const next = (await waiting) as Lease;
      expect(performance.now() - releasedAt).toBeLessThan(1_000);
      expect(next.fencingToken).toBeGreaterThan(lease.fencingToken);
      expect(await waiter.set('k', Uint8Array.of(9), { lease: next })).toBe('written');
      expect(await holder.set('k', Uint8Array.of(8), { lease })).toBe('lease-lost');
    });

    it('serves a KeyValueStore with locked increments', async () => {
      const store = new KeyValueStore('sentinel-store');
      await store.configure(make(`sent-${randomUUID().slice(0, 8)}:`), { lockTimeoutMs: 5_000 });
      await store.set('n', 0);
      await Promise.all(
        Array.from({ length: 16 }, () =>
          store.withLock('n', async (lock) => {
            await store.set('n', (await store.get<number>('n')) + 1, { lock });
          }),
        ),
      );
      expect(await store.get('n')).toBe(16);
      await store.close();
    });
  },
);
