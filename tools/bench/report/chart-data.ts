/**
 * The figures the chart draws, taken from the results without any computation of new
 * statistics: the recorded paired ratios, median rates and medianed metrics.
 *
 * @module
 */
import type { SuiteResult } from '../harness/index.js';
import { ACQUIRE_FAILURES_KEY, HANDOFF_KEY, isLockCase, kvOperation, LOST_KEY, ratioGoalOf, type RatioGoal } from './targets.js';

/** The contenders panel (a) compares with the raw driver. */
export const RATIO_CONTENDERS = ['latchkey', 'keyv'] as const;

/** One bar of panel (a). */
export interface RatioBar {
  readonly contender: (typeof RATIO_CONTENDERS)[number];
  /** Median of per-round ratios to the baseline; `undefined` when not measured. */
  readonly ratio: number | undefined;
  /** Why there is no ratio. */
  readonly reason?: string;
}

/** One operation of one backend in panel (a). */
export interface RatioGroup {
  readonly suite: string;
  readonly operation: 'get' | 'set' | 'getMany';
  readonly caseName: string;
  /** The case's baseline (the raw driver; `Map + v8 copy` for memory). */
  readonly baseline: string;
  readonly bars: readonly RatioBar[];
  readonly goal?: RatioGoal;
}

/** One contender of a locked-increment case in panel (b). */
export interface LockRow {
  readonly suite: string;
  readonly contender: string;
  /** Median increments/s. */
  readonly incrementsPerSec?: number;
  /** Median handoff p50, ms. */
  readonly handoffP50?: number;
  readonly failedAcquisitions?: number;
  readonly lostUpdates?: number;
  /** Why the contender has no figures. */
  readonly reason?: string;
}

/** Everything the chart shows. */
export interface ChartData {
  readonly groups: readonly RatioGroup[];
  readonly lockRows: readonly LockRow[];
  /** The case of panel (b), e.g. `locked increment × 128` (the first one found). */
  readonly lockCaseName?: string;
}

/** Contenders that exist to show a check can fail (no lock at all), not to be compared. */
function isControl(name: string): boolean {
  return /\bcontrol\b/.test(name);
}

/** Collects the chart's figures from the suites that ran. */
export function chartData(suites: readonly SuiteResult[]): ChartData {
  const groups: RatioGroup[] = [];
  const lockRows: LockRow[] = [];
  let lockCaseName: string | undefined;
  for (const suite of suites) {
    if (suite.skipped !== undefined) continue;
    for (const result of suite.cases) {
      const operation = kvOperation(result.name);
      if (operation !== undefined && result.contenders.some((c) => c.name === 'latchkey')) {
        const bars = RATIO_CONTENDERS.map((name): RatioBar => {
          const contender = result.contenders.find((c) => c.name === name);
          if (contender === undefined) return { contender: name, ratio: undefined, reason: 'not in this suite' };
          if (contender.ratio === undefined)
            return { contender: name, ratio: undefined, reason: contender.unavailable ?? contender.firstError ?? 'no measured rounds' };
          return { contender: name, ratio: contender.ratio };
        });
        const goal = ratioGoalOf(suite.name, result.name);
        groups.push({
          suite: suite.name,
          operation,
          caseName: result.name,
          baseline: result.baseline,
          bars,
          ...(goal === undefined ? {} : { goal }),
        });
      }
      if (isLockCase(result)) {
        lockCaseName ??= result.name;
        for (const contender of result.contenders) {
          if (isControl(contender.name)) continue;
          if (contender.opsPerSec === undefined) {
            lockRows.push({ suite: suite.name, contender: contender.name, reason: contender.unavailable ?? 'no measured rounds' });
            continue;
          }
          const handoff = contender.metrics[HANDOFF_KEY];
          const failed = contender.metrics[ACQUIRE_FAILURES_KEY];
          const lost = contender.metrics[LOST_KEY];
          lockRows.push({
            suite: suite.name,
            contender: contender.name,
            incrementsPerSec: contender.opsPerSec.median,
            ...(handoff === undefined ? {} : { handoffP50: handoff }),
            ...(failed === undefined ? {} : { failedAcquisitions: failed }),
            ...(lost === undefined ? {} : { lostUpdates: lost }),
          });
        }
      }
    }
  }
  return { groups, lockRows, ...(lockCaseName === undefined ? {} : { lockCaseName }) };
}
