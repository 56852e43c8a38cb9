import { afterEach, describe, expect, it } from 'vitest';
import { LockWaitQueue, MAX_POLL_MS } from '../../src/internal/lock-wait-queue.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A fake server lock: one holder at a time, attempts recorded with their time. */
class FakeLock {
  holder: string | undefined;
  readonly attempts: { who: string; at: number }[] = [];
  #next = 0;

  attempt(who: string): () => Promise<string | undefined> {
    return async () => {
      this.attempts.push({ who, at: performance.now() });
      await sleep(1);
      if (this.holder !== undefined) return undefined;
      this.holder = `${who}#${(this.#next += 1)}`;
      return this.holder;
    };
  }
}

describe('LockWaitQueue', () => {
  const abandoned: string[] = [];
  let queue = new LockWaitQueue<string>((lease) => abandoned.push(lease));
  afterEach(() => {
    queue.close(new Error('test over'));
    expect(queue.size).toBe(0);
    abandoned.length = 0;
    queue = new LockWaitQueue<string>((lease) => abandoned.push(lease));
  });

  it('tries once and answers at once when waitMs is 0', async () => {
    const lock = new FakeLock();
    lock.holder = 'other';
    expect(await queue.acquire('k', lock.attempt('a'), 0, undefined)).toBeUndefined();
    expect(lock.attempts).toHaveLength(1);
  });

  it('does not jump the local queue with a zero wait', async () => {
    const lock = new FakeLock();
    lock.holder = 'other';
    const waiting = queue.acquire('k', lock.attempt('a'), 1000, undefined);
    expect(await queue.acquire('k', lock.attempt('b'), 0, undefined)).toBeUndefined();
    expect(lock.attempts.map(({ who }) => who)).not.toContain('b');
    lock.holder = undefined;
    queue.wake('k');
    expect(await waiting).toMatch(/^a#/);
  });

  it('serves local waiters in arrival order, and only the head polls', async () => {
    const lock = new FakeLock();
    lock.holder = 'other';
    const order: string[] = [];
    const waits = ['a', 'b', 'c'].map((who) =>
      queue.acquire('k', lock.attempt(who), 5000, undefined).then((lease) => {
        order.push(who);
        return lease;
      }),
    );
    await sleep(60);
    expect(new Set(lock.attempts.map(({ who }) => who))).toStrictEqual(new Set(['a']));
    for (let i = 0; i < 3; i++) {
      lock.holder = undefined;
      queue.wake('k');
      await waits[i];
    }
    expect(order).toStrictEqual(['a', 'b', 'c']);
  });

  it('backs off from 5 ms and never pauses longer than 100 ms', async () => {
    const lock = new FakeLock();
    lock.holder = 'other';
    const waiting = queue.acquire('k', lock.attempt('a'), 900, undefined);
    expect(await waiting).toBeUndefined();
    const gaps = lock.attempts.slice(1).map(({ at }, i) => at - (lock.attempts[i] as { at: number }).at);
    // Timers run late on a busy machine, so the bounds leave room; the attempt count is what
    // a 5, 10, 20, 40, 80, 100, 100, … ms schedule gives in 900 ms.
    expect(gaps[0]).toBeLessThan(5 + 60);
    expect(Math.max(...gaps)).toBeLessThan(MAX_POLL_MS + 150);
    expect(lock.attempts.length).toBeGreaterThanOrEqual(8);
  });

  it('resolves undefined when the wait runs out, promptly', async () => {
    const lock = new FakeLock();
    lock.holder = 'other';
    const startedAt = performance.now();
    expect(await queue.acquire('k', lock.attempt('a'), 150, undefined)).toBeUndefined();
    expect(performance.now() - startedAt).toBeLessThan(150 + 60);
  });

  it('wakes the head at once when a lock is released in this process', async () => {
    const lock = new FakeLock();
    lock.holder = 'other';
    const waiting = queue.acquire('k', lock.attempt('a'), 5000, undefined);
    await sleep(400);
    lock.holder = undefined;
    const releasedAt = performance.now();
    queue.wake('k');
    await waiting;
    expect(performance.now() - releasedAt).toBeLessThan(30);
  });

  it('rejects with the abort reason promptly and hands back a lease won meanwhile', async () => {
    const lock = new FakeLock();
    const controller = new AbortController();
    let release!: () => void;
    const slow = (): Promise<string> => new Promise((resolve) => (release = () => resolve('late-lease')));
    const waiting = queue.acquire('k', slow, 5000, controller.signal);
    const reason = new Error('stop');
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    release();
    await sleep(5);
    expect(abandoned).toStrictEqual(['late-lease']);
    expect(lock.holder).toBeUndefined();
  });

  it('rejects at once for a signal that is already aborted, without trying', async () => {
    const lock = new FakeLock();
    const reason = new Error('already');
    await expect(queue.acquire('k', lock.attempt('a'), 1000, AbortSignal.abort(reason))).rejects.toBe(reason);
    expect(lock.attempts).toHaveLength(0);
  });

  it('passes on an attempt error and lets the next waiter go on', async () => {
    const lock = new FakeLock();
    const failure = new Error('server down');
    const first = queue.acquire('k', () => Promise.reject(failure), 1000, undefined);
    const second = queue.acquire('k', lock.attempt('b'), 1000, undefined);
    await expect(first).rejects.toBe(failure);
    expect(await second).toMatch(/^b#/);
  });

  it('rejects every waiter on close', async () => {
    const lock = new FakeLock();
    lock.holder = 'other';
    const waits = [queue.acquire('k', lock.attempt('a'), 5000, undefined), queue.acquire('j', lock.attempt('b'), 5000, undefined)];
    const reason = new Error('closed');
    queue.close(reason);
    for (const waiting of waits) await expect(waiting).rejects.toBe(reason);
  });
});
