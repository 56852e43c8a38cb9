/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** Milliseconds since `startedAt` (a `performance.now()` reading). */
export function since(startedAt: number): number {
  return performance.now() - startedAt;
}

/**
 * Polls `probe` every `intervalMs` until it resolves `true`, and resolves `true`; resolves
 * `false` once `withinMs` has passed without it. Used to wait for an effect that may arrive at
 * any time up to a declared bound (backend expiry resolution, a lease lapsing).
 */
export async function eventually(probe: () => boolean | Promise<boolean>, withinMs: number, intervalMs = 20): Promise<boolean> {
  const deadline = performance.now() + withinMs;
  for (;;) {
    if (await probe()) return true;
    if (performance.now() >= deadline) return false;
    await sleep(Math.min(intervalMs, deadline - performance.now()));
  }
}

/** The outcome of `work` without throwing: `{ ok, value }` or `{ ok: false, error }`. */
export type Settled<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown };

/** Awaits `work` (a promise, or a function that may also throw synchronously) and reports how it settled. */
export async function settle<T>(work: Promise<T> | (() => T | Promise<T>)): Promise<Settled<T>> {
  try {
    return { ok: true, value: await (typeof work === 'function' ? work() : work) };
  } catch (error) {
    return { ok: false, error };
  }
}

/**
 * Like {@link settle}, but resolves `'hung'` when `work` has not settled within `ms`, so a
 * check can report a call that never settles instead of running into its time limit.
 */
export function settleWithin<T>(work: Promise<T> | (() => T | Promise<T>), ms: number): Promise<Settled<T> | 'hung'> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<'hung'>((resolve) => {
    timer = setTimeout(() => resolve('hung'), ms);
  });
  return Promise.race([settle(work), hung]).finally(() => clearTimeout(timer));
}

/**
 * Thirty days, as a `waitMs`: longer than the longest delay `setTimeout` honours (about 24.8
 * days), which Node replaces by 1 ms — a backend that hands it to a timer unclamped gives up
 * at once instead of waiting.
 */
export const THIRTY_DAYS_MS = 2_592_000_000;
