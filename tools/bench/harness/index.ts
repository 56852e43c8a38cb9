/**
 * A small benchmark harness: suites of cases whose contenders are measured in the same run,
 * in interleaved rounds, with warm-up, medians, spreads, paired ratios to a baseline, extra
 * per-contender metrics, a progress display and markdown/JSON results.
 *
 * @module
 */
export { FULL_TIMING, QUICK_TIMING, RESULTS_DIR_ENV, parseArgs, usage, UsageError, type ParsedArgs } from './cli.js';
export { errorMessage, withTimeout } from './errors.js';
export { main, runSuite, type ExitCode } from './main.js';
export { Progress, type ProgressSink } from './progress.js';
export {
  caseMarkdown,
  formatMs,
  formatNumber,
  formatRate,
  RESULTS_DIR,
  REPO_ROOT,
  suiteJson,
  suiteMarkdown,
  writeSuiteResult,
} from './report.js';
export { RoundDrainError, runRound, type RoundPlan } from './round.js';
export { caseConcurrency, caseTiming, runCase, type CaseContext } from './run-case.js';
export { aggregate, LatencyRecorder, median, pairedRatio, quantile, summarizeRates } from './stats.js';
export { metricAtLeast, metricAtMost, noFailures, ratioAtLeast } from './targets.js';
export type * from './types.js';
