import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { availableTargets, closeAll } from '../support/targets.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (value: Uint8Array | undefined): string | undefined => (value === undefined ? undefined : new TextDecoder().decode(value));

async function collect(keys: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const key of keys) out.push(key);
  return out;
}

/** Every Redis key under `prefix`, over every master, read behind the backend's back. */
async function rawKeys(masters: readonly Redis[], prefix: string): Promise<string[]> {
  const found: string[] = [];
  for (const node of masters) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      found.push(...keys);
    } while (cursor !== '0');
  }
  return found.sort();
}

afterAll(closeAll);

describe.each(availableTargets('RedisBackend data methods'))('RedisBackend clear, keys, has and compareAndSet on $name', (target) => {
  it('keys lists the values on every master (more than one SCAN page), each once, and nothing of a longer prefix', async () => {
    const prefix = `dm-${randomUUID().slice(0, 8)}:`;
    const backend = target.create({ keyPrefix: prefix });
    const longer = target.create({ keyPrefix: `${prefix}x` });
    const keys = Array.from({ length: 2500 }, (_, i) => `k${i}`);
    await backend.setMany(keys.map((key) => [key, bytes(key)]));
    await longer.set('other', bytes('o'));
    const masters = await target.masters();
    if (target.name === 'cluster') {
      // The keys really are spread: at least two masters hold some.
      const holding = await Promise.all(
        masters.map(async (node) => (await node.scan('0', 'MATCH', `${prefix}{*`, 'COUNT', 5000))[1].length),
      );
      expect(holding.filter((n) => n > 0).length, `keys per master ${holding.join(', ')}`).toBeGreaterThanOrEqual(2);
    }
    const listed = await collect(backend.keys());
    expect(new Set(listed).size).toBe(keys.length);
    expect([...new Set(listed)].sort()).toStrictEqual([...keys].sort());
    expect(listed).not.toContain('other');
  });

  it('clear unlinks values and digested values only: lock, fence, queue keys and a longer prefix stay', async () => {
    const prefix = `dm-${randomUUID().slice(0, 8)}:`;
    const backend = target.create({ keyPrefix: prefix });
    const longer = target.create({ keyPrefix: `${prefix}x` });
    const braced = 'a{b}c';
    const keys = Array.from({ length: 1200 }, (_, i) => `k${i}`);
    await backend.setMany(keys.map((key) => [key, bytes(key)]));
    await backend.set(braced, bytes('braced'));
    await longer.set('other', bytes('o'));
    const lease = await backend.acquireLock('k1', { leaseMs: 60_000, waitMs: 0 });
    expect(lease).toBeDefined();
    // A second backend waits for the lock, so the key has a server-side waiter queue meanwhile.
    const waiter = target.create({ keyPrefix: prefix });
    const waiting = waiter.acquireLock('k1', { leaseMs: 60_000, waitMs: 30_000 });
    const admin = target.admin();
    const queueKey = `${prefix}{k1}:queue`;
    const deadline = Date.now() + 5_000;
    while ((await admin.exists(queueKey)) === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    const before = await rawKeys(await target.masters(), prefix);

    await backend.clear();

    const after = await rawKeys(await target.masters(), prefix);
    const survivors = before.filter((key) => !key.endsWith('}'));
    expect(survivors).toEqual(expect.arrayContaining([`${prefix}{k1}:lock`, `${prefix}{k1}:fence`]));
    expect(after.filter((key) => !key.startsWith(`${prefix}x`))).toStrictEqual(survivors);
    expect(await backend.get(braced)).toBeUndefined();
    expect(text(await longer.get('other'))).toBe('o');
    expect(await backend.set('k1', bytes('again'), { lease: lease! })).toBe('written');
    expect(await backend.releaseLock(lease!)).toBe(true);
    const handedOver = await waiting;
    expect(handedOver?.fencingToken, 'the waiter got the lock after the clear').toBeGreaterThan(lease!.fencingToken);
    await waiter.releaseLock(handedOver!);
  });

  it('keys leaves out a digested key (its Redis key cannot name it), which clear still removes', async () => {
    const backend = target.create();
    await backend.set('plain', bytes('p'));
    await backend.set('a{b}', bytes('d'));
    expect(await collect(backend.keys())).toStrictEqual(['plain']);
  });

  it('has answers true for a live value and false for a missing or deleted one', async () => {
    const backend = target.create();
    await backend.set('x', bytes('1'));
    expect(await backend.has('x')).toBe(true);
    expect(await backend.has('y')).toBe(false);
    await backend.delete('x');
    expect(await backend.has('x')).toBe(false);
  });

  it('compareAndSet without expiresAt drops an earlier expiry; with one past, it deletes', async () => {
    const prefix = `dm-${randomUUID().slice(0, 8)}:`;
    const backend = target.create({ keyPrefix: prefix });
    const admin = target.admin();
    await backend.set('x', bytes('1'), { expiresAt: Date.now() + 60_000 });
    expect(await backend.compareAndSet('x', bytes('1'), bytes('2'))).toBe(true);
    expect(await admin.pttl(`${prefix}{x}`)).toBe(-1);
    expect(await backend.compareAndSet('x', bytes('2'), bytes('3'), { expiresAt: Date.now() + 30_000 })).toBe(true);
    const left = await admin.pttl(`${prefix}{x}`);
    expect(left).toBeGreaterThan(25_000);
    expect(left).toBeLessThanOrEqual(30_000);
    expect(await backend.compareAndSet('x', bytes('3'), bytes('4'), { expiresAt: Date.now() - 1 })).toBe(true);
    expect(await admin.exists(`${prefix}{x}`)).toBe(0);
  });
});
