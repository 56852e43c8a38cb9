import { BackendError, BackendTimeoutError, LatchkeyError } from '../errors.js';
import { MAX_TIMER_MS } from './timers.js';

/**
 * Settles `work` within `timeoutMs`: rejects with {@link BackendTimeoutError} when the deadline
 * passes first, and wraps any non-latchkey rejection in {@link BackendError}. A backstop over
 * backends' own deadlines, so even a third-party backend that hangs cannot hang the caller.
 *
 * When `signal` is given, its abort rejects at once with `signal.reason`, unwrapped, even if
 * `work` is slow to notice; the caller must then clean up whatever `work` still produces.
 */
export function withDeadline<T>(work: Promise<T>, timeoutMs: number, what: string, signal?: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const finish = (): boolean => {
      if (settled) return false;
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      return true;
    };
    const onAbort = (): void => {
      if (finish()) reject(signal?.reason);
    };
    const timer =
      timeoutMs > MAX_TIMER_MS
        ? undefined
        : setTimeout(() => {
            if (finish()) reject(new BackendTimeoutError(`${what} did not settle within ${timeoutMs} ms.`, timeoutMs));
          }, timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        if (finish()) resolve(value);
      },
      (error: unknown) => {
        if (finish()) reject(wrap(error, what, signal));
      },
    );
  });
}

/** Wraps a non-latchkey rejection in {@link BackendError}; latchkey errors and the abort reason pass unchanged. */
export function wrap(error: unknown, what: string, signal?: AbortSignal): unknown {
  if (error instanceof LatchkeyError || (signal?.aborted === true && error === signal.reason)) return error;
  return new BackendError(`${what} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}
