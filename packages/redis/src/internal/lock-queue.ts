import type { AcquireLockOptions, Lease } from '@latchkey/core';

/** What one acquire attempt on the server found. */
export type AttemptResult =
  /** The lock was free and is now ours. */
  | { readonly lease: Lease }
  /** Someone holds it; it lapses by itself in this many ms (`Infinity`: never). */
  | { readonly retryInMs: number };

/**
 * One acquire attempt on the server for a key (one script call, under a deadline). Rejects
 * with a latchkey error when the server cannot answer; it then cleans up after itself.
 */
export type Attempt = (leaseMs: number) => Promise<AttemptResult>;

/** The part of the release listener the queue needs. */
export interface ReleaseSignal {
  readonly listening: boolean;
  listen(): Promise<boolean>;
}

/** Host services of {@link LockQueue}. */
export interface LockQueueHost {
  /** Whether releases will be announced to {@link LockQueue.notify}; and how to start hearing them. */
  readonly releases: ReleaseSignal;
  /** Lets go of a lease nobody is waiting for any more (in the background; reports back through {@link LockQueue.released}). */
  discard(lease: Lease): void;
}

/**
 * While releases cannot be heard (the subscription is down), a waiter looks again at least
 * this often.
 */
export const UNHEARD_RELEASE_POLL_MS = 250;

/** The longest delay `setTimeout` honours (longer ones fire at once). */
const MAX_TIMER_MS = 2_147_483_647;

interface Waiter {
  readonly leaseMs: number;
  readonly resolve: (lease: Lease | undefined) => void;
  readonly reject: (reason: unknown) => void;
  done: boolean;
  cleanup: () => void;
}

class KeyQueue {
  readonly waiters: Waiter[] = [];
  /** The head loop is running. */
  running = false;
  /** Bumped by every release heard for this key. */
  epoch = 0;
  /** The key counts as held until `blockedUntil` (monotonic ms) unless `epoch` moves past `blockedEpoch`. */
  blockedEpoch = -1;
  blockedUntil = 0;
  /** Token of the lease this process holds on the key, when it does. */
  holderToken: string | undefined;
  /** Ends the head's current sleep. */
  wake: (() => void) | undefined;

  constructor(readonly attempt: Attempt) {}

  blocked(now: number): boolean {
    return this.blockedEpoch === this.epoch && now < this.blockedUntil;
  }

  /**
   * A live lease of this process holds the key. Nobody else can release it (releases are
   * token-checked), so only its own release or its lapse can free the key: announcements
   * cannot, and are not waited for.
   */
  heldHere(now: number): boolean {
    return this.holderToken !== undefined && this.blocked(now);
  }

  unblock(): void {
    this.epoch += 1;
    this.wake?.();
  }
}

/**
 * The in-process side of Redis locks: per key, a FIFO queue of this process's waiters in
 * which only the head competes on the server. The head sleeps until a release is heard
 * (pub/sub, or a release made in this process), the holder's lease lapses (its PTTL), or its
 * own wait ends — no fixed-interval polling — so a release costs one attempt, not one per
 * waiter.
 */
export class LockQueue {
  readonly #host: LockQueueHost;
  readonly #queues = new Map<string, KeyQueue>();
  #closed = false;

  constructor(host: LockQueueHost) {
    this.#host = host;
  }

  /** Number of keys with waiters or a lease held here (for leak checks). */
  get size(): number {
    return this.#queues.size;
  }

  /**
   * Takes the lock `id` (the data key) with `attempt`, waiting in FIFO order up to
   * `options.waitMs`. Resolves `undefined` when the wait ends; rejects with `signal.reason`
   * on abort (a lease won meanwhile is discarded) or with the attempt's error.
   */
  acquire(id: string, attempt: Attempt, options: AcquireLockOptions): Promise<Lease | undefined> {
    const { leaseMs, waitMs, signal } = options;
    if (this.#closed) return Promise.reject(new Error('LockQueue is closed'));
    if (signal?.aborted) return Promise.reject(signal.reason);
    const queue = this.#queue(id, attempt);
    if (waitMs <= 0) return this.#tryOnce(id, queue, leaseMs);
    return new Promise<Lease | undefined>((resolve, reject) => {
      const waiter: Waiter = { leaseMs, resolve, reject, done: false, cleanup: () => undefined };
      const timer = setTimeout(() => this.#finish(id, queue, waiter, () => resolve(undefined)), Math.min(waitMs, MAX_TIMER_MS));
      const onAbort = (): void => this.#finish(id, queue, waiter, () => reject(signal?.reason));
      signal?.addEventListener('abort', onAbort, { once: true });
      waiter.cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      queue.waiters.push(waiter);
      void this.#run(id, queue);
    });
  }

  /**
   * A lease of this process was released (`outcome` true), found not held (`false`), or the
   * release's outcome is unknown (`undefined`, e.g. a timeout). Wakes the key's head unless
   * nothing changed.
   */
  released(id: string, token: string, outcome: boolean | undefined): void {
    const queue = this.#queues.get(id);
    if (queue === undefined) return;
    const wasHolder = queue.holderToken === token;
    if (wasHolder) queue.holderToken = undefined;
    if (outcome !== false || wasHolder) queue.unblock();
    this.#dropIfIdle(id, queue);
  }

  /** A lease of this process was renewed for `leaseMs` from `startedAt` (or found lost when `renewed` is false). */
  extended(id: string, token: string, leaseMs: number, startedAt: number, renewed: boolean): void {
    const queue = this.#queues.get(id);
    if (queue === undefined || queue.holderToken !== token) return;
    if (!renewed) {
      queue.holderToken = undefined;
      queue.unblock();
      this.#dropIfIdle(id, queue);
    } else if (queue.blockedEpoch === queue.epoch) {
      queue.blockedUntil = leaseMs === 0 ? Infinity : startedAt + leaseMs;
    }
  }

  /** A release of `id` was heard from the server. */
  notify(id: string): void {
    const queue = this.#queues.get(id);
    if (queue !== undefined && !queue.heldHere(performance.now())) queue.unblock();
  }

  /** Releases may have gone unheard: every head looks again. */
  wakeAll(): void {
    const now = performance.now();
    for (const queue of this.#queues.values()) if (!queue.heldHere(now)) queue.unblock();
  }

  /** Rejects every waiter with `error` and forgets every key. Idempotent. */
  close(error: unknown): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const [id, queue] of this.#queues) {
      for (const waiter of [...queue.waiters]) this.#finish(id, queue, waiter, () => waiter.reject(error));
      queue.wake?.();
    }
    this.#queues.clear();
  }

  #queue(id: string, attempt: Attempt): KeyQueue {
    let queue = this.#queues.get(id);
    if (queue === undefined) {
      queue = new KeyQueue(attempt);
      this.#queues.set(id, queue);
    }
    return queue;
  }

