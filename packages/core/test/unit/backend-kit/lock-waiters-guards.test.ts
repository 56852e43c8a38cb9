import { describe, expect, it } from 'vitest';
import { BackendClosedError, InvalidKeyError, ValidationError, type AcquireLockOptions, type Lease } from '../../../src/index.js';
import { useLockWaitersHarness } from '../../support/lock-waiters-harness.js';

describe('LockWaiters: the lock methods guard their input and refuse after close', () => {
  const harness = useLockWaitersHarness();
  const lease: Lease = { key: 'k', token: 't', fencingToken: 1n };

  it('rejects a bad key or bad options before attempting', async () => {
    const locks = harness.make();
    await expect(locks.acquire('', { leaseMs: 1000, waitMs: 0 })).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(locks.acquire('k', null as unknown as AcquireLockOptions)).rejects.toBeInstanceOf(ValidationError);
    await expect(locks.acquire('k', { leaseMs: -1, waitMs: 0 })).rejects.toBeInstanceOf(ValidationError);
    await expect(locks.acquire('k', { leaseMs: 1000, waitMs: Number.NaN })).rejects.toBeInstanceOf(ValidationError);
    expect(harness.server.attempts).toHaveLength(0);
  });

  it('rejects a value that is not a lease, and a bad leaseMs, with ValidationError', async () => {
    const locks = harness.make();
    await expect(locks.release({} as Lease)).rejects.toBeInstanceOf(ValidationError);
    await expect(locks.extend({} as Lease, 1000)).rejects.toBeInstanceOf(ValidationError);
    await expect(locks.extend(lease, -5)).rejects.toBeInstanceOf(ValidationError);
    expect(harness.server.releases).toHaveLength(0);
  });

  it('rejects release and extend after close with BackendClosedError', async () => {
    const locks = harness.make();
    await locks.close();
    await expect(locks.release(lease)).rejects.toBeInstanceOf(BackendClosedError);
    await expect(locks.extend(lease, 1000)).rejects.toBeInstanceOf(BackendClosedError);
    expect(harness.server.releases).toHaveLength(0);
  });
});
