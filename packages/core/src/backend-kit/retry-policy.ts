/**
 * How the head waiter of a key waits between attempts on the server: backoff for backends
 * that must poll, sleep-until-woken for backends that hear releases.
 */

/** What a {@link RetryPolicy} is told after a failed attempt. */
export interface RetryContext {
  /** Failed attempts of the current head waiter in a row, from 1. */
  readonly failures: number;
  /**
   * The holder's lease lapses in this many ms, when the attempt could tell (`Infinity`: it
   * never lapses); `undefined` when it could not.
   */
  readonly retryInMs: number | undefined;
}

/**
 * How long the head waiter sleeps before its next attempt, in ms. `Infinity` sleeps until
 * woken ({@link LockWaiters.wake}, a release in this process, or the waiter leaving). The
 * waiter's own deadline always ends the wait, whatever the policy says.
 */
export type RetryPolicy = (context: RetryContext) => number;

/** Options of {@link backoffRetry}. */
export interface BackoffRetryOptions {
  /** Pause after the first failed attempt, in ms. */
  readonly minMs: number;
  /** Longest pause, in ms; the pause doubles up to here. */
  readonly maxMs: number;
  /**
   * Fraction of each pause taken off at random (0..1), so processes do not poll in step.
   * @default 0.5
   */
  readonly jitter?: number;
}

/**
 * For backends that cannot hear releases from other processes (memcached, SQL without
 * notifications): pauses `minMs`, `2·minMs`, … up to `maxMs`, each shortened by up to
 * `jitter` at random, and never past the holder's lapse when the attempt reported it.
 */
export function backoffRetry(options: BackoffRetryOptions): RetryPolicy {
  const { minMs, maxMs } = options;
  const jitter = options.jitter ?? 0.5;
  return ({ failures, retryInMs }) => {
    const pause = Math.min(maxMs, minMs * 2 ** Math.min(failures - 1, 30)) * (1 - jitter * Math.random());
    return retryInMs === undefined ? pause : Math.min(pause, retryInMs);
  };
}

/** Options of {@link wakeUpRetry}. */
export interface WakeUpRetryOptions {
  /**
   * While this returns `false` releases may go unheard (for example the subscription is
   * down): the head then looks again at least every `fallbackMs`.
   */
  readonly hearing?: () => boolean;
  /** @default 250 */
  readonly fallbackMs?: number;
}

/**
 * For backends that announce releases (Redis pub/sub, PostgreSQL `NOTIFY`): sleep until woken
 * or until the holder's lease lapses, with a bounded fallback poll while releases cannot be
 * heard.
 */
export function wakeUpRetry(options: WakeUpRetryOptions = {}): RetryPolicy {
  const fallbackMs = options.fallbackMs ?? 250;
  const hearing = options.hearing ?? (() => true);
  return ({ retryInMs }) => {
    const untilLapse = retryInMs ?? Infinity;
    return hearing() ? untilLapse : Math.min(untilLapse, fallbackMs);
  };
}
