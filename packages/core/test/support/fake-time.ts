import { vi } from 'vitest';

/** A promise's outcome as seen so far, read synchronously by tests. */
export interface Observed<T> {
  readonly state: 'pending' | 'resolved' | 'rejected';
  readonly value: T | undefined;
  readonly error: unknown;
}

/**
 * Watches `promise` so a test can assert whether it has settled yet, and how, without awaiting
 * it (which under fake timers would hang while it is pending). It also handles the rejection,
 * so an expected rejection is never reported as unhandled — the test asserts it instead.
 */
export function observe<T>(promise: Promise<T>): Observed<T> {
  const seen: { state: Observed<T>['state']; value: T | undefined; error: unknown } = {
    state: 'pending',
    value: undefined,
    error: undefined,
  };
  promise.then(
    (value) => {
      seen.state = 'resolved';
      seen.value = value;
    },
    (error: unknown) => {
      seen.state = 'rejected';
      seen.error = error;
    },
  );
  return seen;
}

/** Moves the fake clock by `ms`, running due timers and every promise chain they start. */
export function advance(ms: number): Promise<void> {
  return vi.advanceTimersByTimeAsync(ms).then(() => undefined);
}

/** Runs every promise chain and timer due now, without moving the fake clock. */
export function flush(): Promise<void> {
  return advance(0);
}

/** One day, in ms. */
export const DAY_MS = 86_400_000;
