import { getEventListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, vi } from 'vitest';
import { backoffRetry, LockWaiters, wakeUpRetry, type Lease } from '../../../src/index.js';
import { FakeLockProtocol } from '../../support/fake-lock-protocol.js';
import { advance, DAY_MS, flush, observe } from '../../support/fake-time.js';
import { useLockWaitersHarness } from '../../support/lock-waiters-harness.js';

/** Every pause exactly `ms` (no jitter). */
const every = (ms: number) => backoffRetry({ minMs: ms, maxMs: ms, jitter: 0 });

/** 30 days: beyond `setTimeout`'s range (about 24.8 days), which Node would fire after 1 ms. */
const THIRTY_DAYS_MS = 2_592_000_000;

describe('LockWaiters: waiters that leave', () => {
  const harness = useLockWaitersHarness();

  describe('when waitMs runs out', () => {
    it('resolves undefined at waitMs, not before, and leaves no waiter, key or timer behind', async () => {
      const { server } = harness;
      const locks = harness.make(every(1000));
      server.holdElsewhere('k');
      const waiting = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 150 }));
      await advance(149);
      expect(waiting.state).toBe('pending');
      await advance(1);
      expect(waiting.state).toBe('resolved');
      expect(waiting.value).toBeUndefined();
      expect(locks.size).toBe(0);
      expect(vi.getTimerCount()).toBe(0);
    });

    it('resolves at waitMs even while its attempt is still in flight', async () => {
      const { server } = harness;
      server.latencyMs = 200;
      const locks = harness.make();
      server.holdElsewhere('k');
      const waiting = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 50 }));
      await advance(50);
      expect(waiting.state).toBe('resolved');
      expect(waiting.value).toBeUndefined();
      await advance(150);
      expect(locks.size).toBe(0);
    });

    it('hands over to the next waiter, which attempts at once rather than after a pause', async () => {
      const { server } = harness;
      server.latencyMs = 30;
      const locks = harness.make(every(1000));
      server.holdElsewhere('k');
      const startedAt = performance.now();
      const head = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 60 }));
      const next = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 5000 }));
      await advance(59);
      // Freed behind the queue's back: only an attempt at once sees it before a 1000 ms pause.
      server.free('k');
      await advance(1);
      expect(head.state).toBe('resolved');
      expect(head.value).toBeUndefined();
      await advance(30);
      expect(next.value?.key).toBe('k');
      expect(server.attempts.map(({ at }) => at - startedAt)).toStrictEqual([0, 60]);
    });
  });

  describe('long waits', () => {
    it('a 30-day waitMs is still waiting after 1 ms and after a day', async () => {
      const { server } = harness;
      const locks = harness.make();
      server.holdElsewhere('k');
      const waiting = observe(locks.acquire('k', { leaseMs: 1000, waitMs: THIRTY_DAYS_MS }));
      await advance(1);
      expect(waiting.state).toBe('pending');
      await advance(DAY_MS);
      expect(waiting.state).toBe('pending');
    });

    it('a 30-day waitMs ends after 30 days, not before', async () => {
      const { server } = harness;
      const locks = harness.make();
      server.holdElsewhere('k');
      const waiting = observe(locks.acquire('k', { leaseMs: 1000, waitMs: THIRTY_DAYS_MS }));
      await advance(THIRTY_DAYS_MS - 1);
      expect(waiting.state).toBe('pending');
      await advance(1);
      expect(waiting.state).toBe('resolved');
      expect(waiting.value).toBeUndefined();
      expect(locks.size).toBe(0);
    });

    it('looks again when a 30-day lease held elsewhere lapses (a long sleep ends on time)', async () => {
      const { server } = harness;
      const locks = harness.make(wakeUpRetry());
      server.holdElsewhere('k', THIRTY_DAYS_MS);
      const waiting = observe(locks.acquire('k', { leaseMs: 1000, waitMs: Infinity }));
      await advance(DAY_MS);
      expect(server.attemptsOn('k')).toBe(1);
      await advance(THIRTY_DAYS_MS - DAY_MS);
      expect(waiting.value?.key).toBe('k');
      expect(server.attemptsOn('k')).toBe(2);
    });

    it('attempts when a 30-day lease held here lapses unreleased', async () => {
      const { server } = harness;
      const locks = harness.make(wakeUpRetry());
      await locks.acquire('k', { leaseMs: THIRTY_DAYS_MS, waitMs: 0 });
      const waiting = observe(locks.acquire('k', { leaseMs: 1000, waitMs: Infinity }));
      await advance(DAY_MS);
      expect(server.attemptsOn('k')).toBe(1);
      await advance(THIRTY_DAYS_MS - DAY_MS);
      expect(waiting.value?.key).toBe('k');
      expect(server.attemptsOn('k')).toBe(2);
    });

    it('waitMs Infinity keeps no timer: the waiter leaves by winning, abort or close', async () => {
      const { server } = harness;
      const locks = harness.make(wakeUpRetry());
      server.holdElsewhere('k');
      const controller = new AbortController();
      const waiting = observe(locks.acquire('k', { leaseMs: 1000, waitMs: Infinity, signal: controller.signal }));
      await advance(THIRTY_DAYS_MS * 10);
      expect(waiting.state).toBe('pending');
      expect(vi.getTimerCount()).toBe(0);
      controller.abort(new Error('enough'));
      await flush();
      expect(waiting.state).toBe('rejected');
    });
  });

  describe('abort', () => {
    it('rejects with signal.reason at once while the head sleeps, leaving no waiter, key, timer or listener', async () => {
      const { server } = harness;
      const locks = harness.make(every(1000));
      server.holdElsewhere('k');
      const controller = new AbortController();
      const waiting = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 5000, signal: controller.signal }));
      await advance(20);
      const reason = new Error('stop');
      controller.abort(reason);
      await flush();
      expect(waiting.state).toBe('rejected');
      expect(waiting.error).toBe(reason);
      expect(locks.size).toBe(0);
      expect(vi.getTimerCount()).toBe(0);
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
      expect(server.attemptsOn('k')).toBe(1);
    });

    it('rejects with signal.reason at once even while its attempt is in flight', async () => {
      const { server } = harness;
      server.latencyMs = 200;
      const locks = harness.make();
      server.holdElsewhere('k');
      const controller = new AbortController();
      const waiting = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 5000, signal: controller.signal }));
      await advance(20);
      const reason = new Error('give up');
      controller.abort(reason);
      await flush();
      expect(waiting.error).toBe(reason);
      await advance(180);
      expect(locks.size).toBe(0);
      expect(vi.getTimerCount()).toBe(0);
    });

    it('rejects with the reason of a signal already aborted, without attempting', async () => {
      const { server } = harness;
      const locks = harness.make();
      const reason = new Error('already');
      await expect(locks.acquire('k', { leaseMs: 1000, waitMs: 5000, signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
      await expect(locks.acquire('k', { leaseMs: 1000, waitMs: 0, signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
      expect(server.attempts).toHaveLength(0);
      expect(locks.size).toBe(0);
    });

    it('lets a waiter behind the head leave; the head and the rest keep their order', async () => {
      const { server } = harness;
      const locks = harness.make(wakeUpRetry());
      const held = (await locks.acquire('k', { leaseMs: 0, waitMs: 0 })) as Lease;
      const controller = new AbortController();
      const order: string[] = [];
      const queue = ['a', 'b', 'c'].map((name) =>
        observe(
          locks.acquire('k', { leaseMs: 0, waitMs: 5000, ...(name === 'b' ? { signal: controller.signal } : {}) }).then(async (lease) => {
            order.push(name);
            await locks.release(lease as Lease);
          }),
        ),
      );
      controller.abort(new Error('b leaves'));
      await locks.release(held);
      await flush();
      expect(order).toStrictEqual(['a', 'c']);
      expect(queue.map(({ state }) => state)).toStrictEqual(['resolved', 'rejected', 'resolved']);
      expect(locks.size).toBe(0);
      expect(server.attempts).toHaveLength(3);
    });

    it('leaves the queue at once: a zero wait right after it attempts, not blocked by the waiter that left', async () => {
      const { server } = harness;
      server.latencyMs = 50;
      const locks = harness.make();
      server.holdElsewhere('k');
      const controller = new AbortController();
      const waiting = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 5000, signal: controller.signal }));
      await advance(10);
      controller.abort(new Error('give up'));
      server.free('k');
      const once = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 0 }));
      await advance(50);
      expect(waiting.state).toBe('rejected');
      expect(once.value?.key).toBe('k');
    });

    it('removes its abort listener once it has won', async () => {
      const locks = harness.make();
      const controller = new AbortController();
      const lease = await locks.acquire('k', { leaseMs: 1000, waitMs: 5000, signal: controller.signal });
      expect(lease).toBeDefined();
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    });
  });

  describe('give-back of a lease won after its waiter left', () => {
    it('gives back through protocol.release a lease won by an attempt in flight when the waiter aborted', async () => {
      const { server } = harness;
      server.latencyMs = 100;
      const locks = harness.make();
      const controller = new AbortController();
      const waiting = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 5000, signal: controller.signal }));
      await advance(20);
      controller.abort(new Error('give up'));
      await advance(80 + 100);
      expect(waiting.state).toBe('rejected');
      expect(server.releases).toHaveLength(1);
      expect(server.releases[0]).toMatchObject({ key: 'k', fencingToken: 1n });
      expect(server.holderOf('k')).toBeUndefined();
      expect(locks.size).toBe(0);
      expect(harness.giveBackWarnings()).toHaveLength(0);
    });

    it('gives back a lease won by an attempt in flight when the wait ran out', async () => {
      const { server } = harness;
      server.latencyMs = 100;
      const locks = harness.make();
      const waiting = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 50 }));
      await advance(50);
      expect(waiting.state).toBe('resolved');
      expect(waiting.value).toBeUndefined();
      await advance(50 + 100);
      expect(server.releases.map(({ fencingToken }) => fencingToken)).toStrictEqual([1n]);
      expect(server.holderOf('k')).toBeUndefined();
      expect(locks.size).toBe(0);
    });

    it('gives back the lease of a waitMs 0 attempt whose signal aborted meanwhile, and rejects with the reason', async () => {
      const { server } = harness;
      server.latencyMs = 100;
      const locks = harness.make();
      const controller = new AbortController();
      const reason = new Error('give up');
      const once = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 0, signal: controller.signal }));
      await advance(20);
      controller.abort(reason);
      await advance(80 + 100);
      expect(once.error).toBe(reason);
      expect(server.releases).toHaveLength(1);
      expect(server.holderOf('k')).toBeUndefined();
    });

    it('reports a failing give-back as exactly one LATCHKEY_GIVE_BACK_FAILED warning, and throws nothing', async () => {
      const { server } = harness;
      server.latencyMs = 100;
      server.releaseFailure = new Error('connection reset');
      const locks = harness.make();
      const controller = new AbortController();
      const reason = new Error('give up');
      const waiting = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 5000, signal: controller.signal }));
      await advance(20);
      controller.abort(reason);
      await advance(80 + 100);
      expect(waiting.error).toBe(reason);
      const warnings = harness.giveBackWarnings();
      expect(warnings).toHaveLength(1);
      const [message] = warnings[0] as [string];
      expect(message).toContain('FakeBackend');
      expect(message).toContain('"k"');
      expect(message).toContain('connection reset');
      expect(locks.size).toBe(0);
    });
  });

  describe('attempt errors', () => {
    it('reject only the head with its error; the next waiter attempts and wins', async () => {
      const { server } = harness;
      const failure = new Error('server down');
      server.attemptFailures.push(failure);
      const locks = harness.make();
      const first = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 5000 }));
      const second = observe(locks.acquire('k', { leaseMs: 1000, waitMs: 5000 }));
      await flush();
      expect(first.error).toBe(failure);
      expect(second.value?.key).toBe('k');
      expect(server.attempts).toHaveLength(2);
    });

    it('reject a waitMs 0 acquire with the error, leaving nothing behind', async () => {
      const { server } = harness;
      const failure = new Error('server down');
      server.attemptFailures.push(failure);
      const locks = harness.make();
      await expect(locks.acquire('k', { leaseMs: 1000, waitMs: 0 })).rejects.toBe(failure);
      expect(locks.size).toBe(0);
      expect(await locks.acquire('k', { leaseMs: 1000, waitMs: 0 })).toBeDefined();
    });
  });
});

describe('LockWaiters: long waits in real time', () => {
  it('a 30-day waitMs is still pending after 50 ms (an over-range timer would fire after 1 ms)', async () => {
    const server = new FakeLockProtocol();
    server.holdElsewhere('k');
    const locks = new LockWaiters({ name: 'FakeBackend', protocol: server, retry: wakeUpRetry() });
    const startedAt = performance.now();
    const waiting = observe(locks.acquire('k', { leaseMs: 1000, waitMs: THIRTY_DAYS_MS }));
    await sleep(50);
    const elapsedMs = performance.now() - startedAt;
    expect(waiting.state, `settled within ${elapsedMs.toFixed(1)} ms`).toBe('pending');
    await locks.close();
    expect(waiting.state).toBe('rejected');
  });
});
