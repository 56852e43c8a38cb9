import type { Lease } from '@latchkey/core';
import { afterEach, describe, expect, it } from 'vitest';
import { LockQueue, type AttemptResult } from '../../src/internal/lock-queue.js';

/** A stand-in for the Redis side of one key: one holder with a lease, counting attempts. */
class FakeLockServer {
  holder: { token: string; until: number } | undefined;
  attempts = 0;
  fence = 0n;
  failNext: Error | undefined;
  latencyMs = 0;
  #next = 0;

  /** Decides at once (like the server running the script), answers after `latencyMs`. */
  readonly attempt = async (leaseMs: number): Promise<AttemptResult> => {
    this.attempts += 1;
    const result = this.#decide(leaseMs);
    await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
    if (result instanceof Error) throw result;
    return result;
  };

  #decide(leaseMs: number): AttemptResult | Error {
    if (this.failNext !== undefined) {
      const error = this.failNext;
      this.failNext = undefined;
      return error;
    }
    const now = performance.now();
    if (this.holder !== undefined && this.holder.until > now)
      return { retryInMs: this.holder.until === Infinity ? Infinity : this.holder.until - now };
    this.fence += 1n;
    const token = `t${++this.#next}`;
    this.holder = { token, until: leaseMs === 0 ? Infinity : now + leaseMs };
    return { lease: { key: 'k', token, fencingToken: this.fence } };
  }

  release(lease: Lease): boolean {
    if (this.holder?.token !== lease.token) return false;
    this.holder = undefined;
    return true;
  }
}

const queues: LockQueue[] = [];

function setup(listening = true): { queue: LockQueue; server: FakeLockServer; discarded: Lease[] } {
  const server = new FakeLockServer();
  const discarded: Lease[] = [];
  const queue: LockQueue = new LockQueue({
    releases: { listening, listen: () => Promise.resolve(listening) },
    discard: (lease) => {
      discarded.push(lease);
      queue.released('k', lease.token, server.release(lease));
    },
  });
  queues.push(queue);
  return { queue, server, discarded };
}

function releaseHere(queue: LockQueue, server: FakeLockServer, lease: Lease): void {
  queue.released('k', lease.token, server.release(lease));
}

afterEach(() => {
  for (const queue of queues.splice(0)) queue.close(new Error('test over'));
});

describe('LockQueue', () => {
  it('lets only the head ask the server: one attempt per hand-over, however many wait', async () => {
    const { queue, server } = setup();
    const order: number[] = [];
    const holders = Array.from({ length: 32 }, (_, i) =>
      queue.acquire('k', server.attempt, { leaseMs: 10_000, waitMs: 10_000 }).then((lease) => {
        order.push(i);
        return lease;
      }),
    );
    for (let i = 0; i < 32; i++) {
      const lease = await holders[i];
      expect(lease).toBeDefined();
      releaseHere(queue, server, lease as Lease);
    }
    expect(order).toEqual(Array.from({ length: 32 }, (_, i) => i));
    expect(server.attempts).toBe(32);
    expect(queue.size).toBe(0);
  });

  it('wakes the head when a release is heard from elsewhere', async () => {
    const { queue, server } = setup();
    server.holder = { token: 'remote', until: performance.now() + 60_000 };
    const waiting = queue.acquire('k', server.attempt, { leaseMs: 1_000, waitMs: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(server.attempts).toBe(1);
    server.holder = undefined;
    const heardAt = performance.now();
    queue.notify('k');
    const lease = await waiting;
    expect(lease?.fencingToken).toBe(1n);
    expect(performance.now() - heardAt).toBeLessThan(50);
    expect(server.attempts).toBe(2);
  });

  it("looks again when the holder's lease lapses, without any release", async () => {
    const { queue, server } = setup();
    server.holder = { token: 'crashed', until: performance.now() + 60 };
    const lease = await queue.acquire('k', server.attempt, { leaseMs: 1_000, waitMs: 5_000 });
    expect(lease).toBeDefined();
    expect(server.attempts).toBe(2);
  });

  it('retries at once when a release is heard while an attempt is in flight', async () => {
    const { queue, server } = setup();
    server.latencyMs = 30;
    server.holder = { token: 'remote', until: Infinity };
    const waiting = queue.acquire('k', server.attempt, { leaseMs: 1_000, waitMs: 5_000 });
    await new Promise((resolve) => setTimeout(resolve, 5));
    server.holder = undefined;
    queue.notify('k');
    expect(await waiting).toBeDefined();
    expect(server.attempts).toBe(2);
  });

  it('resolves undefined when the wait runs out and the queue moves on', async () => {
    const { queue, server } = setup();
    server.holder = { token: 'remote', until: Infinity };
    const started = performance.now();
    expect(await queue.acquire('k', server.attempt, { leaseMs: 1_000, waitMs: 50 })).toBeUndefined();
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(queue.size).toBe(0);
  });

  it('answers a zero wait without asking the server while this process holds the key', async () => {
    const { queue, server } = setup();
    const lease = await queue.acquire('k', server.attempt, { leaseMs: 10_000, waitMs: 0 });
    expect(lease).toBeDefined();
    expect(await queue.acquire('k', server.attempt, { leaseMs: 10_000, waitMs: 0 })).toBeUndefined();
    expect(server.attempts).toBe(1);
    releaseHere(queue, server, lease as Lease);
    expect(await queue.acquire('k', server.attempt, { leaseMs: 10_000, waitMs: 0 })).toBeDefined();
  });

  it('rejects an aborted waiter with the reason and discards a lease won meanwhile', async () => {
    const { queue, server, discarded } = setup();
    server.latencyMs = 40;
    const controller = new AbortController();
    const waiting = queue.acquire('k', server.attempt, { leaseMs: 1_000, waitMs: 5_000, signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 5));
    const reason = new Error('stop');
    const abortedAt = performance.now();
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    expect(performance.now() - abortedAt).toBeLessThan(20);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(discarded).toHaveLength(1);
    expect(server.holder).toBeUndefined();
  });

  it('rejects at once with an already aborted signal', async () => {
    const { queue, server } = setup();
    const reason = new Error('already');
    await expect(queue.acquire('k', server.attempt, { leaseMs: 1, waitMs: 1_000, signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(server.attempts).toBe(0);
  });

  it('fails only the head when its attempt fails, and serves the next waiter', async () => {
    const { queue, server } = setup();
    const failure = new Error('server down');
    server.failNext = failure;
    const first = queue.acquire('k', server.attempt, { leaseMs: 1_000, waitMs: 5_000 });
    const second = queue.acquire('k', server.attempt, { leaseMs: 1_000, waitMs: 5_000 });
    await expect(first).rejects.toBe(failure);
    expect(await second).toBeDefined();
  });

  it('looks again periodically while releases cannot be heard', async () => {
    const { queue, server } = setup(false);
    server.holder = { token: 'remote', until: Infinity };
    const waiting = queue.acquire('k', server.attempt, { leaseMs: 1_000, waitMs: 5_000 });
    await new Promise((resolve) => setTimeout(resolve, 30));
    server.holder = undefined;
    const freedAt = performance.now();
    expect(await waiting).toBeDefined();
    expect(performance.now() - freedAt).toBeLessThan(400);
  });

  it('rejects every waiter on close', async () => {
    const { queue, server } = setup();
    server.holder = { token: 'remote', until: Infinity };
    const waiting = [1, 2, 3].map(() => queue.acquire('k', server.attempt, { leaseMs: 1_000, waitMs: 5_000 }));
    const error = new Error('closed');
    queue.close(error);
    for (const w of waiting) await expect(w).rejects.toBe(error);
  });
});
