/**
 * Contention: many processes incrementing one key under its lock lose no update, and the
 * fencing tokens order the writes exactly as the values do.
 *
 * @module
 */
import { describe, expect, it } from 'vitest';
import { share } from '../profiles.js';
import { record, summarize } from '../stats.js';
import type { SuiteContext } from '../context.js';
import type { IncrementReport } from '../worker/commands.js';
import type { Outcome } from '../worker/outcome.js';

interface Combined {
  successes: number;
  attempts: number;
  failures: Record<Outcome, number>;
  releaseFailures: Record<Outcome, number>;
  acquireMs: number[];
  writes: [string, number][];
}

function combine(reports: readonly IncrementReport[]): Combined {
  const all: Combined = { successes: 0, attempts: 0, failures: {}, releaseFailures: {}, acquireMs: [], writes: [] };
  for (const report of reports) {
    all.successes += report.successes;
    all.attempts += report.attempts;
    for (const [outcome, count] of Object.entries(report.failures)) all.failures[outcome] = (all.failures[outcome] ?? 0) + count;
    for (const [outcome, count] of Object.entries(report.releaseFailures))
      all.releaseFailures[outcome] = (all.releaseFailures[outcome] ?? 0) + count;
    all.acquireMs.push(...report.acquireMs);
    all.writes.push(...report.writes);
  }
  return all;
}

/** Values written in fencing-token order; strictly 1, 2, 3, … when the lock serialised every increment. */
function valuesInFencingOrder(writes: readonly [string, number][]): number[] {
  return [...writes].sort((a, b) => (BigInt(a[0]) < BigInt(b[0]) ? -1 : BigInt(a[0]) > BigInt(b[0]) ? 1 : 0)).map(([, value]) => value);
}

/** Registers the contention scenarios. */
export function defineContentionTests(context: SuiteContext): void {
  const { profile, kind } = context;
  const processes = profile.processes;

  describe('contention', () => {
    it(
      `keeps ${profile.increments} lock-protected increments by ${processes} processes × ${profile.workersPerProcess} workers exact, run after run (${profile.contentionRuns} runs)`,
      { timeout: 240_000 },
      async () => {
        const workers = context.cluster().workers.slice(0, processes);
        const perProcess = share(profile.increments, processes);
        const finals: number[] = [];
        const durations: number[] = [];
        const acquireMs: number[] = [];
        let retried = 0;
        for (let run = 0; run < profile.contentionRuns; run += 1) {
          const key = `contention:${run}`;
          const started = performance.now();
          const reports = await Promise.all(
            workers.map((worker, i) =>
              worker.call('increment', {
                key,
                perWorker: share(perProcess[i] as number, profile.workersPerProcess),
                waitMs: 30_000,
                retry: true,
              }),
            ),
          );
          durations.push(performance.now() - started);
          const all = combine(reports);
          const [read] = await (workers[0] as (typeof workers)[number]).call('read', { keys: [key] });
          expect(read?.outcome).toBe('ok');
          finals.push(read?.value as number);
          expect(all.successes).toBe(profile.increments);
          expect(read?.value).toBe(profile.increments);
          expect(valuesInFencingOrder(all.writes)).toEqual(Array.from({ length: profile.increments }, (_, i) => i + 1));
          expect(Object.keys(all.releaseFailures)).toEqual([]);
          retried += all.attempts - all.successes;
          acquireMs.push(...all.acquireMs);
        }
        expect(finals).toEqual(Array.from({ length: profile.contentionRuns }, () => profile.increments));
        record(kind, 'contention', {
          processes,
          workersPerProcess: profile.workersPerProcess,
          increments: profile.increments,
          runs: profile.contentionRuns,
          finals,
          retriedAttempts: retried,
          runMs: summarize(durations),
          incrementsPerSecond: Math.round(profile.increments / (summarize(durations).median / 1000)),
          acquireWaitMs: summarize(acquireMs),
        });
      },
    );

    it(
      `loses no update among ${profile.waiters} waiters doing ${profile.waiterIncrements} increments: ≥ 99.9 % acquired within ${profile.waiterWaitMs} ms, every failure a LockAcquireTimeoutError`,
      { timeout: 240_000 },
      async () => {
        const workers = context.cluster().workers.slice(0, processes);
        const key = 'waiters';
        const perProcessWaiters = share(profile.waiters, processes);
        const perProcessIncrements = share(profile.waiterIncrements, processes);
        const started = performance.now();
        const reports = await Promise.all(
          workers.map((worker, i) =>
            worker.call('increment', {
              key,
              perWorker: share(perProcessIncrements[i] as number, perProcessWaiters[i] as number),
              waitMs: profile.waiterWaitMs,
              retry: false,
            }),
          ),
        );
        const elapsed = performance.now() - started;
        const all = combine(reports);
        const [read] = await (workers[0] as (typeof workers)[number]).call('read', { keys: [key] });
        const final = read?.outcome === 'ok' ? (read.value as number) : 0;
        record(kind, 'waiters', {
          waiters: profile.waiters,
          attempts: all.attempts,
          successes: all.successes,
          failures: all.failures,
          final,
          successRate: all.successes / all.attempts,
          elapsedMs: Math.round(elapsed),
          acquireWaitMs: summarize(all.acquireMs),
        });
        expect(all.attempts).toBe(profile.waiterIncrements);
        expect(final).toBe(all.successes);
        expect(valuesInFencingOrder(all.writes)).toEqual(Array.from({ length: all.successes }, (_, i) => i + 1));
        expect(Object.keys(all.failures).filter((outcome) => outcome !== 'LOCK_ACQUIRE_TIMEOUT')).toEqual([]);
        expect(all.successes / all.attempts).toBeGreaterThanOrEqual(0.999);
      },
    );
  });
}
