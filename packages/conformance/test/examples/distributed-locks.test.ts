/**
 * The distributed-locks example is code, not prose: its locks over the fake server exclude
 * across handles, settle waits on release and on close, give back held leases at close, and
 * turn a dropped connection into a typed error.
 */
import { BackendClosedError, BackendUnavailableError, ValidationError } from '@latchkey/core';
import { afterEach, describe, expect, it } from 'vitest';
import { DistributedLocks, FakeLockServer } from '../../../../examples/backend/distributed-locks.js';
import { settle } from '../../src/internal/timing.js';

describe('examples/backend/distributed-locks.ts', () => {
  const opened: DistributedLocks[] = [];
  const handle = (server: FakeLockServer): DistributedLocks => {
    const locks = new DistributedLocks(server, { operationTimeoutMs: 1_000 });
    opened.push(locks);
    return locks;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((locks) => locks.close()));
  });

  it('excludes a second handle on the same server until the holder releases, then serves its waiter', async () => {
    const server = new FakeLockServer();
    const [first, second] = [handle(server), handle(server)];
    const lease = await first.acquireLock('k', { leaseMs: 10_000, waitMs: 0 });
    if (lease === undefined) expect.fail('the free key was not granted');
    expect(await second.acquireLock('k', { leaseMs: 10_000, waitMs: 0 })).toBeUndefined();
    const waiting = second.acquireLock('k', { leaseMs: 10_000, waitMs: 5_000 });
    expect(await first.releaseLock(lease)).toBe(true);
    const next = await waiting;
    expect(next?.key).toBe('k');
    expect((next?.fencingToken ?? 0n) > lease.fencingToken).toBe(true);
  });

  it('close rejects a waiter with BackendClosedError and gives back held leases, so another handle takes the key at once', async () => {
    const server = new FakeLockServer();
    const [closing, other] = [handle(server), handle(server)];
    await closing.acquireLock('held', { leaseMs: 60_000, waitMs: 0 });
    await other.acquireLock('busy', { leaseMs: 60_000, waitMs: 0 });
    const waiting = settle(closing.acquireLock('busy', { leaseMs: 1_000, waitMs: 60_000 }));
    await closing.close();
    const outcome = await waiting;
    expect(outcome.ok === false && outcome.error instanceof BackendClosedError, 'the waiter interrupted by close').toBe(true);
    expect(await other.acquireLock('held', { leaseMs: 1_000, waitMs: 0 }), 'the lease held at close was not given back').toBeDefined();
    await expect(closing.acquireLock('free', { leaseMs: 1_000, waitMs: 0 })).rejects.toBeInstanceOf(BackendClosedError);
  });

  it('rejects a malformed lease with ValidationError and a dropped connection with BackendUnavailableError (cause kept)', async () => {
    const server = new FakeLockServer();
    const locks = handle(server);
    await expect(locks.releaseLock({} as never)).rejects.toBeInstanceOf(ValidationError);
    server.down = true;
    const outcome = await settle(locks.acquireLock('k', { leaseMs: 1_000, waitMs: 0 }));
    if (outcome.ok) expect.fail('the attempt on a server that is down resolved');
    expect(outcome.error).toBeInstanceOf(BackendUnavailableError);
    expect((outcome.error as Error).cause).toMatchObject({ code: 'ECONNRESET' });
  });
});
