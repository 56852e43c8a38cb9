import { BackendTimeoutError } from '@latchkey/core';
import { toLatchkeyError } from './errors.js';

/**
 * Runs one driver call under a deadline: rejects with {@link BackendTimeoutError} when
 * `timeoutMs` passes first (and aborts `signal`, which the driver honours for reads), and maps
 * driver failures to latchkey errors. A failure that arrives after the deadline is dropped.
 * The timer is always cleared, so nothing is left behind once the call settles.
 *
 * The driver (7.x) has no per-operation deadline of its own for writes, and its socket and
 * server-selection timeouts do not bound a call whose server stalls: this is what makes
 * every call settle.
 */
export function withDeadline<T>(what: string, timeoutMs: number, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const controller = new AbortController();
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      const error = new BackendTimeoutError(`${what} did not settle within ${timeoutMs} ms.`, timeoutMs);
      controller.abort(error);
      reject(error);
    }, timeoutMs);
    let pending: Promise<T>;
    try {
      pending = work(controller.signal);
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then(
      (value) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(toLatchkeyError(error, what, timeoutMs));
      },
    );
  });
}
