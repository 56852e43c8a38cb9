import { describe, expect, it } from 'vitest';
import { LockWaiters, wakeUpRetry, type Lease, type LockProtocol } from '../../../src/index.js';
import { advance, flush, observe } from '../../support/fake-time.js';
import { useLockWaitersHarness } from '../../support/lock-waiters-harness.js';

type AttemptContext = Parameters<LockProtocol['attempt']>[3];

/** For protocols that queue this process on the server: what LockWaiters tells them. */
describe('LockWaiters: hooks for a server-side queue', () => {
  const harness = useLockWaitersHarness();

  /** A queue whose protocol records contexts and leaves; with `holdLeave`, each leave settles only at `finishLeave()`. */
  function queueing(holdLeave = false): { locks: LockWaiters; contexts: AttemptContext[]; leaves: string[]; finishLeave: () => void } {
    const { server } = harness;
    const contexts: AttemptContext[] = [];
    const leaves: string[] = [];
    let finishLeave: () => void = () => undefined;
    const protocol: LockProtocol = {
      attempt: (key, leaseMs, _giveBack, context) => {
        contexts.push(context);
        return server.attempt(key, leaseMs);
      },
      release: (lease) => server.release(lease),
      extend: (lease, leaseMs) => server.extend(lease, leaseMs),
      leave: (key) => {
        leaves.push(key);
        if (!holdLeave) return Promise.resolve();
        return new Promise<void>((resolve) => (finishLeave = resolve));
      },
    };
    const locks = new LockWaiters({ name: 'FakeBackend', protocol, retry: wakeUpRetry() });
    return { locks, contexts, leaves, finishLeave: () => finishLeave() };
  }

  it('tells a single attempt that it will not wait, and a waiting head that it will', async () => {
    const { server } = harness;
    const { locks, contexts } = queueing();
    server.holdElsewhere('k');
    expect(await locks.acquire('k', { leaseMs: 1000, waitMs: 0 })).toBeUndefined();
    expect(contexts).toEqual([{ waiting: false }]);
    const waiting = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 100 }));
    await flush();
    expect(contexts).toEqual([{ waiting: false }, { waiting: true }]);
    await advance(100);
    expect(waiting.value).toBeUndefined();
    await locks.close();
  });

  it('counts the waiters of this process per key', async () => {
    const { server } = harness;
    const { locks } = queueing();
    server.holdElsewhere('k');
    expect(locks.waiting('k')).toBe(0);
    const one = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 100 }));
    const two = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 200 }));
    expect(locks.waiting('k')).toBe(2);
    expect(locks.waiting('other')).toBe(0);
    await advance(100);
    expect(one.value).toBeUndefined();
    expect(locks.waiting('k')).toBe(1);
    await advance(100);
    expect(two.value).toBeUndefined();
    expect(locks.waiting('k')).toBe(0);
    await locks.close();
  });

  it('asks the protocol to leave once every waiter here stopped waiting without the lease, and close waits for it', async () => {
    const { server } = harness;
    const { locks, leaves, finishLeave } = queueing(true);
    server.holdElsewhere('k');
    const one = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 50 }));
    const two = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 80 }));
    await advance(50);
    expect(one.state).toBe('resolved');
    // Another waiter of this process still waits: this process stays queued.
    expect(leaves).toEqual([]);
    await advance(30);
    expect(two.state).toBe('resolved');
    expect(leaves).toEqual(['k']);
    const closing = observe(locks.close());
    await flush();
    expect(closing.state).toBe('pending');
    finishLeave();
    await flush();
    expect(closing.state).toBe('resolved');
  });

  it('does not ask to leave when the last waiter won the lease', async () => {
    const { server } = harness;
    const { locks, leaves } = queueing();
    server.holdElsewhere('k');
    const waiting = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 5_000 }));
    await flush();
    server.free('k');
    locks.wake('k');
    await flush();
    expect(waiting.state).toBe('resolved');
    expect((waiting.value as Lease | undefined)?.key).toBe('k');
    await locks.release(waiting.value as Lease);
    await flush();
    expect(leaves).toEqual([]);
    await locks.close();
  });
});
