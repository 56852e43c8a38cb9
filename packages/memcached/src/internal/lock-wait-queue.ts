/** First and longest pause between a waiter's attempts, in ms. */
export const MIN_POLL_MS = 5;
export const MAX_POLL_MS = 100;

interface Waiter<L> {
  readonly attempt: () => Promise<L | undefined>;
  readonly waitMs: number;
  readonly deadline: number;
  readonly resolve: (lease: L | undefined) => void;
  readonly reject: (reason: unknown) => void;
  done: boolean;
  delayMs: number;
  /** A release in this process happened during the current attempt: do not pause after it. */
  woken: boolean;
  /** Ends the current pause early, while pausing. */
  interrupt: (() => void) | undefined;
  cleanup: () => void;
}

/**
 * Waiting for locks without a server-side queue: memcached has no blocking commands or
 * pub/sub, so waiters of one key in this process form a FIFO queue in which only the head
 * polls the server, pausing 5 ms, 10 ms, … up to 100 ms between attempts (never past its
 * `waitMs`). A release made in this process wakes the head at once. Waiters in other
 * processes find the key free on their next poll.
 */
export class LockWaitQueue<L> {
  readonly #queues = new Map<string, Waiter<L>[]>();
  readonly #abandon: (lease: L) => void;

  /** @param abandon - Hands back a lease that was won after its waiter gave up. */
  constructor(abandon: (lease: L) => void) {
    this.#abandon = abandon;
  }

  /**
   * Takes the lock with `attempt` (one try against the server: the lease, or `undefined`
   * when someone else holds it), in arrival order among this process's waiters for `key`.
   * Resolves `undefined` when `waitMs` runs out (at once, without trying, when `waitMs` is 0
   * and others are already waiting here); rejects with `signal.reason` when `signal` aborts
   * and with the attempt's error when an attempt fails.
   */
  acquire(key: string, attempt: () => Promise<L | undefined>, waitMs: number, signal: AbortSignal | undefined): Promise<L | undefined> {
    if (signal?.aborted === true) return Promise.reject(signal.reason);
    let queue = this.#queues.get(key);
    if (queue !== undefined && queue.length > 0 && waitMs <= 0) return Promise.resolve(undefined);
    if (queue === undefined) {
      queue = [];
      this.#queues.set(key, queue);
    }
    const line = queue;
    return new Promise<L | undefined>((resolve, reject) => {
      const waiter: Waiter<L> = {
        attempt,
        waitMs,
        deadline: performance.now() + waitMs,
        resolve,
        reject,
        done: false,
        delayMs: MIN_POLL_MS,
        woken: false,
        interrupt: undefined,
        cleanup: () => undefined,
      };
      const timer = waitMs > 0 ? setTimeout(() => this.#finish(key, waiter, () => resolve(undefined)), waitMs) : undefined;
      const onAbort = (): void => this.#finish(key, waiter, () => reject(signal?.reason));
      signal?.addEventListener('abort', onAbort, { once: true });
      waiter.cleanup = () => {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        waiter.interrupt?.();
      };
      line.push(waiter);
      if (line[0] === waiter) void this.#run(key, waiter);
    });
  }

  /** A lock of `key` was released in this process: the head waiter tries again now. */
  wake(key: string): void {
    const head = this.#queues.get(key)?.[0];
    if (head === undefined) return;
    head.delayMs = MIN_POLL_MS;
    if (head.interrupt !== undefined) head.interrupt();
    else head.woken = true;
  }

  /** Rejects every waiter with `reason` and clears every timer. */
  close(reason: unknown): void {
    for (const [key, queue] of [...this.#queues]) {
      for (const waiter of [...queue]) this.#finish(key, waiter, () => waiter.reject(reason));
    }
  }

  /** Number of keys with waiters (for leak checks). */
  get size(): number {
    return this.#queues.size;
  }

  async #run(key: string, waiter: Waiter<L>): Promise<void> {
    while (!waiter.done) {
      waiter.woken = false;
      let lease: L | undefined;
      try {
        lease = await waiter.attempt();
      } catch (error) {
        this.#finish(key, waiter, () => waiter.reject(error));
        return;
      }
      if (waiter.done) {
        if (lease !== undefined) this.#abandon(lease);
        return;
      }
      if (lease !== undefined) {
        const won = lease;
        this.#finish(key, waiter, () => waiter.resolve(won));
        return;
      }
      const remaining = waiter.deadline - performance.now();
      if (waiter.waitMs <= 0 || remaining <= 0) {
        this.#finish(key, waiter, () => waiter.resolve(undefined));
        return;
      }
      if (!waiter.woken) {
        await this.#pause(waiter, Math.min(waiter.delayMs, remaining));
        waiter.delayMs = Math.min(waiter.delayMs * 2, MAX_POLL_MS);
      }
    }
  }

  #pause(waiter: Waiter<L>, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        waiter.interrupt = undefined;
        resolve();
      }, ms);
      waiter.interrupt = () => {
        clearTimeout(timer);
        waiter.interrupt = undefined;
        resolve();
      };
    });
  }

  #finish(key: string, waiter: Waiter<L>, settle: () => void): void {
    if (waiter.done) return;
    waiter.done = true;
    waiter.cleanup();
    const queue = this.#queues.get(key);
    if (queue !== undefined) {
      const wasHead = queue[0] === waiter;
      const index = queue.indexOf(waiter);
      if (index >= 0) queue.splice(index, 1);
      if (queue.length === 0) this.#queues.delete(key);
      else if (wasHead) void this.#run(key, queue[0] as Waiter<L>);
    }
    settle();
  }
}
