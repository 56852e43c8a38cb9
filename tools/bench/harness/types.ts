/**
 * The vocabulary of the benchmark harness: suites hold cases, cases hold contenders, and every
 * contender of a case is measured in the same run, round by round, so that machine noise hits
 * all of them alike.
 *
 * @module
 */

/**
 * One operation. `index` counts the operations started in the current round (0, 1, 2, …),
 * across all in-flight workers, so an operation can pick its key with `keys[index % n]`.
 * An operation that throws (or rejects) counts as failed, not as done.
 */
export type Operation = (index: number) => unknown;

/** What one measured round of one contender produced. */
export interface RoundSample {
  /** Operations that completed without throwing. */
  readonly ops: number;
  /** Operations that threw or rejected. */
  readonly failed: number;
  /** Wall time from the first start to the last settle (in-flight operations are drained). */
  readonly elapsedMs: number;
  /** `ops / elapsedMs`, per second. */
  readonly opsPerSec: number;
  /** Per-operation latency percentiles in ms, when the case records latency. */
  readonly latency?: { readonly p50: number; readonly p99: number };
  /** The first error of the round, if any. */
  readonly firstError?: unknown;
}

/** Extra per-round numbers a contender reports (keys are {@link MetricSpec.key}s). */
export type RoundMetrics = Readonly<Record<string, number>>;

/** One contender of a case. */
export interface Contender {
  /** Short name, unique in its case; shown in the table. */
  readonly name: string;
  /** One line: exactly what one operation does (shown under the table). */
  readonly does?: string;
  /** The operation. Absent together with `unavailable`. */
  readonly op?: Operation;
  /** Why this contender cannot run here; it is listed with this reason instead of numbers. */
  readonly unavailable?: string;
  /** Runs before every round (warm-up included), outside the timed part. */
  readonly beforeRound?: () => void | Promise<void>;
  /** Runs after every round (warm-up included), outside the timed part; returns extra metrics. */
  readonly afterRound?: (sample: RoundSample) => RoundMetrics | void | Promise<RoundMetrics | void>;
  /**
   * Runs once after the measured rounds, untimed, for metrics whose collection would disturb
   * the timing (for example counting server commands with `MONITOR`). Its values replace
   * the aggregated round metrics of the same keys.
   */
  readonly probeMetrics?: () => RoundMetrics | Promise<RoundMetrics>;
}

/** How a per-round metric is combined over the measured rounds. */
export type MetricAggregate = 'sum' | 'median' | 'max';

/** An extra column of a case's table. */
export interface MetricSpec {
  /** Key in {@link RoundMetrics}. */
  readonly key: string;
  /** Column header. */
  readonly label: string;
  /** How rounds are combined. */
  readonly aggregate: MetricAggregate;
  /** Decimal places. @default 0 */
  readonly digits?: number;
}

/** A live contender set for one case, with its cleanup. */
export interface CaseFixture {
  readonly contenders: readonly Contender[];
  /** Runs once after the case, even when it failed. */
  readonly teardown?: () => void | Promise<void>;
}

/** Round timing of a case. */
export interface Timing {
  /** Measured rounds per contender. */
  readonly rounds: number;
  /** Length of each measured round. */
  readonly roundMs: number;
  /** Length of the single warm-up round each contender gets first. */
  readonly warmupMs: number;
}

/** One benchmark case: contenders doing the same job, compared with `baseline`. */
export interface BenchCase {
  /** Short name, unique in its suite (e.g. `get`, `getMany(100)`). */
  readonly name: string;
  /** One sentence: what is measured. */
  readonly description: string;
  /** The contender the `×` column divides by. */
  readonly baseline: string;
  /**
   * `async` (default): each operation is awaited, `concurrency` of them in flight.
   * `sync`: operations are plain synchronous calls in a tight loop (concurrency 1).
   */
  readonly mode?: 'async' | 'sync';
  /** Operations in flight (async mode). @default the run's `--concurrency`, else 1 */
  readonly concurrency?: number;
  /** When true, `--concurrency` does not override this case's `concurrency`. */
  readonly fixedConcurrency?: boolean;
  /** Record per-operation latency (adds p50/p99 columns). @default false */
  readonly latency?: boolean;
  /** Overrides of the run's timing for this case (scaled down under `--quick`). */
  readonly timing?: Partial<Timing>;
  /** Extra columns. */
  readonly metrics?: readonly MetricSpec[];
  /** Goals checked after the case and printed under its table. */
  readonly targets?: readonly Target[];
  /** Builds the contenders (and their data) for this case. */
  readonly setup: () => CaseFixture | Promise<CaseFixture>;
}

