import type { Lease } from '@latchkey/core';

const MAX_TIMER_MS = 2_147_483_647;

/** One try at the lease on the server: the lease, or `undefined` when someone holds it. */
export type LeaseAttempt = () => Promise<Lease | undefined>;

/** How the head of a queue polls the server. */
export interface PollOptions {
  /** First pause between tries, in ms. */
  readonly minMs: number;
  /** Longest pause between tries, in ms (the pause doubles up to here). */
  readonly maxMs: number;
}

interface Waiter {
  readonly attempt: LeaseAttempt;
  readonly deadline: number;
  readonly resolve: (lease: Lease | undefined) => void;
  readonly reject: (reason: unknown) => void;
  readonly cleanup: () => void;
  settled: boolean;
  timedOut: boolean;
  /** A release happened while no pause was running: skip the next pause. */
  wakePending: boolean;
  /** Ends the current pause early. */
  wake: (() => void) | undefined;
}

/**
 * The waiters of this process for the per-key leases of one backend, in arrival order. Only
 * the head of each key's queue asks the server, with capped exponential backoff (plus jitter,
 * so processes do not poll in step); a release from this process wakes the head at once.
 * Waiters behind the head never touch the server, so N local waiters cost one poller.
 *
 * Deadlines: no try starts after a waiter's `waitMs` has passed and no pause runs past it;
 * a try already on its way is awaited (it is bounded by the backend's operation deadline).
 * An abort settles at once with `signal.reason`; a lease won by a try that was on its way
 * is handed back.
 */
export class LockWaitQueue {
  readonly #queues = new Map<string, Waiter[]>();
  readonly #release: (lease: Lease) => Promise<unknown>;
  readonly #pollOptions: PollOptions;
  /** Running head loops and give-backs, so {@link drain} can wait for them. */
  readonly #running = new Set<Promise<unknown>>();
  #closedWith: { reason: unknown } | undefined;

  /**
   * @param release - Gives back a lease won after its waiter had already left.
   * @param poll - The head's polling pauses.
   */
  constructor(release: (lease: Lease) => Promise<unknown>, poll: PollOptions) {
    this.#release = release;
    this.#pollOptions = poll;
  }

  /** Number of waiters queued for `key` in this process. */
  size(key: string): number {
    return this.#queues.get(key)?.length ?? 0;
  }

