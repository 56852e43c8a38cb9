import { BackendTimeoutError } from '@latchkey/core';

/** What a running operation can ask of its runner. */
export interface Operation {
  /** Throws when the operation already settled (deadline passed, or the backend closed). */
  check(): void;
}

/** Thrown inside an operation that continues after it settled; never reaches a caller. */
class OperationOverError extends Error {}

/**
 * Runs backend calls under a deadline: every call settles within `timeoutMs` whatever the
 * driver does (memjs can leave a request pending forever when a server dies), and close
 * settles every call still running.
 */
export class OperationRunner {
  readonly #timeoutMs: number;
  readonly #open = new Set<(error: unknown) => void>();

  /** @param timeoutMs - The deadline of each call. */
  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  /**
   * Runs `work`, rejecting with {@link BackendTimeoutError} when it has not settled within the
   * deadline. Multi-step work should call `op.check()` between steps so it stops sending
   * requests once the caller has been answered.
   *
   * @param onLate - Receives a result `work` produced after the call had already settled
   *   (for example a lock won just after the deadline), so it can be undone.
   */
  run<T>(what: string, work: (op: Operation) => Promise<T>, onLate?: (value: T) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const finish = (settle: () => void): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.#open.delete(cancel);
        settle();
      };
      const cancel = (error: unknown): void => finish(() => reject(error));
      const timer = setTimeout(() => {
        finish(() =>
          reject(new BackendTimeoutError(`MemcachedBackend: ${what} did not settle within ${this.#timeoutMs} ms.`, this.#timeoutMs)),
        );
      }, this.#timeoutMs);
      this.#open.add(cancel);
      const op: Operation = {
        check: () => {
          if (done) throw new OperationOverError('operation already settled');
        },
      };
      let pending: Promise<T>;
      try {
        pending = work(op);
      } catch (error) {
        pending = Promise.reject(error);
      }
      pending.then(
        (value) => {
          if (done) onLate?.(value);
          else finish(() => resolve(value));
        },
        (error: unknown) => finish(() => reject(error)),
      );
    });
  }

  /** Rejects every running call with `error` and clears their timers. */
  cancelAll(error: unknown): void {
    for (const cancel of [...this.#open]) cancel(error);
  }

  /** Number of calls running (for leak checks). */
  get size(): number {
    return this.#open.size;
  }
}
