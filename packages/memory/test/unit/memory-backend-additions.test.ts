import { BackendClosedError, InvalidKeyError } from '@latchkey/core';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../../src/index.js';

const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function collect(keys: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const key of keys) out.push(key);
  return out;
}

describe('MemoryBackend optional data methods', () => {
  let backend = new MemoryBackend();
  afterEach(async () => {
    await backend.close();
    backend = new MemoryBackend();
  });

  it('clear drops every value but keeps held leases and fencing counters', async () => {
    await backend.setMany([
      ['a', bytes(1)],
      ['b', bytes(2)],
    ]);
    const lease = (await backend.acquireLock('a', { leaseMs: 60_000, waitMs: 0 }))!;
    await backend.clear();
    expect(await backend.getMany(['a', 'b'])).toStrictEqual([undefined, undefined]);
    expect(await backend.acquireLock('a', { leaseMs: 60_000, waitMs: 0 })).toBeUndefined();
    expect(await backend.set('a', bytes(3), { lease })).toBe('written');
    expect(await backend.releaseLock(lease)).toBe(true);
    const next = (await backend.acquireLock('a', { leaseMs: 60_000, waitMs: 0 }))!;
    expect(next.fencingToken > lease.fencingToken).toBe(true);
  });

  it('keys lists the live stored keys, never expired ones, as of the first step', async () => {
    await backend.set('live', bytes(1));
    await backend.set('short', bytes(2), { expiresAt: Date.now() + 10 });
    await sleep(30);
    const iterator = backend.keys()[Symbol.asyncIterator]();
    const first = await iterator.next();
    await backend.set('later', bytes(3));
    const rest: string[] = [];
    for (let step = await iterator.next(); step.done !== true; step = await iterator.next()) rest.push(step.value);
    expect([first.value, ...rest]).toStrictEqual(['live']);
    expect((await collect(backend.keys())).sort()).toStrictEqual(['later', 'live']);
  });

  it('has is true for a live value and false when missing or expired', async () => {
    await backend.set('k', bytes(1), { expiresAt: Date.now() + 20 });
    expect(await backend.has('k')).toBe(true);
    expect(await backend.has('x')).toBe(false);
    await sleep(40);
    expect(await backend.has('k')).toBe(false);
  });

  it('compareAndSet writes only over exactly the expected bytes', async () => {
    await backend.set('k', bytes(1, 2));
    expect(await backend.compareAndSet('k', bytes(1), bytes(9))).toBe(false);
    expect(await backend.compareAndSet('k', bytes(1, 3), bytes(9))).toBe(false);
    expect([...((await backend.get('k')) as Uint8Array)]).toStrictEqual([1, 2]);
    const expiresAt = Date.now() + 20;
    expect(await backend.compareAndSet('k', bytes(1, 2), bytes(7), { expiresAt })).toBe(true);
    expect([...((await backend.get('k')) as Uint8Array)]).toStrictEqual([7]);
    expect(await backend.compareAndSet('missing', bytes(1), bytes(2))).toBe(false);
    expect(await backend.has('missing')).toBe(false);
    await sleep(40);
    expect(await backend.compareAndSet('k', bytes(7), bytes(8))).toBe(false);
  });

  it('checks its input and rejects after close', async () => {
    await expect(backend.has('')).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(backend.compareAndSet('', bytes(1), bytes(2))).rejects.toBeInstanceOf(InvalidKeyError);
    await backend.close();
    await expect(backend.clear()).rejects.toBeInstanceOf(BackendClosedError);
    await expect(backend.has('k')).rejects.toBeInstanceOf(BackendClosedError);
    await expect(collect(backend.keys())).rejects.toBeInstanceOf(BackendClosedError);
  });
});
