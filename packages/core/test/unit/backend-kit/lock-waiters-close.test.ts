import { describe, expect, it } from 'vitest';
import { BackendClosedError, wakeUpRetry, type Lease } from '../../../src/index.js';
import { advance, flush, observe } from '../../support/fake-time.js';
import { useLockWaitersHarness } from '../../support/lock-waiters-harness.js';

describe('LockWaiters: close()', () => {
  const harness = useLockWaitersHarness();

  it('rejects every waiter of every key with BackendClosedError naming the backend', async () => {
    const { server } = harness;
    server.latencyMs = 50;
    const locks = harness.make(wakeUpRetry());
    server.holdElsewhere('sleeping');
    server.holdElsewhere('in-flight');
    const sleeping = [observe(locks.acquire('sleeping', { leaseMs: 1000, waitMs: 5000 }))];
    await advance(50);
    const inFlight = observe(locks.acquire('in-flight', { leaseMs: 1000, waitMs: 5000 }));
    sleeping.push(observe(locks.acquire('sleeping', { leaseMs: 1000, waitMs: 5000 })));
    const closing = observe(locks.close());
    await flush();
    for (const waiter of [...sleeping, inFlight]) {
      expect(waiter.error).toBeInstanceOf(BackendClosedError);
      expect((waiter.error as Error).message).toContain('FakeBackend');
    }
    await advance(50);
    expect(closing.state).toBe('resolved');
    expect(locks.size).toBe(0);
  });

  it('rejects every later acquire with BackendClosedError, without attempting', async () => {
    const { server } = harness;
    const locks = harness.make();
    await locks.close();
    expect(locks.closed).toBe(true);
    await expect(locks.acquire('k', { leaseMs: 1000, waitMs: 5000 })).rejects.toBeInstanceOf(BackendClosedError);
    await expect(locks.acquire('k', { leaseMs: 1000, waitMs: 0 })).rejects.toBeInstanceOf(BackendClosedError);
    expect(server.attempts).toHaveLength(0);
  });

  it('waits for the attempt in flight and gives back the lease it wins before resolving', async () => {
    const { server } = harness;
    server.latencyMs = 100;
    const locks = harness.make();
    const waiting = observe(locks.acquire('k', { leaseMs: 0, waitMs: 5000 }));
    await advance(10);
    const closing = observe(locks.close());
    await flush();
    expect(waiting.error).toBeInstanceOf(BackendClosedError);
    // The attempt answers at 100 ms; its give-back is answered at 200 ms.
    await advance(180);
    expect(closing.state).toBe('pending');
    await advance(10);
    expect(closing.state).toBe('resolved');
    expect(server.releases.map(({ fencingToken }) => fencingToken)).toStrictEqual([1n]);
    expect(server.holderOf('k')).toBeUndefined();
  });

  it('rejects a waitMs 0 acquire whose attempt is in flight with BackendClosedError, and gives back what it wins', async () => {
    const { server } = harness;
    server.latencyMs = 100;
    const locks = harness.make();
    const once = observe(locks.acquire('k', { leaseMs: 0, waitMs: 0 }));
    await advance(10);
    const closing = observe(locks.close());
    await advance(190);
    expect(once.error).toBeInstanceOf(BackendClosedError);
    expect(closing.state).toBe('resolved');
    expect(server.releases).toHaveLength(1);
    expect(server.holderOf('k')).toBeUndefined();
  });

  it('gives back every lease this process still holds, and none it released or that lapsed', async () => {
    const { server } = harness;
    const locks = harness.make();
    await locks.acquire('forever', { leaseMs: 0, waitMs: 0 });
    await locks.acquire('long', { leaseMs: 10_000, waitMs: 0 });
    const released = (await locks.acquire('released', { leaseMs: 0, waitMs: 0 })) as Lease;
    await locks.acquire('lapsed', { leaseMs: 50, waitMs: 0 });
    await locks.release(released);
    await advance(100);
    const before = server.releases.length;
    await locks.close();
    const givenBack = server.releases.slice(before).map(({ key }) => key);
    expect(givenBack.sort()).toStrictEqual(['forever', 'long']);
    expect(server.holderOf('forever')).toBeUndefined();
    expect(server.holderOf('long')).toBeUndefined();
    expect(harness.giveBackWarnings()).toHaveLength(0);
  });

  it('reports each give-back that fails once, and resolves all the same', async () => {
    const { server } = harness;
    const locks = harness.make();
    await locks.acquire('a', { leaseMs: 0, waitMs: 0 });
    await locks.acquire('b', { leaseMs: 0, waitMs: 0 });
    server.releaseFailure = new Error('connection reset');
    await locks.close();
    const warnings = harness.giveBackWarnings().map(([message]) => message as string);
    expect(warnings).toHaveLength(2);
    expect(warnings.some((message) => message.includes('"a"'))).toBe(true);
    expect(warnings.some((message) => message.includes('"b"'))).toBe(true);
    expect(locks.size).toBe(0);
  });

  it('giveBack releases in the background, reports a failure once, and close waits for it', async () => {
    const { server } = harness;
    server.latencyMs = 100;
    const locks = harness.make();
    const taking = observe(locks.acquire('a', { leaseMs: 0, waitMs: 0 }));
    const losing = observe(locks.acquire('b', { leaseMs: 0, waitMs: 0 }));
    await advance(100);
    const taken = taking.value;
    const lost = losing.value;
    locks.giveBack(taken as Lease);
    await advance(100);
    expect(server.holderOf('a')).toBeUndefined();
    server.releaseFailure = new Error('connection reset');
    locks.giveBack(lost as Lease);
    const closing = observe(locks.close());
    await flush();
    expect(closing.state).toBe('pending');
    await advance(100);
    expect(closing.state).toBe('resolved');
    const warnings = harness.giveBackWarnings().map(([message]) => message as string);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('"b"');
  });

  it('is idempotent: every call returns the same promise, and the protocol hears each give-back once', async () => {
    const { server } = harness;
    const locks = harness.make();
    await locks.acquire('k', { leaseMs: 0, waitMs: 0 });
    const first = locks.close();
    expect(locks.close()).toBe(first);
    await first;
    await locks.close();
    expect(server.releases).toHaveLength(1);
  });
});
