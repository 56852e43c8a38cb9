/**
 * Abort: acquires aborted at random moments settle within 50 ms with the signal's reason and
 * leave no lock, timer or abort listener behind.
 *
 * @module
 */
import { describe, expect, it } from 'vitest';
import { record, summarize } from '../stats.js';
import type { SuiteContext } from '../context.js';
import { ABORT_SETTLE_MS } from '../worker/commands.js';

/** Registers the abort scenario. */
export function defineAbortTests(context: SuiteContext): void {
  const { profile, kind } = context;

  describe('abort', () => {
    it(
      `settles ${profile.abortTrials} randomly aborted acquires within ${ABORT_SETTLE_MS} ms, leaving no lock, timer or listener behind`,
      { timeout: 180_000 },
      async () => {
        const [worker] = context.cluster().workers;
        if (worker === undefined) throw new Error('needs a worker');
        const report = await worker.call('aborts', {
          prefix: 'abort:',
          trials: profile.abortTrials,
          concurrency: profile.abortConcurrency,
          maxDelayMs: 20,
          lockTimeoutMs: 10_000,
        });
        const settle = summarize(report.settleMs);
        record(kind, 'abort', {
          ...report,
          settleMs: settle,
          overFiftyMsWallClock: report.settleMs.filter((ms) => ms > ABORT_SETTLE_MS).length,
        });
        expect(report.trials).toBe(profile.abortTrials);
        expect(report.wonBeforeAbort + report.rejectedWithReason).toBe(profile.abortTrials);
        expect(report.otherOutcomes).toEqual({});
        // Wall-clock time alone would blame the library for the OS descheduling the worker: a
        // trial that settled in the abort's own event-loop turn was prompt by construction.
        expect(report.lateSettles).toEqual([]);
        expect(report.locksLeftBehind).toBe(0);
        expect(report.listenersLeftBehind).toBe(0);
        expect(report.timersLeftBehind, `timers left behind, created at: ${report.timerOrigins.join(' | ')}`).toBe(0);
        // Half the trials waited on a held key: those can only end by the abort.
        expect(report.rejectedWithReason).toBeGreaterThanOrEqual(report.waiting);
      },
    );
  });
}
