import { describe, expect, it, vi } from 'vitest';
import { backoffRetry, wakeUpRetry, type Lease, type RetryContext } from '../../../src/index.js';
import { advance, flush, observe } from '../../support/fake-time.js';
import { useLockWaitersHarness } from '../../support/lock-waiters-harness.js';

/** Every pause exactly `ms` (no jitter), so attempt counts over fake time are exact. */
const every = (ms: number) => backoffRetry({ minMs: ms, maxMs: ms, jitter: 0 });

describe('LockWaiters: the waiters of one process', () => {
  const harness = useLockWaitersHarness();

  describe('order', () => {
    it('serves the waiters of a key in arrival order, one attempt per hand-over however many wait', async () => {
      const { server } = harness;
      const locks = harness.make();
      const order: number[] = [];
      const waits = Array.from({ length: 32 }, (_, i) =>
        locks.acquire('k', { leaseMs: 10_000, waitMs: 10_000 }).then((lease) => {
          order.push(i);
          return lease;
        }),
      );
      for (const waiting of waits) {
        const lease = await waiting;
        expect(lease).toBeDefined();
        await locks.release(lease as Lease);
      }
      expect(order).toStrictEqual(Array.from({ length: 32 }, (_, i) => i));
      expect(server.attempts).toHaveLength(32);
      expect(locks.size).toBe(0);
    });

    it('lets only the head attempt: ten waiters cost the server what one costs', async () => {
      const { server } = harness;
      const locks = harness.make(every(100));
      server.holdElsewhere('crowded');
      server.holdElsewhere('alone');
      const crowd = Array.from({ length: 10 }, () => observe(locks.acquire('crowded', { leaseMs: 1000, waitMs: 5000 })));
      const alone = observe(locks.acquire('alone', { leaseMs: 1000, waitMs: 5000 }));
      await advance(1000);
      // One attempt at 0 ms, then one every 100 ms up to 1000 ms.
      expect(server.attemptsOn('alone')).toBe(11);
      expect(server.attemptsOn('crowded')).toBe(11);
      expect([...crowd, alone].every((waiter) => waiter.state === 'pending')).toBe(true);
    });

    it('keeps keys independent: a held key does not hold up another', async () => {
      const { server } = harness;
      const locks = harness.make();
      server.holdElsewhere('busy');
      const blocked = observe(locks.acquire('busy', { leaseMs: 1000, waitMs: 5000 }));
      const free = await locks.acquire('free', { leaseMs: 1000, waitMs: 5000 });
      expect(free?.key).toBe('free');
      expect(blocked.state).toBe('pending');
      expect(locks.size).toBe(2);
    });

    it('lets a waiter behind the head leave at its own deadline while the head keeps waiting', async () => {
      const { server } = harness;
      const locks = harness.make(every(1000));
      server.holdElsewhere('k');
      const head = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 5000 }));
      const behind = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 80 }));
      await advance(80);
      expect(behind.state).toBe('resolved');
      expect(behind.value).toBeUndefined();
      expect(head.state).toBe('pending');
      expect(server.attemptsOn('k')).toBe(1);
      server.free('k');
      locks.wake('k');
      await flush();
      expect(head.value?.key).toBe('k');
    });
  });

  describe('retry policy', () => {
    it("is told the head's failures in a row and the holder's retryInMs after each refused attempt", async () => {
      const { server } = harness;
      const seen: RetryContext[] = [];
      const locks = harness.make((context) => {
        seen.push(context);
        return 50;
      });
      server.holdElsewhere('k', 10_000);
      observe(locks.acquire('k', { leaseMs: 1000, waitMs: 5000 }));
      await advance(100);
      expect(seen).toStrictEqual([
        { failures: 1, retryInMs: 10_000 },
        { failures: 2, retryInMs: 9950 },
        { failures: 3, retryInMs: 9900 },
      ]);
    });

    it('counts failures afresh for each new head', async () => {
      const { server } = harness;
      const seen: RetryContext[] = [];
      const locks = harness.make((context) => {
        seen.push(context);
        return 50;
      });
      server.holdElsewhere('k');
      observe(locks.acquire('k', { leaseMs: 1000, waitMs: 120 }));
      observe(locks.acquire('k', { leaseMs: 1000, waitMs: 5000 }));
      await advance(120);
      // The first head failed at 0, 50 and 100 ms and left at 120; the next one attempts at once.
      expect(seen.map(({ failures }) => failures)).toStrictEqual([1, 2, 3, 1]);
    });

    it('gives retryInMs undefined when the server could not tell when the holder lapses', async () => {
      const { server } = harness;
      server.tellsLapse = false;
      const policy = vi.fn((_: RetryContext) => 50);
      const locks = harness.make(policy);
      server.holdElsewhere('k', 10_000);
      observe(locks.acquire('k', { leaseMs: 1000, waitMs: 5000 }));
      await flush();
      expect(policy.mock.calls).toStrictEqual([[{ failures: 1, retryInMs: undefined }]]);
    });

    it('waits out the pauses of backoffRetry between attempts: 5, 10, 20, 40, 80, then 100 ms', async () => {
      const { server } = harness;
      vi.spyOn(Math, 'random').mockReturnValue(0);
      server.tellsLapse = false;
      const locks = harness.make(backoffRetry({ minMs: 5, maxMs: 100 }));
      server.holdElsewhere('k');
      const waiting = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 500 }));
      await advance(500);
      const at = server.attempts.map((attempt) => attempt.at);
      const gaps = at.slice(1).map((time, i) => time - (at[i] as number));
      expect(gaps).toStrictEqual([5, 10, 20, 40, 80, 100, 100, 100]);
      expect(waiting.state).toBe('resolved');
    });

    it("looks again when the holder's lease lapses, without any release (wakeUpRetry)", async () => {
      const { server } = harness;
      const locks = harness.make(wakeUpRetry());
      server.holdElsewhere('k', 60);
      const waiting = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 5000 }));
      await advance(59);
      expect(waiting.state).toBe('pending');
      expect(server.attemptsOn('k')).toBe(1);
      await advance(1);
      expect(waiting.value?.key).toBe('k');
      expect(server.attemptsOn('k')).toBe(2);
    });

    it('looks again every fallbackMs while releases cannot be heard (wakeUpRetry)', async () => {
      const { server } = harness;
      let hearing = true;
      const locks = harness.make(wakeUpRetry({ hearing: () => hearing, fallbackMs: 250 }));
      server.holdElsewhere('k');
      const waiting = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 10_000 }));
      await advance(1000);
      // Hearing releases, the head sleeps until woken.
      expect(server.attemptsOn('k')).toBe(1);
      hearing = false;
      locks.wakeAll();
      await advance(500);
      expect(server.attemptsOn('k')).toBe(4);
      server.free('k');
      await advance(249);
      expect(waiting.state).toBe('pending');
      await advance(1);
      expect(waiting.value?.key).toBe('k');
    });

    it("never sleeps past the waiter's waitMs, whatever the policy says", async () => {
      const { server } = harness;
      const locks = harness.make(every(5000));
      server.holdElsewhere('k');
      const waiting = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 100 }));
      await advance(99);
      expect(waiting.state).toBe('pending');
      await advance(1);
      expect(waiting.state).toBe('resolved');
      expect(waiting.value).toBeUndefined();
    });
  });

  describe('wake(key)', () => {
    it('wakes the sleeping head, which attempts at once', async () => {
      const { server } = harness;
      const locks = harness.make(wakeUpRetry());
      server.holdElsewhere('k');
      const waiting = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 60_000 }));
      await advance(10_000);
      expect(server.attemptsOn('k')).toBe(1);
      server.free('k');
      locks.wake('k');
      await flush();
      expect(waiting.value?.fencingToken).toBe(1n);
      expect(server.attemptsOn('k')).toBe(2);
    });

    it('makes the head attempt again at once when a release is heard while its attempt is in flight', async () => {
      const { server } = harness;
      server.latencyMs = 30;
      const locks = harness.make(wakeUpRetry());
      server.holdElsewhere('k');
      const waiting = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 60_000 }));
      await advance(5);
      server.free('k');
      locks.wake('k');
      // The refused answer arrives at 30 ms; the head must not sleep on it.
      await advance(25 + 30);
      expect(waiting.value?.key).toBe('k');
      expect(server.attemptsOn('k')).toBe(2);
    });

    it('is ignored while a lease of this process holds the key', async () => {
      const { server } = harness;
      const locks = harness.make(wakeUpRetry());
      const held = await locks.acquire('k', { leaseMs: 10_000, waitMs: 0 });
      const next = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 60_000 }));
      locks.wake('k');
      locks.wakeAll();
      await advance(5000);
      expect(server.attemptsOn('k')).toBe(1);
      expect(next.state).toBe('pending');
      await locks.release(held as Lease);
      await flush();
      expect(next.value?.key).toBe('k');
      expect(server.attemptsOn('k')).toBe(2);
    });

    it('wakeAll() wakes the head of every key', async () => {
      const { server } = harness;
      const locks = harness.make(wakeUpRetry());
      server.holdElsewhere('a');
      server.holdElsewhere('b');
      const a = observe(locks.acquire('a', { leaseMs: 1000, waitMs: 60_000 }));
      const b = observe(locks.acquire('b', { leaseMs: 1000, waitMs: 60_000 }));
      await flush();
      server.free('a');
      server.free('b');
      locks.wakeAll();
      await flush();
      expect([a.value?.key, b.value?.key]).toStrictEqual(['a', 'b']);
    });
  });

  describe('release(lease)', () => {
    it('resolves what the protocol answered and wakes the next waiter here at once, whatever its pause', async () => {
      const { server } = harness;
      const locks = harness.make(every(60_000));
      const held = (await locks.acquire('k', { leaseMs: 0, waitMs: 0 })) as Lease;
      const next = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 120_000 }));
      await advance(1000);
      expect(next.state).toBe('pending');
      expect(await locks.release(held)).toBe(true);
      await flush();
      expect(next.value?.key).toBe('k');
      expect(server.releases).toStrictEqual([held]);
    });

    it('does not wake anyone when it frees nothing and the lease is not the one held here', async () => {
      const { server } = harness;
      const locks = harness.make(wakeUpRetry());
      server.holdElsewhere('k');
      const waiting = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 60_000 }));
      await flush();
      expect(await locks.release({ key: 'k', token: 'stranger', fencingToken: 1n })).toBe(false);
      await flush();
      expect(server.attemptsOn('k')).toBe(1);
      expect(waiting.state).toBe('pending');
    });

    it('wakes the head when it frees a lease this process did not record (the key is free now)', async () => {
      const { server } = harness;
      const locks = harness.make(wakeUpRetry());
      server.holdElsewhere('k');
      const token = server.holderOf('k') as string;
      const waiting = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 60_000 }));
      await flush();
      expect(await locks.release({ key: 'k', token, fencingToken: 1n })).toBe(true);
      await flush();
      expect(waiting.value?.key).toBe('k');
    });

    it('forgets the lease held here when the protocol says it no longer held, and lets the next waiter attempt', async () => {
      const { server } = harness;
      const locks = harness.make(wakeUpRetry());
      const held = (await locks.acquire('k', { leaseMs: 0, waitMs: 0 })) as Lease;
      const next = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 60_000 }));
      server.free('k');
      expect(await locks.release(held)).toBe(false);
      await flush();
      expect(next.value?.key).toBe('k');
    });

    it('rejects with the protocol error and still wakes the next waiter (the release may have happened)', async () => {
      const { server } = harness;
      const locks = harness.make(wakeUpRetry());
      const held = (await locks.acquire('k', { leaseMs: 0, waitMs: 0 })) as Lease;
      const next = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 60_000 }));
      const failure = new Error('connection reset');
      // The server let go, but its answer was lost.
      server.free('k');
      server.releaseFailure = failure;
      await expect(locks.release(held)).rejects.toBe(failure);
      await flush();
      expect(next.value?.key).toBe('k');
      expect(server.attemptsOn('k')).toBe(2);
    });
  });

  describe('extend(lease, leaseMs)', () => {
    it('records the new lapse: nobody here attempts before it', async () => {
      const { server } = harness;
      const locks = harness.make(wakeUpRetry());
      const held = (await locks.acquire('k', { leaseMs: 100, waitMs: 0 })) as Lease;
      const next = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 60_000 }));
      await advance(50);
      expect(await locks.extend(held, 1000)).toBe(true);
      await advance(950);
      // At 1000 ms the old lapse is long past, the new one (1050 ms) not yet.
      expect(await locks.acquire('k', { leaseMs: 1000, waitMs: 0 })).toBeUndefined();
      expect(server.attemptsOn('k')).toBe(1);
      expect(next.state).toBe('pending');
      await advance(50);
      expect(next.value?.key).toBe('k');
      expect(server.attemptsOn('k')).toBe(2);
    });

    it('records leaseMs 0 as a lease that never lapses', async () => {
      const { server } = harness;
      const locks = harness.make(wakeUpRetry());
      const held = (await locks.acquire('k', { leaseMs: 100, waitMs: 0 })) as Lease;
      expect(await locks.extend(held, 0)).toBe(true);
      await advance(60_000);
      expect(await locks.acquire('k', { leaseMs: 1000, waitMs: 0 })).toBeUndefined();
      expect(server.attemptsOn('k')).toBe(1);
      expect(locks.size).toBe(1);
    });

    it('forgets the lease held here when the renewal is refused, and lets the next waiter attempt', async () => {
      const { server } = harness;
      const locks = harness.make(wakeUpRetry());
      const held = (await locks.acquire('k', { leaseMs: 0, waitMs: 0 })) as Lease;
      const next = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 60_000 }));
      server.free('k');
      expect(await locks.extend(held, 1000)).toBe(false);
      await flush();
      expect(next.value?.key).toBe('k');
      expect(server.extensions).toStrictEqual([{ lease: held, leaseMs: 1000 }]);
    });
  });

  describe('waitMs 0', () => {
    it('attempts exactly once and answers undefined when the key is held elsewhere', async () => {
      const { server } = harness;
      const locks = harness.make();
      server.holdElsewhere('k');
      expect(await locks.acquire('k', { leaseMs: 1000, waitMs: 0 })).toBeUndefined();
      expect(server.attemptsOn('k')).toBe(1);
      expect(locks.size).toBe(0);
    });

    it('takes a free key with its one attempt', async () => {
      const locks = harness.make();
      const lease = await locks.acquire('k', { leaseMs: 1000, waitMs: 0 });
      expect(lease).toMatchObject({ key: 'k', fencingToken: 1n });
      expect(locks.size).toBe(1);
    });

    it('does not attempt while other waiters of this process wait: they are first in line', async () => {
      const { server } = harness;
      const locks = harness.make(wakeUpRetry());
      server.holdElsewhere('k');
      const waiting = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 5000 }));
      server.free('k');
      expect(await locks.acquire('k', { leaseMs: 1000, waitMs: 0 })).toBeUndefined();
      expect(server.attemptsOn('k')).toBe(1);
      locks.wake('k');
      await flush();
      expect(waiting.value?.key).toBe('k');
    });

    it('does not attempt while a lease of this process holds the key, and does once it is released', async () => {
      const { server } = harness;
      const locks = harness.make();
      const held = (await locks.acquire('k', { leaseMs: 10_000, waitMs: 0 })) as Lease;
      expect(await locks.acquire('k', { leaseMs: 10_000, waitMs: 0 })).toBeUndefined();
      expect(server.attemptsOn('k')).toBe(1);
      await locks.release(held);
      expect(await locks.acquire('k', { leaseMs: 10_000, waitMs: 0 })).toBeDefined();
      expect(server.attemptsOn('k')).toBe(2);
    });

    it('attempts again once the lease held here has lapsed', async () => {
      const { server } = harness;
      const locks = harness.make();
      await locks.acquire('k', { leaseMs: 100, waitMs: 0 });
      await advance(99);
      expect(await locks.acquire('k', { leaseMs: 100, waitMs: 0 })).toBeUndefined();
      expect(server.attemptsOn('k')).toBe(1);
      await advance(1);
      expect(await locks.acquire('k', { leaseMs: 100, waitMs: 0 })).toBeDefined();
      expect(server.attemptsOn('k')).toBe(2);
    });
  });

  describe('size', () => {
    it('counts keys with waiters or a live lease held here, and returns to 0 once all settle', async () => {
      const { server } = harness;
      const locks = harness.make(wakeUpRetry());
      server.holdElsewhere('waited');
      const waiting = observe(locks.acquire('waited', { leaseMs: 1000, waitMs: 100 }));
      const held = (await locks.acquire('held', { leaseMs: 0, waitMs: 0 })) as Lease;
      await locks.acquire('lapsing', { leaseMs: 50, waitMs: 0 });
      expect(locks.size).toBe(3);
      await advance(50);
      expect(locks.size).toBe(2);
      await advance(50);
      expect(waiting.state).toBe('resolved');
      expect(locks.size).toBe(1);
      await locks.release(held);
      expect(locks.size).toBe(0);
      expect(vi.getTimerCount()).toBe(0);
    });
  });
});