  /**
   * Takes the lease on `key` with `attempt`, waiting behind earlier waiters of this process
   * and polling for up to `waitMs`. `waitMs: 0` tries once, and not at all when others of
   * this process are already waiting (they are first in line).
   */
  wait(key: string, attempt: LeaseAttempt, waitMs: number, signal: AbortSignal | undefined): Promise<Lease | undefined> {
    if (this.#closedWith !== undefined) return Promise.reject(this.#closedWith.reason);
    if (signal?.aborted === true) return Promise.reject(signal.reason);
    const queue = this.#queues.get(key) ?? [];
    if (waitMs === 0 && queue.length > 0) return Promise.resolve(undefined);
    this.#queues.set(key, queue);

    return new Promise<Lease | undefined>((resolve, reject) => {
      const onAbort = (): void => this.#settle(key, waiter, { error: signal?.reason });
      // Beyond setTimeout's range (about 24.8 days) the wait is endless: waiters leave by
      // winning, by abort or by close.
      const timer = waitMs > 0 && waitMs <= MAX_TIMER_MS ? setTimeout(() => this.#timeUp(key, waiter), waitMs) : undefined;
      const waiter: Waiter = {
        attempt,
        deadline: performance.now() + waitMs,
        resolve,
        reject,
        cleanup: () => {
          if (timer !== undefined) clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
        },
        settled: false,
        timedOut: waitMs === 0,
        wakePending: false,
        wake: undefined,
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      queue.push(waiter);
      if (queue.length === 1) this.#start(key, waiter, true);
    });
  }

  /** A lease on `key` was let go in this process: the head of its queue tries at once. */
  notifyReleased(key: string): void {
    const head = this.#queues.get(key)?.[0];
    if (head === undefined) return;
    if (head.wake !== undefined) head.wake();
    else head.wakePending = true;
  }

  /** Rejects every waiter with `reason`; later calls to {@link wait} reject with it too. */
  close(reason: unknown): void {
    this.#closedWith = { reason };
    for (const [key, queue] of this.#queues) {
      for (const waiter of [...queue]) this.#settle(key, waiter, { error: reason });
    }
  }

  /**
   * Resolves once no head loop is running and every give-back has been sent (after
   * {@link close}, in-flight tries settle within the backend's operation deadline).
   */
  async drain(): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled([...this.#running]);
  }

  #start(key: string, waiter: Waiter, tryFirst: boolean): void {
    this.#track(this.#run(key, waiter, tryFirst));
  }

  #track(work: Promise<unknown>): void {
    this.#running.add(work);
    void work.finally(() => this.#running.delete(work));
  }

  /**
   * The poll loop of a queue's head. The waiter leaves the queue as soon as it settles (see
   * {@link #settle}); the loop may outlive it by a try already on its way.
   */
  async #run(key: string, waiter: Waiter, tryFirst: boolean): Promise<void> {
    try {
      await this.#pollUntilSettled(key, waiter, tryFirst);
    } catch (error) {
      this.#settle(key, waiter, { error });
    }
  }

  async #pollUntilSettled(key: string, waiter: Waiter, tryFirst: boolean): Promise<void> {
    let pause = this.#pollOptions.minMs;
    for (let tryNow = tryFirst; ; tryNow = false) {
      if (!tryNow) {
        if (waiter.wakePending) {
          waiter.wakePending = false;
          pause = this.#pollOptions.minMs;
        } else if (!waiter.timedOut) {
          const jittered = pause * (0.5 + Math.random() / 2);
          const woken = await this.#pause(waiter, Math.min(jittered, waiter.deadline - performance.now()));
          pause = woken ? this.#pollOptions.minMs : Math.min(pause * 2, this.#pollOptions.maxMs);
        }
        if (waiter.settled) return;
        if (waiter.timedOut || performance.now() >= waiter.deadline) {
          this.#settle(key, waiter, { lease: undefined });
          return;
        }
      }
      let lease: Lease | undefined;
      try {
        lease = await waiter.attempt();
      } catch (error) {
        this.#settle(key, waiter, { error });
        return;
      }
      if (lease !== undefined) {
        if (waiter.settled) this.#giveBack(lease);
        else this.#settle(key, waiter, { lease });
        return;
      }
      if (waiter.settled) return;
    }
  }

  /** Pauses `ms`; resolves `true` when woken early (by a release, a timeout or an abort). */
  #pause(waiter: Waiter, ms: number): Promise<boolean> {
    // setTimeout truncates to whole ms: round up so a pause capped at the deadline reaches it.
    const delay = Math.max(0, Math.ceil(ms));
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        waiter.wake = undefined;
        resolve(false);
      }, delay);
      waiter.wake = () => {
        clearTimeout(timer);
        waiter.wake = undefined;
        resolve(true);
      };
    });
  }

  #timeUp(key: string, waiter: Waiter): void {
    waiter.timedOut = true;
    // The head settles in its loop, after a try already on its way; the others at once.
    if (this.#queues.get(key)?.[0] === waiter) waiter.wake?.();
    else this.#settle(key, waiter, { lease: undefined });
  }

  /**
   * Settles a waiter and takes it out of its queue at once. When it was the head, the next
   * waiter becomes head now (its loop runs beside any try the old head still has on its way):
   * after a win it pauses first, since the key is held and the release will wake it; after a
   * timeout, abort or error it tries at once.
   */
  #settle(key: string, waiter: Waiter, outcome: { lease: Lease | undefined } | { error: unknown }): void {
    if (waiter.settled) return;
    waiter.settled = true;
    waiter.cleanup();
    const queue = this.#queues.get(key);
    const index = queue?.indexOf(waiter) ?? -1;
    if (queue !== undefined && index >= 0) {
      queue.splice(index, 1);
      const next = queue[0];
      if (next === undefined) this.#queues.delete(key);
      else if (index === 0 && this.#closedWith === undefined) this.#start(key, next, !('lease' in outcome && outcome.lease !== undefined));
    }
    // A head that is pausing stops now, so its loop ends.
    waiter.wake?.();
    if ('error' in outcome) waiter.reject(outcome.error);
    else waiter.resolve(outcome.lease);
  }

  #giveBack(lease: Lease): void {
    this.#track(
      this.#release(lease).catch((error: unknown) => {
        // Nobody is left to tell: the waiter has gone. A lease that lapses lapses by itself;
        // one that never lapses would stay, so say so.
        process.emitWarning(
          `latchkey: MongoBackend could not give back a lock on "${lease.key}" won after its waiter left: ${error instanceof Error ? error.message : String(error)}`,
          { code: 'LATCHKEY_MONGO_RELEASE_FAILED' },
        );
      }),
    );
  }
}
