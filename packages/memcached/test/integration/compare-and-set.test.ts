import { afterEach, describe, expect, it } from 'vitest';
import { type MemcachedBackend } from '../../src/index.js';
import { backendOn, bytes, targets, text, uniquePrefix } from '../support/targets.js';

describe.each(targets('MemcachedBackend compareAndSet'))('MemcachedBackend compareAndSet on $name', (target) => {
  const opened: MemcachedBackend[] = [];
  const open = (keyPrefix = uniquePrefix()): MemcachedBackend => {
    const backend = backendOn(target, { keyPrefix });
    opened.push(backend);
    return backend;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((backend) => backend.close()));
  });

  it('swaps over a key whose CAS a lock acquire bumped without changing its bytes', async () => {
    const backend = open();
    await backend.set('k', bytes('old'));
    // The acquire bumps the data item's CAS (its fence): the bytes stay, so the swap still applies.
    const lease = await backend.acquireLock('k', { leaseMs: 10_000, waitMs: 0 });
    expect(lease).toBeDefined();
    expect(await backend.compareAndSet('k', bytes('old'), bytes('new'))).toBe(true);
    expect(text(await backend.get('k'))).toBe('new');
    // The holder read the CAS before the swap, so its next locked write re-reads and still applies.
    expect(await backend.set('k', bytes('locked'), { lease: lease! })).toBe('written');
    await backend.releaseLock(lease!);
  });

  it("treats a lock's placeholder item as missing", async () => {
    const backend = open();
    const lease = await backend.acquireLock('fresh', { leaseMs: 10_000, waitMs: 0 });
    expect(await backend.compareAndSet('fresh', new Uint8Array(0), bytes('x'))).toBe(false);
    expect(await backend.get('fresh')).toBeUndefined();
    await backend.releaseLock(lease!);
  });

  it('a second client sees the swap, and a swap over bytes another client changed is refused', async () => {
    const keyPrefix = uniquePrefix();
    const [first, second] = [open(keyPrefix), open(keyPrefix)];
    await first.set('shared', bytes('1'));
    expect(await second.compareAndSet('shared', bytes('1'), bytes('2'))).toBe(true);
    expect(await first.compareAndSet('shared', bytes('1'), bytes('3'))).toBe(false);
    expect(text(await first.get('shared'))).toBe('2');
  });
});
