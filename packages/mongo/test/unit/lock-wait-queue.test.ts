import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { Lease } from '@latchkey/core';
import { LockWaitQueue, type PollOptions } from '../../src/internal/lock-wait-queue.js';

/** A one-key stand-in for the server: a holder or none, with a round trip of `latencyMs`. */
class FakeLock {
  holder: string | undefined;
  readonly attemptsBy = new Map<string, number>();
  readonly released: Lease[] = [];
  #fence = 0n;

  constructor(readonly latencyMs = 1) {}

  attempt(who: string): () => Promise<Lease | undefined> {
    return async () => {
      this.attemptsBy.set(who, (this.attemptsBy.get(who) ?? 0) + 1);
      await sleep(this.latencyMs);
      if (this.holder !== undefined) return undefined;
      this.holder = who;
      return { key: 'k', token: who, fencingToken: ++this.#fence };
    };
  }

  release = async (lease: Lease): Promise<boolean> => {
    this.released.push(lease);
    if (this.holder !== lease.token) return false;
    this.holder = undefined;
    return true;
  };

  attempts(who: string): number {
    return this.attemptsBy.get(who) ?? 0;
  }
}

const queues: LockWaitQueue[] = [];
function queueFor(lock: FakeLock, poll: PollOptions = { minMs: 10, maxMs: 40 }): LockWaitQueue {
  const queue = new LockWaitQueue(lock.release, poll);
  queues.push(queue);
  return queue;
}

afterEach(async () => {
  for (const queue of queues.splice(0)) {
    queue.close(new Error('test over'));
    await queue.drain();
  }
});

/** Releases the fake lock the way the backend does: on the server, then wakes the local head. */
async function releaseLocally(queue: LockWaitQueue, lock: FakeLock, lease: Lease): Promise<void> {
  await lock.release(lease);
  queue.notifyReleased('k');
}

describe('LockWaitQueue', () => {
  describe('order', () => {
    it('serves the waiters of this process in arrival order', async () => {
      const lock = new FakeLock();
      lock.holder = 'outsider';
      const queue = queueFor(lock);
      const order: string[] = [];
      const waits = ['a', 'b', 'c'].map((who) =>
        queue.wait('k', lock.attempt(who), 5000, undefined).then(async (lease) => {
          order.push(who);
          await sleep(5);
          if (lease !== undefined) await releaseLocally(queue, lock, lease);
        }),
      );
      await sleep(30);
      lock.holder = undefined;
      queue.notifyReleased('k');
      await Promise.all(waits);
      expect(order).toEqual(['a', 'b', 'c']);
    });

    it('lets only the head of the queue ask the server', async () => {
      const lock = new FakeLock();
      lock.holder = 'outsider';
      const queue = queueFor(lock);
      const first = queue.wait('k', lock.attempt('head'), 5000, undefined);
      const second = queue.wait('k', lock.attempt('behind'), 5000, undefined);
      await sleep(120);
      expect(lock.attempts('head')).toBeGreaterThan(1);
      expect(lock.attempts('behind')).toBe(0);
      expect(queue.size('k')).toBe(2);
      lock.holder = undefined;
      queue.notifyReleased('k');
      const lease = await first;
      expect(lease?.token).toBe('head');
      await releaseLocally(queue, lock, lease as Lease);
      expect((await second)?.token).toBe('behind');
    });

    it('keeps keys independent', async () => {
      const lock = new FakeLock();
      lock.holder = 'outsider';
      const other = new FakeLock();
      const queue = queueFor(lock);
      const blocked = queue.wait('k', lock.attempt('a'), 2000, undefined);
      const free = await queue.wait('other', other.attempt('b'), 2000, undefined);
      expect(free?.token).toBe('b');
      expect(queue.size('k')).toBe(1);
      lock.holder = undefined;
      queue.notifyReleased('k');
      expect((await blocked)?.token).toBe('a');
    });
  });

  describe('polling', () => {
    it('wakes the head at once on a release in this process, whatever its pause', async () => {
      const lock = new FakeLock();
      lock.holder = 'outsider';
      const queue = queueFor(lock, { minMs: 5000, maxMs: 5000 });
      const waiting = queue.wait('k', lock.attempt('a'), 10_000, undefined);
      await sleep(20);
      lock.holder = undefined;
      const releasedAt = performance.now();
      queue.notifyReleased('k');
      expect((await waiting)?.token).toBe('a');
      expect(performance.now() - releasedAt).toBeLessThan(100);
    });

    it('backs off exponentially up to the cap', async () => {
      const lock = new FakeLock(0);
      lock.holder = 'outsider';
      const queue = queueFor(lock, { minMs: 10, maxMs: 40 });
      const waiting = queue.wait('k', lock.attempt('a'), 400, undefined);
      expect(await waiting).toBeUndefined();
      // Pauses of 5–10, 10–20, 20–40 and then 20–40 ms: between 10 and 22 tries in 400 ms,
      // where a fixed 10 ms poll would make 40.
      expect(lock.attempts('a')).toBeGreaterThanOrEqual(8);
      expect(lock.attempts('a')).toBeLessThanOrEqual(24);
    });

    it('never pauses past waitMs', async () => {
      const lock = new FakeLock();
      lock.holder = 'outsider';
      const queue = queueFor(lock, { minMs: 5000, maxMs: 5000 });
      const startedAt = performance.now();
      expect(await queue.wait('k', lock.attempt('a'), 100, undefined)).toBeUndefined();
      expect(performance.now() - startedAt).toBeGreaterThanOrEqual(95);
      expect(performance.now() - startedAt).toBeLessThan(400);
    });
  });

  describe('waitMs 0', () => {
    it('tries exactly once', async () => {
      const lock = new FakeLock();
      lock.holder = 'outsider';
      const queue = queueFor(lock);
      expect(await queue.wait('k', lock.attempt('a'), 0, undefined)).toBeUndefined();
      expect(lock.attempts('a')).toBe(1);
    });

    it('takes a free lease', async () => {
      const lock = new FakeLock();
      const queue = queueFor(lock);
      expect((await queue.wait('k', lock.attempt('a'), 0, undefined))?.token).toBe('a');
    });

    it('does not try while others of this process are waiting (they are first in line)', async () => {
      const lock = new FakeLock();
      lock.holder = 'outsider';
      const queue = queueFor(lock);
      const waiting = queue.wait('k', lock.attempt('a'), 2000, undefined);
      await sleep(5);
      lock.holder = undefined;
      expect(await queue.wait('k', lock.attempt('b'), 0, undefined)).toBeUndefined();
      expect(lock.attempts('b')).toBe(0);
      queue.notifyReleased('k');
      expect((await waiting)?.token).toBe('a');
    });
  });

  describe('timeouts', () => {
    it('settles a waiter behind the head at its own deadline', async () => {
      const lock = new FakeLock();
      lock.holder = 'outsider';
      const queue = queueFor(lock);
      const head = queue.wait('k', lock.attempt('head'), 5000, undefined);
      const startedAt = performance.now();
      expect(await queue.wait('k', lock.attempt('behind'), 80, undefined)).toBeUndefined();
      expect(performance.now() - startedAt).toBeLessThan(300);
      expect(queue.size('k')).toBe(1);
      lock.holder = undefined;
      queue.notifyReleased('k');
      expect((await head)?.token).toBe('head');
    });

    it('hands over to the next waiter, which tries at once, when the head times out', async () => {
      const lock = new FakeLock(30);
      lock.holder = 'outsider';
      const queue = queueFor(lock, { minMs: 1000, maxMs: 1000 });
      const head = queue.wait('k', lock.attempt('head'), 60, undefined);
      const next = queue.wait('k', lock.attempt('next'), 5000, undefined);
      expect(await head).toBeUndefined();
      // Freed behind the queue's back (no notifyReleased): only a try at once can see it
      // before the next waiter's first 1000 ms pause.
      lock.holder = undefined;
      const handedOverAt = performance.now();
      expect((await next)?.token).toBe('next');
      expect(performance.now() - handedOverAt).toBeLessThan(300);
    });
  });

  describe('abort', () => {
    it('rejects with signal.reason at once, even mid-try', async () => {
      const lock = new FakeLock(200);
      lock.holder = 'outsider';
      const queue = queueFor(lock);
      const controller = new AbortController();
      const reason = new Error('give up');
      const waiting = queue.wait('k', lock.attempt('a'), 5000, controller.signal);
      await sleep(20);
      const abortedAt = performance.now();
      controller.abort(reason);
      await expect(waiting).rejects.toBe(reason);
      expect(performance.now() - abortedAt).toBeLessThan(50);
    });

    it('gives back a lease that a try on its way won after the abort', async () => {
      const lock = new FakeLock(100);
      const queue = queueFor(lock);
      const controller = new AbortController();
      const waiting = queue.wait('k', lock.attempt('a'), 5000, controller.signal);
      await sleep(20);
      controller.abort(new Error('give up'));
      await expect(waiting).rejects.toThrow('give up');
      await queue.drain();
      expect(lock.released.map((lease) => lease.token)).toEqual(['a']);
      expect(lock.holder).toBeUndefined();
    });

    it('rejects an already-aborted signal without asking the server', async () => {
      const lock = new FakeLock();
      const queue = queueFor(lock);
      const reason = new Error('already');
      await expect(queue.wait('k', lock.attempt('a'), 1000, AbortSignal.abort(reason))).rejects.toBe(reason);
      expect(lock.attempts('a')).toBe(0);
    });

    it('leaves the queue at once, so a try right after is not blocked by the aborted waiter', async () => {
      const lock = new FakeLock(50);
      lock.holder = 'outsider';
      const queue = queueFor(lock);
      const controller = new AbortController();
      const waiting = queue.wait('k', lock.attempt('a'), 5000, controller.signal);
      await sleep(10);
      controller.abort(new Error('give up'));
      await expect(waiting).rejects.toThrow('give up');
      expect(queue.size('k')).toBe(0);
      lock.holder = undefined;
      expect((await queue.wait('k', lock.attempt('b'), 0, undefined))?.token).toBe('b');
    });
  });

  describe('errors and close', () => {
    it('rejects the head with the error of its try and lets the next waiter try', async () => {
      const lock = new FakeLock();
      const queue = queueFor(lock);
      const failure = new Error('server down');
      const failing = queue.wait('k', () => Promise.reject(failure), 1000, undefined);
      const next = queue.wait('k', lock.attempt('next'), 1000, undefined);
      await expect(failing).rejects.toBe(failure);
      expect((await next)?.token).toBe('next');
    });

    it('close rejects every waiter and every later wait with its reason', async () => {
      const lock = new FakeLock();
      lock.holder = 'outsider';
      const queue = queueFor(lock);
      const reason = new Error('closed');
      const waits = [queue.wait('k', lock.attempt('a'), 5000, undefined), queue.wait('k', lock.attempt('b'), 5000, undefined)];
      await sleep(5);
      queue.close(reason);
      for (const waiting of waits) await expect(waiting).rejects.toBe(reason);
      await expect(queue.wait('k', lock.attempt('c'), 0, undefined)).rejects.toBe(reason);
      await queue.drain();
      expect(lock.attempts('b')).toBe(0);
      expect(lock.attempts('c')).toBe(0);
    });
  });
});
