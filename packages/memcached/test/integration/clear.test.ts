import { afterEach, describe, expect, it } from 'vitest';
import { type MemcachedBackend } from '../../src/index.js';
import { backendOn, bytes, rawClients, targets, text, uniquePrefix } from '../support/targets.js';

describe.each(targets('MemcachedBackend clear'))('MemcachedBackend clear on $name', (target) => {
  const opened: MemcachedBackend[] = [];
  const open = (keyPrefix = uniquePrefix()): MemcachedBackend => {
    const backend = backendOn(target, { keyPrefix });
    opened.push(backend);
    return backend;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((backend) => backend.close()));
  });

  const keys = Array.from({ length: 16 }, (_, index) => `k${index}`);

  it("hides every value of the prefix from every client at once, and no other prefix's", async () => {
    const keyPrefix = uniquePrefix();
    const [first, second, other] = [open(keyPrefix), open(keyPrefix), open()];
    await first.setMany(keys.map((key) => [key, bytes(key)]));
    await other.set('k0', bytes('kept'));
    // The second client has read (and so cached) the generation before the clear.
    expect((await second.getMany(keys)).map(text)).toEqual(keys);
    await first.clear();
    expect(await second.getMany(keys)).toEqual(keys.map(() => undefined));
    expect(await second.get('k1')).toBeUndefined();
    expect(await second.delete('k2')).toBe('missing');
    expect(await second.compareAndSet('k3', bytes('k3'), bytes('x'))).toBe(false);
    expect(text(await other.get('k0'))).toBe('kept');
  });

  it('a write after the clear by a client that last saw the old generation stays readable', async () => {
    const keyPrefix = uniquePrefix();
    const [first, second] = [open(keyPrefix), open(keyPrefix)];
    await second.set('stale', bytes('before'));
    await first.clear();
    // `second` still holds the generation it wrote under: its write must notice the clear.
    await second.set('stale', bytes('after'));
    await second.setMany(keys.map((key) => [key, bytes(`v${key}`)]));
    expect(text(await first.get('stale'))).toBe('after');
    expect((await first.getMany(keys)).map(text)).toEqual(keys.map((key) => `v${key}`));
  });

  it('leaves leases and fence counters alone: the holder keeps its exclusion and still writes', async () => {
    const keyPrefix = uniquePrefix();
    const [first, second] = [open(keyPrefix), open(keyPrefix)];
    await first.set('locked', bytes('old'));
    const lease = await first.acquireLock('locked', { leaseMs: 10_000, waitMs: 0 });
    expect(lease).toBeDefined();
    await second.clear();
    expect(await first.get('locked')).toBeUndefined();
    expect(await second.acquireLock('locked', { leaseMs: 10_000, waitMs: 0 })).toBeUndefined();
    expect(await first.set('locked', bytes('new'), { lease: lease! })).toBe('written');
    expect(text(await second.get('locked'))).toBe('new');
    expect(await first.releaseLock(lease!)).toBe(true);
    const next = await second.acquireLock('locked', { leaseMs: 10_000, waitMs: 0 });
    expect(next!.fencingToken).toBeGreaterThan(lease!.fencingToken);
    await second.releaseLock(next!);
  });

  it('sends no flush_all: items of other prefixes on every server keep their bytes', async () => {
    const backend = open();
    const clients = rawClients(target.servers);
    try {
      const foreign = `foreign-${uniquePrefix()}`;
      for (const client of clients.values()) await client.set(foreign, 'x', {});
      await backend.set('k', bytes('v'));
      await backend.clear();
      for (const client of clients.values()) expect((await client.get(foreign)).value?.toString()).toBe('x');
    } finally {
      for (const client of clients.values()) client.close();
    }
  });
});
