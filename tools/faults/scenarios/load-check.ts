/**
 * The settle-and-recover rules shared by the server-restart and network-fault scenarios,
 * checked over the call records of a mixed load.
 *
 * @module
 */
import { expect } from 'vitest';
import { summarize } from '../stats.js';
import type { CallRecord, LoadReport, Stall } from '../worker/commands.js';
import { isTyped, tally } from '../worker/outcome.js';

/** Calls may take this much longer than their deadline (the suite's target, docs/FAULT-TESTS.md). */
export const SETTLE_SLACK_MS = 100;

/** How soon after the fault ends calls must succeed again (the suite's target, docs/FAULT-TESTS.md). */
export const RECOVERY_MS = 3000;

/**
 * Share of calls that must succeed once the recovery window is over. Not 100 %: on a starved
 * machine a slow server (FerretDB runs one command at a time) still times out the odd call.
 * A client that never reconnects, or keeps dropping the connection, falls far below.
 */
export const RECOVERED_SUCCESS_RATE = 0.95;

/** What a load under faults showed. */
export interface LoadVerdict {
  readonly calls: number;
  readonly outcomes: Record<string, number>;
  readonly latencyMs: ReturnType<typeof summarize>;
  /** Calls slower than the deadline + 100 ms on the wall clock. */
  readonly overDeadlineRaw: number;
  /** Of those, calls still too slow once their worker's event-loop stalls are taken out. */
  readonly overDeadline: number;
  /** Total time the workers' event loops stood still (all workers summed), ms. */
  readonly stalledMs: number;
  readonly untyped: number;
  readonly pending: number;
  /** First success after the fault ended, ms after it ended, of the slowest worker to recover. */
  readonly recoveredAfterMs: number | undefined;
  /** Calls started later than {@link RECOVERY_MS} after the fault ended. */
  readonly callsAfterRecovery: number;
  /** Of those, the ones that did not succeed (by outcome). */
  readonly failedAfterRecovery: Record<string, number>;
  /** Share of calls after the recovery window that succeeded. */
  readonly successRateAfterRecovery: number;
}

/** Milliseconds of `stalls` that overlap `[from, to]`. */
function stalledWithin(stalls: readonly Stall[], from: number, to: number): number {
  let total = 0;
  for (const [start, end] of stalls) total += Math.max(0, Math.min(end, to) - Math.max(start, from));
  return total;
}

/**
 * Summarises the loads' calls against a fault that ended at `healedAt` (epoch ms).
 *
 * A call counts as over its deadline when it took longer than the deadline + 100 ms *beyond*
 * the time its worker's event loop stood still after the deadline passed (see
 * StallRecorder): a deadline timer cannot fire while the process is not running, so that part
 * of the delay belongs to the machine. Raw overruns are reported as well.
 */
export function judgeLoad(reports: readonly LoadReport[], deadlineMs: number, healedAt: number): LoadVerdict {
  const calls: CallRecord[] = reports.flatMap((report) => report.calls);
  const durations = calls.map(([start, end]) => end - start);
  const overruns = reports.flatMap((report) =>
    report.calls
      .filter(([start, end]) => end - start > deadlineMs + SETTLE_SLACK_MS)
      .map(([start, end]) => end - start - stalledWithin(report.stalls, start + deadlineMs, end)),
  );
  // Every worker must recover: the slowest one's first success counts.
  const firstOks = reports.map((report) =>
    report.calls
      .filter(([start, , outcome]) => outcome === 'ok' && start >= healedAt)
      .map(([, end]) => end)
      .reduce((earliest, end) => Math.min(earliest, end), Infinity),
  );
  const recoveredAt = Math.max(...firstOks);
  const after = calls.filter(([start]) => start >= healedAt + RECOVERY_MS);
  const failedAfter = after.filter(([, , outcome]) => outcome !== 'ok');
  return {
    calls: calls.length,
    outcomes: tally(calls.map(([, , outcome, op]) => (outcome === 'ok' ? 'ok' : `${op}:${outcome}`))),
    latencyMs: summarize(durations),
    overDeadlineRaw: overruns.length,
    overDeadline: overruns.filter((ms) => ms > deadlineMs + SETTLE_SLACK_MS).length,
    stalledMs: Math.round(reports.reduce((sum, report) => sum + stalledWithin(report.stalls, -Infinity, Infinity), 0)),
    untyped: calls.filter(([, , outcome]) => !isTyped(outcome)).length,
    pending: reports.reduce((sum, report) => sum + report.pending, 0),
    recoveredAfterMs: Number.isFinite(recoveredAt) ? Math.round(recoveredAt - healedAt) : undefined,
    callsAfterRecovery: after.length,
    failedAfterRecovery: tally(failedAfter.map(([, , outcome, op]) => `${op}:${outcome}`)),
    successRateAfterRecovery: after.length === 0 ? 0 : Math.round(((after.length - failedAfter.length) / after.length) * 10_000) / 10_000,
  };
}

/** Asserts the settle-and-recover rules on a verdict. */
export function expectSettledAndRecovered(verdict: LoadVerdict, slowest: readonly SlowCall[]): void {
  expect(verdict.calls).toBeGreaterThan(0);
  expect(verdict.untyped, 'calls that failed with an untyped error').toBe(0);
  expect(verdict.pending, 'calls still pending at the end').toBe(0);
  expect(verdict.overDeadline, `calls slower than the deadline + ${SETTLE_SLACK_MS} ms; slowest: ${JSON.stringify(slowest)}`).toBe(0);
  expect(verdict.recoveredAfterMs, 'first success of the slowest worker after the fault ended, ms').toBeDefined();
  expect(verdict.recoveredAfterMs).toBeLessThanOrEqual(RECOVERY_MS);
  expect(verdict.callsAfterRecovery).toBeGreaterThan(0);
  expect(
    verdict.successRateAfterRecovery,
    `success rate of calls started ${RECOVERY_MS} ms after the fault ended; failures: ${JSON.stringify(verdict.failedAfterRecovery)}`,
  ).toBeGreaterThanOrEqual(RECOVERED_SUCCESS_RATE);
}

/** A slow call, for failure messages. */
export interface SlowCall {
  readonly op: string;
  readonly outcome: string;
  readonly ms: number;
  /** Start, ms after the load's first call. */
  readonly at: number;
}

/** The `n` slowest calls, for failure messages. */
export function slowestCalls(reports: readonly LoadReport[], n = 5): SlowCall[] {
  const calls = reports.flatMap((report) => report.calls);
  const first = Math.min(...calls.map(([start]) => start));
  return calls
    .sort((a, b) => b[1] - b[0] - (a[1] - a[0]))
    .slice(0, n)
    .map(([start, end, outcome, op]) => ({ op, outcome, ms: Math.round(end - start), at: Math.round(start - first) }));
}
