import { randomUUID } from 'node:crypto';
import { ValidationError, type Lease } from '@latchkey/core';
import { Cluster, Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisBackend } from '../../src/index.js';
import { availableTargets, closeAll } from '../support/targets.js';

afterAll(closeAll);

describe.each(availableTargets('RedisBackend over a given client'))('RedisBackend over a given client on $name', (target) => {
  const clientWith = (options: { stringNumbers?: boolean; keyPrefix?: string }): Redis | Cluster => {
    const { url, cluster } = target.connection;
    if (url !== undefined) return new Redis(url, options);
    return new Cluster(
      (cluster?.nodes ?? []).map((node) => ({ host: '127.0.0.1', port: Number(node.split(':')[1]) })),
      { keyPrefix: options.keyPrefix, redisOptions: options },
    );
  };

  it('works with a client that returns numbers as strings', async () => {
    const client = clientWith({ stringNumbers: true });
    const prefix = `given-${randomUUID().slice(0, 8)}:`;
    const backend = new RedisBackend({ client, keyPrefix: prefix });
    const peer = new RedisBackend({ client, keyPrefix: prefix });
    try {
      const lease = (await backend.acquireLock('k', { leaseMs: 5_000, waitMs: 0 })) as Lease;
      expect(lease.fencingToken).toBe(1n);
      expect(await peer.acquireLock('k', { leaseMs: 5_000, waitMs: 0 })).toBeUndefined();
      expect(await backend.set('k', Uint8Array.of(1), { lease })).toBe('written');
      expect(await backend.delete('k', { lease })).toBe('deleted');
      expect(await backend.delete('k')).toBe('missing');
      expect(await backend.extendLock(lease, 5_000)).toBe(true);
      const waiting = peer.acquireLock('k', { leaseMs: 5_000, waitMs: 5_000 });
      expect(await backend.releaseLock(lease)).toBe(true);
      expect(((await waiting) as Lease).fencingToken).toBe(2n);
    } finally {
      await backend.close();
      await peer.close();
      client.disconnect();
    }
  });

  it("refuses a client with ioredis' own keyPrefix", () => {
    const client = clientWith({ keyPrefix: 'app:' });
    try {
      expect(() => new RedisBackend({ client })).toThrow(ValidationError);
    } finally {
      client.disconnect();
    }
  });
});