/** A goal such as "latchkey ≥ 0.95× raw ioredis". */
export interface Target {
  /** What the goal is, e.g. `latchkey ≥ 0.95× raw ioredis`. */
  readonly label: string;
  /** Judges a finished case; `undefined` when the contenders it needs did not run. */
  readonly evaluate: (result: CaseResult) => TargetOutcome | undefined;
}

/** A judged goal. */
export interface TargetOutcome {
  readonly pass: boolean;
  /** The measured figure, e.g. `0.93×`. */
  readonly actual: string;
}

/** What a suite's `prepare` hands back when it can run. */
export interface PreparedSuite {
  readonly cases: readonly BenchCase[];
  /** Lines printed under the suite heading (server versions, configuration). */
  readonly notes?: readonly string[];
  /** Markdown sections appended after the case tables (e.g. a fidelity table). */
  readonly sections?: readonly string[];
  /** Stops servers and closes clients. Runs even when a case failed. */
  readonly teardown?: () => void | Promise<void>;
}

/** What a suite's `prepare` hands back when it cannot run here. */
export interface SkippedSuite {
  readonly skip: string;
}

/** Settings of one run, from the command line. */
export interface RunOptions {
  /** Shorter rounds and fewer of them. */
  readonly quick: boolean;
  /** `--concurrency N`, for cases that do not pin theirs. */
  readonly concurrency: number | undefined;
  /** Run adapter suites even when the adapter package does not export its backend yet. */
  readonly withoutAdapter: boolean;
  /** Only the cases whose name matches run (`--only`); absent: every case. */
  readonly only?: RegExp;
}

/** A named group of cases, usually sharing a server. */
export interface Suite {
  /** CLI name and results file name (`.bench-results/<name>.md`). */
  readonly name: string;
  /** Heading of the suite's section. */
  readonly title: string;
  /** One paragraph under the heading. */
  readonly description: string;
  /** Starts what the cases need, or says why the suite cannot run. */
  readonly prepare: (options: RunOptions) => Promise<PreparedSuite | SkippedSuite>;
}

/** Summary statistics of per-round rates. */
export interface RateSummary {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** `(max − min) / median`, in percent. */
  readonly spreadPct: number;
}

/** The outcome of one contender in one case. */
export interface ContenderResult {
  readonly name: string;
  readonly does?: string;
  readonly baseline: boolean;
  /** Set when the contender did not run; no figures then. */
  readonly unavailable?: string;
  /** Per-round ops/s, in round order. */
  readonly rounds: readonly RoundSample[];
  readonly opsPerSec?: RateSummary;
  /** Median of the per-round ratios to the baseline (rounds paired by index). */
  readonly ratio?: number;
  /** Failed operations over all measured rounds. */
  readonly failed: number;
  /** Completed operations over all measured rounds. */
  readonly ops: number;
  /** Median per-round latency percentiles (ms), when recorded. */
  readonly latency?: { readonly p50: number; readonly p99: number };
  /** Aggregated extra metrics. */
  readonly metrics: Readonly<Record<string, number>>;
  /** Message of the first error seen, if any. */
  readonly firstError?: string;
}

/** The outcome of one case. */
export interface CaseResult {
  readonly name: string;
  readonly description: string;
  readonly baseline: string;
  readonly mode: 'async' | 'sync';
  readonly concurrency: number;
  readonly timing: Timing;
  readonly metrics: readonly MetricSpec[];
  readonly latency: boolean;
  readonly contenders: readonly ContenderResult[];
  readonly targets: readonly (TargetOutcome & { readonly label: string })[];
  /** Set when the case itself failed (setup threw); no contenders then. */
  readonly error?: string;
  readonly durationMs: number;
}

/** The outcome of one suite. */
export interface SuiteResult {
  readonly name: string;
  readonly title: string;
  readonly description: string;
  readonly skipped?: string;
  readonly notes: readonly string[];
  readonly sections: readonly string[];
  readonly cases: readonly CaseResult[];
  readonly environment: Environment;
  /** CPU use of the whole machine while the suite ran (Linux only). */
  readonly machine?: { readonly busyPct: number; readonly stealPct: number };
  readonly error?: string;
}

/** Where and how the run happened. */
export interface Environment {
  readonly node: string;
  readonly platform: string;
  readonly cpus: number;
  readonly cpuModel: string;
  readonly loadAverage: readonly number[];
  readonly startedAt: string;
  readonly quick: boolean;
  readonly timing: Timing;
}