  async #tryOnce(id: string, queue: KeyQueue, leaseMs: number): Promise<Lease | undefined> {
    // Waiters here, or a live lease of this process: the key is taken, no need to ask.
    if (queue.waiters.length > 0 || queue.heldHere(performance.now())) {
      this.#dropIfIdle(id, queue);
      return undefined;
    }
    const startedAt = performance.now();
    let result: AttemptResult;
    try {
      result = await queue.attempt(leaseMs);
    } catch (error) {
      this.#dropIfIdle(id, queue);
      throw error;
    }
    if (!('lease' in result)) {
      this.#dropIfIdle(id, queue);
      return undefined;
    }
    if (this.#closed) {
      this.#host.discard(result.lease);
      throw new Error('LockQueue is closed');
    }
    this.#hold(id, queue, result.lease.token, leaseMs, startedAt);
    return result.lease;
  }

  /** The head loop: only the first waiter competes on the server. */
  async #run(id: string, queue: KeyQueue): Promise<void> {
    if (queue.running) return;
    queue.running = true;
    try {
      while (!this.#closed) {
        const head = queue.waiters[0];
        if (head === undefined) break;
        if (queue.blocked(performance.now())) {
          await this.#sleep(queue);
          continue;
        }
        const epoch = queue.epoch;
        const startedAt = performance.now();
        let result: AttemptResult;
        try {
          result = await queue.attempt(head.leaseMs);
        } catch (error) {
          this.#finish(id, queue, head, () => head.reject(error));
          continue;
        }
        if ('lease' in result) {
          this.#hold(id, queue, result.lease.token, head.leaseMs, startedAt);
          if (head.done || this.#closed) this.#host.discard(result.lease);
          else this.#finish(id, queue, head, () => head.resolve(result.lease));
          continue;
        }
        // A release heard while the attempt was in flight may predate our failure: look again.
        if (queue.epoch !== epoch) continue;
        const now = performance.now();
        let until = now + result.retryInMs;
        if (!this.#host.releases.listening) {
          void this.#host.releases.listen();
          until = Math.min(until, now + UNHEARD_RELEASE_POLL_MS);
        }
        queue.blockedEpoch = epoch;
        queue.blockedUntil = until;
      }
    } finally {
      queue.running = false;
      this.#dropIfIdle(id, queue);
    }
  }

  /** Records a lease of this process, on the key's current queue (a new one may have replaced `queue` meanwhile). */
  #hold(id: string, queue: KeyQueue, token: string, leaseMs: number, startedAt: number): void {
    let current = this.#queues.get(id);
    if (current === undefined) {
      current = queue;
      this.#queues.set(id, current);
    }
    current.holderToken = token;
    current.blockedEpoch = current.epoch;
    current.blockedUntil = leaseMs === 0 ? Infinity : startedAt + leaseMs;
  }

  /** Sleeps until woken or the block lapses (the head's own deadline wakes it through {@link #finish}). */
  #sleep(queue: KeyQueue): Promise<void> {
    return new Promise<void>((resolve) => {
      const delay = queue.blockedUntil - performance.now();
      const done = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        if (queue.wake === done) queue.wake = undefined;
        resolve();
      };
      const timer = delay > MAX_TIMER_MS ? undefined : setTimeout(done, Math.max(0, Math.ceil(delay)));
      queue.wake = done;
    });
  }

  #finish(id: string, queue: KeyQueue, waiter: Waiter, settle: () => void): void {
    if (waiter.done) return;
    waiter.done = true;
    waiter.cleanup();
    const index = queue.waiters.indexOf(waiter);
    if (index >= 0) queue.waiters.splice(index, 1);
    settle();
    if (index === 0) queue.wake?.();
    this.#dropIfIdle(id, queue);
  }

  #dropIfIdle(id: string, queue: KeyQueue): void {
    if (queue.running || queue.waiters.length > 0) return;
    if (queue.heldHere(performance.now())) return;
    if (this.#queues.get(id) === queue) this.#queues.delete(id);
  }
}
