import { describe, it } from 'vitest';
import type { ConformanceEnvironment } from './environment.js';
import { lagSince, watchEventLoopLag } from './event-loop-lag.js';
import { Harness } from './harness.js';

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
 * fails while this process's event loop was stalled longer than the tolerance (CPU
 * starvation, not the backend), it is run again, up to {@link STALL_RETRIES} times, and says
 * so. A real defect fails every attempt.
 */
async function runCheck(env: ConformanceEnvironment, body: CheckBody): Promise<void> {
  const stop = watchEventLoopLag();
  try {
    for (let retries = 0; ; retries++) {
      const startedAt = performance.now();
      try {
        await attempt(env, body);
        return;
      } catch (error) {
        const lag = lagSince(startedAt);
        if (retries >= STALL_RETRIES || lag < env.timings.lagToleranceMs) throw error;
        console.warn(
          `latchkey-conformance: re-running a check that failed while the event loop stalled ${Math.round(lag)} ms: ${messageOf(error)}`,
        );
      }
    }
  } finally {
    stop();
  }
}

/** How often a check that failed during an event-loop stall is run again. */
const STALL_RETRIES = 2;

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
    register(name, () => run.run(() => runCheck(env, body)), testTimeoutMs);
  };
  return {
    check,
    section: (name, registerChecks) => (concurrency > 1 ? describe.concurrent : describe)(name, registerChecks),
    checkUnless: (reason, name, body) => {
      if (reason === undefined) check(name, body);
      else it.skip(`${name} — not applicable: ${reason}`, () => runCheck(env, body));
    },
  };
}
