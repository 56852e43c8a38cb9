import { describe, it } from 'vitest';
import type { ConformanceEnvironment } from './environment.js';
import { readLagSince, watchEventLoopLag } from './event-loop-lag.js';
import { Harness } from './harness.js';
import { describeAttempt, NOT_APPLICABLE, TIMINGS_META_KEY, type AttemptTiming, type CheckTimings } from './run-environment.js';
import { since } from './timing.js';

/** The body of one check; it gets a fresh {@link Harness} that is disposed when it ends. */
export type CheckBody = (h: Harness) => Promise<void> | void;

/** Registers checks with the environment's time limit and concurrency. */
export interface Checks {
  /** A check that always applies. */
  check(name: string, body: CheckBody): void;
  /**
   * A check that applies unless `reason` is given; otherwise it is registered as skipped with a
   * name that says why, so the report never hides it.
   */
  checkUnless(reason: string | undefined, name: string, body: CheckBody): void;
  /** A `describe` of related checks (concurrent when the environment runs checks concurrently). */
  section(name: string, register: () => void): void;
}

/** Limits how many checks run at once (vitest's own limit, `maxConcurrency`, also applies). */
class Gate {
  #running = 0;
  readonly #queue: (() => void)[] = [];

  constructor(readonly limit: number) {}

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.#running >= this.limit) await new Promise<void>((resolve) => this.#queue.push(resolve));
    this.#running += 1;
    try {
      return await work();
    } finally {
      this.#running -= 1;
      this.#queue.shift()?.();
    }
  }
}

const gates = new WeakMap<ConformanceEnvironment, Gate>();

/** Runs `body` once with a fresh harness, then disposes it; a body failure wins over a cleanup failure. */
async function attempt(env: ConformanceEnvironment, body: CheckBody): Promise<void> {
  const harness = new Harness(env);
  let failed = false;
  try {
    await body(harness);
  } catch (error) {
    failed = true;
    await harness.dispose().catch((cleanup: unknown) => {
      console.warn(`latchkey-conformance: cleaning up after a failed check also failed: ${messageOf(cleanup)}`);
    });
    throw error;
  } finally {
    if (!failed) await harness.dispose();
  }
}

/**
 * Runs a check. Lease and expiry checks rely on timers firing roughly on time; when a check
 * fails while this process's event loop was stalled by something OUTSIDE the backend (CPU
 * starvation, the test's own work — see event-loop-lag.ts for how lag is attributed) longer
 * than the tolerance, it is run again, up to {@link STALL_RETRIES} times. Lag the backend's own
 * calls cause never earns a retry: a backend that blocks the event loop and answers wrongly
 * fails, however often it would pass when re-run. A check that passes on a re-run is recorded
 * as flaky (with every attempt's timings) for the report, not passed silently; a check that
 * fails has its attempts' timings appended to its failure message.
 */
async function runCheck(env: ConformanceEnvironment, body: CheckBody, meta?: Record<string, unknown>): Promise<void> {
  const stop = watchEventLoopLag();
  const attempts: AttemptTiming[] = [];
  const { lagToleranceMs } = env.timings;
  const record = (flaky: boolean): void => {
    if (meta !== undefined) meta[TIMINGS_META_KEY] = { attempts, flaky, lagToleranceMs } satisfies CheckTimings;
  };
  try {
    for (let retries = 0; ; retries++) {
      const startedAt = performance.now();
      try {
        await attempt(env, body);
        const lag = readLagSince(startedAt);
        attempts.push({ outcome: 'passed', durationMs: since(startedAt), outsideLagMs: lag.outsideMs, totalLagMs: lag.totalMs });
        record(retries > 0);
        return;
      } catch (error) {
        const lag = readLagSince(startedAt);
        attempts.push({
          outcome: 'failed',
          durationMs: since(startedAt),
          outsideLagMs: lag.outsideMs,
          totalLagMs: lag.totalMs,
          message: messageOf(error),
        });
        if (retries >= STALL_RETRIES || lag.outsideMs < lagToleranceMs) {
          record(false);
          throw withTimings(error, attempts, lagToleranceMs);
        }
      }
    }
  } finally {
    stop();
  }
}

/** How often a check that failed during an event-loop stall from outside the backend is run again. */
const STALL_RETRIES = 2;

/** The failure with every attempt's timings appended to its message. */
function withTimings(error: unknown, attempts: readonly AttemptTiming[], lagToleranceMs: number): unknown {
  const lines = attempts.map((timing, index) => `  ${describeAttempt(timing, index)}`);
  const note =
    `\n[timings] ${lines.length === 1 ? 'not re-run' : `re-run ${lines.length - 1} time(s), failed every time`} ` +
    `(a failed attempt is re-run only after ${lagToleranceMs} ms or more of event-loop lag from outside the backend's calls):\n${lines.join('\n')}`;
  if (error instanceof Error) {
    error.message += note;
    return error;
  }
  return new Error(`${messageOf(error)}${note}`, { cause: error });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** {@link Checks} bound to `env`. */
export function checksFor(env: ConformanceEnvironment): Checks {
  const { testTimeoutMs, concurrency } = env.timings;
  let gate = gates.get(env);
  if (gate === undefined) gates.set(env, (gate = new Gate(concurrency)));
  const register = concurrency > 1 ? it.concurrent : it;
  const run = gate;
  const check = (name: string, body: CheckBody): void => {
    register(name, (context) => run.run(() => runCheck(env, body, context.task.meta as Record<string, unknown>)), testTimeoutMs);
  };
  return {
    check,
    section: (name, registerChecks) => (concurrency > 1 ? describe.concurrent : describe)(name, registerChecks),
    checkUnless: (reason, name, body) => {
      if (reason === undefined) check(name, body);
      else it.skip(`${name}${NOT_APPLICABLE}${reason}`, () => runCheck(env, body));
    },
  };
}
