/**
 * The locked-increment case shared by the memory and Redis suites: many concurrent workers
 * each read a counter, add one and write it back under a lock. A correct lock loses no
 * update; the control contender (no lock) shows that the check can fail.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import type { Contender, MetricSpec, RoundMetrics, RoundSample } from '../harness/index.js';
import { median } from '../harness/index.js';

/** What a locked increment reports about its critical section. */
export interface CriticalSection {
  /** Call right after the lock was acquired (before reading the counter). */
  enter(): void;
  /** Call right before releasing the lock (after writing the counter). */
  exit(): void;
}

/** One way of incrementing a shared counter. */
export interface Incrementer {
  readonly name: string;
  readonly does: string;
  readonly unavailable?: string;
  /** Sets the counter to 0 (outside the timed part). */
  reset(): Promise<void>;
  /** The counter's current value. */
  read(): Promise<number>;
  /** One increment; calls `section.enter()` / `section.exit()` around the locked part. */
  increment(section: CriticalSection): Promise<void>;
}

/**
 * Counts the server commands `work` causes (for example with Redis `MONITOR`), given the
 * number of increments that succeeded. Returns the per-increment metrics.
 */
export type CommandCounter = (work: () => Promise<number>) => Promise<RoundMetrics>;

/** The extra columns of a locked-increment case. */
export const INCREMENT_METRICS: readonly MetricSpec[] = [
  { key: 'lost', label: 'lost updates', aggregate: 'sum' },
  { key: 'acquireFailures', label: 'failed acquisitions', aggregate: 'sum' },
  { key: 'handoffP50', label: 'handoff p50 ms', aggregate: 'median', digits: 3 },
];

/** The command-count columns, for servers that can count (filled by the untimed counting pass). */
export const COMMAND_METRICS: readonly MetricSpec[] = [
  { key: 'commandsPerOp', label: 'cmds sent / increment', aggregate: 'median', digits: 2 },
  { key: 'commandsAllPerOp', label: 'cmds incl. script-internal / increment', aggregate: 'median', digits: 2 },
];

/** Increments in the untimed counting pass (two per worker at 128 workers). */
export const COUNTING_INCREMENTS = 256;

/**
 * Measures the gap between one holder leaving the critical section and the next one
 * entering it: with many waiters queued this is the lock's handoff latency.
 */
class HandoffTracker {
  #lastExit: number | undefined;
  #gaps: number[] = [];

  enter(): void {
    const now = performance.now();
    if (this.#lastExit !== undefined) this.#gaps.push(now - this.#lastExit);
    this.#lastExit = undefined;
  }

  exit(): void {
    this.#lastExit = performance.now();
  }

  p50(): number {
    return this.#gaps.length === 0 ? Number.NaN : median(this.#gaps);
  }

  reset(): void {
    this.#lastExit = undefined;
    this.#gaps = [];
  }
}

const IGNORED_SECTION: CriticalSection = { enter: () => undefined, exit: () => undefined };

/**
 * Runs `total` increments with `workers` in flight, untimed.
 *
 * @returns How many succeeded.
 */
async function runIncrements(incrementer: Incrementer, workers: number, total: number): Promise<number> {
  let started = 0;
  let succeeded = 0;
  const worker = async (): Promise<void> => {
    while (started < total) {
      started++;
      // A failed increment is part of what is counted (its commands were sent); the
      // timed rounds report failures.
      await incrementer.increment(IGNORED_SECTION).then(
        () => succeeded++,
        () => undefined,
      );
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
  return succeeded;
}

/**
 * A contender that runs `incrementer` and reports lost updates, failed acquisitions and
 * handoff latency per round, and (with `countCommands`) the server commands per increment
 * from a separate untimed pass of {@link COUNTING_INCREMENTS} increments by `workers`.
 */
export function incrementContender(incrementer: Incrementer, workers: number, countCommands?: CommandCounter): Contender {
  if (incrementer.unavailable !== undefined)
    return { name: incrementer.name, does: incrementer.does, unavailable: incrementer.unavailable };
  const tracker = new HandoffTracker();
  let acquireFailures = 0;
  return {
    name: incrementer.name,
    does: incrementer.does,
    beforeRound: async () => {
      await incrementer.reset();
      tracker.reset();
      acquireFailures = 0;
    },
    op: async () => {
      let acquired = false;
      try {
        await incrementer.increment({
          enter: () => {
            acquired = true;
            tracker.enter();
          },
          exit: () => tracker.exit(),
        });
      } catch (error) {
        if (!acquired) acquireFailures++;
        throw error;
      }
    },
    afterRound: async (sample: RoundSample): Promise<RoundMetrics> => {
      const final = await incrementer.read();
      return { lost: sample.ops - final, acquireFailures, handoffP50: tracker.p50() };
    },
    ...(countCommands === undefined
      ? {}
      : {
          probeMetrics: async () => {
            await incrementer.reset();
            return countCommands(() => runIncrements(incrementer, workers, COUNTING_INCREMENTS));
          },
        }),
  };
}
