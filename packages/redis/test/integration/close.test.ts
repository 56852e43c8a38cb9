import { randomUUID } from 'node:crypto';
import { BackendUnavailableError, ValidationError } from '@latchkey/core';
import { afterAll, describe, expect, it } from 'vitest';
import { availableTargets, closeAll, sleep } from '../support/targets.js';

afterAll(closeAll);

const timers = (): number => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;

describe.each(availableTargets('RedisBackend close'))('RedisBackend.close on $name', (target) => {
  it('rejects waiting lock calls and leaves no timer behind', async () => {
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
    for (const waiter of waiters) expect(await waiter).toBeInstanceOf(BackendUnavailableError);
    await expect(backend.get('a')).rejects.toBeInstanceOf(ValidationError);
    await sleep(20);
    expect(timers()).toBeLessThanOrEqual(before);
  });
});
