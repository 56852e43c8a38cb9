import { randomUUID } from 'node:crypto';
import { BackendClosedError, type Lease } from '@latchkey/core';
import { afterAll, describe, expect, it } from 'vitest';
import { availableTargets, closeAll, sleep } from '../support/targets.js';

afterAll(closeAll);

const timers = (): number => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
const lease = (key: string): Lease => ({ key, token: 'not-held', fencingToken: 1n });

describe.each(availableTargets('RedisBackend close'))('RedisBackend.close on $name', (target) => {
  it('rejects waiting lock calls with BackendClosedError and leaves no timer behind', async () => {
    const prefix = `close-${randomUUID().slice(0, 8)}:`;
    const holder = target.create({ keyPrefix: prefix });
    await holder.acquireLock('k', { leaseMs: 10_000, waitMs: 0 });
    await sleep(20);
    const before = timers();
    const backend = target.create({ keyPrefix: prefix });
    await backend.set('a', Uint8Array.of(1), { expiresAt: Date.now() + 10_000 });
    await backend.getMany(['a', 'b']);
    const waiters = [1, 2, 3].map(() =>
      backend.acquireLock('k', { leaseMs: 1_000, waitMs: 10_000 }).then(
        () => undefined,
        (error: unknown) => error,
      ),
    );
    await sleep(30);
    expect(timers()).toBeGreaterThan(before);
    await backend.close();
    for (const waiter of waiters) expect(await waiter).toBeInstanceOf(BackendClosedError);
    await sleep(20);
    expect(timers()).toBeLessThanOrEqual(before);
  });

  it('rejects every call after close() with BackendClosedError, before any I/O', async () => {
    const backend = target.create();
    await backend.get('warm-up');
    const closing = backend.close();
    const calls: (() => Promise<unknown>)[] = [
      () => backend.get('k'),
      () => backend.getMany(['k']),
      () => backend.set('k', Uint8Array.of(1)),
      () => backend.setMany([['k', Uint8Array.of(1)]]),
      () => backend.delete('k'),
      () => backend.deleteMany(['k']),
      () => backend.acquireLock('k', { leaseMs: 1_000, waitMs: 0 }),
      () => backend.releaseLock(lease('k')),
      () => backend.extendLock(lease('k'), 1_000),
    ];
    // Both while close() is under way and after it finished.
    for (const call of calls) await expect(call()).rejects.toBeInstanceOf(BackendClosedError);
    await closing;
    for (const call of calls) await expect(call()).rejects.toBeInstanceOf(BackendClosedError);
  });

  it('gives back the leases it holds, so another backend need not wait them out', async () => {
    const prefix = `giveback-${randomUUID().slice(0, 8)}:`;
    const backend = target.create({ keyPrefix: prefix });
    const other = target.create({ keyPrefix: prefix });
    // A lease of 0 ms never lapses: without the give-back its key would stay locked for good.
    expect(await backend.acquireLock('forever', { leaseMs: 0, waitMs: 0 })).toBeDefined();
    expect(await backend.acquireLock('long', { leaseMs: 60_000, waitMs: 0 })).toBeDefined();
    expect(await other.acquireLock('forever', { leaseMs: 1_000, waitMs: 0 })).toBeUndefined();
    await backend.close();
    const admin = target.admin();
    expect([await admin.exists(`${prefix}{forever}:lock`), await admin.exists(`${prefix}{long}:lock`)]).toEqual([0, 0]);
    expect(await other.acquireLock('forever', { leaseMs: 1_000, waitMs: 0 })).toBeDefined();
    expect(await other.acquireLock('long', { leaseMs: 1_000, waitMs: 0 })).toBeDefined();
  });

  it('gives back a lease won by an attempt that was on its way when close() was called', async () => {
    const prefix = `late-${randomUUID().slice(0, 8)}:`;
    const backend = target.create({ keyPrefix: prefix });
    await backend.get('warm-up');
    const attempts = [
      backend.acquireLock('once', { leaseMs: 0, waitMs: 0 }),
      backend.acquireLock('waiting', { leaseMs: 0, waitMs: 10_000 }),
    ].map((attempt) =>
      attempt.then(
        (won) => won,
        (error: unknown) => error,
      ),
    );
    // The attempts are sent; their answers arrive after close() started.
    await backend.close();
    for (const attempt of attempts) expect(await attempt).toBeInstanceOf(BackendClosedError);
    const other = target.create({ keyPrefix: prefix });
    // Fencing token 2: the closed backend's attempts did win (token 1), and gave their leases back.
    expect((await other.acquireLock('once', { leaseMs: 1_000, waitMs: 0 }))?.fencingToken).toBe(2n);
    expect((await other.acquireLock('waiting', { leaseMs: 1_000, waitMs: 0 }))?.fencingToken).toBe(2n);
  });
});
