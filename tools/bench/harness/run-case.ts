/**
 * Running one case: set up its contenders, give each a warm-up round, then measured rounds
 * interleaved (round r runs every contender once, in an order rotated by r), then summarize.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import { errorMessage, withTimeout } from './errors.js';
import type { Progress } from './progress.js';
import { runRound } from './round.js';
import { aggregate, median, pairedRatio, summarizeRates } from './stats.js';
import type { BenchCase, CaseResult, Contender, ContenderResult, RoundMetrics, RoundSample, RunOptions, Timing } from './types.js';

/** What {@link runCase} needs from the run. */
export interface CaseContext {
  readonly suite: string;
  readonly options: RunOptions;
  /** The run's default timing (already quick-adjusted). */
  readonly defaults: Timing;
  readonly progress: Progress;
}

/** How long in-flight operations may take to settle after a round's time is up. */
const DRAIN_LIMIT_MS = 15_000;
/** How long a case's setup and teardown may take. */
const SETUP_LIMIT_MS = 120_000;
/** Under `--quick`, case-specific round and warm-up lengths are scaled by this. */
const QUICK_SCALE = 0.4;
/** Under `--quick`, no case runs more rounds than this. */
const QUICK_MAX_ROUNDS = 3;

/** The timing of `bench` in this run. */
export function caseTiming(bench: BenchCase, context: Pick<CaseContext, 'options' | 'defaults'>): Timing {
  const own = bench.timing ?? {};
  if (!context.options.quick) {
    return {
      rounds: own.rounds ?? context.defaults.rounds,
      roundMs: own.roundMs ?? context.defaults.roundMs,
      warmupMs: own.warmupMs ?? context.defaults.warmupMs,
    };
  }
  return {
    rounds: Math.min(own.rounds ?? context.defaults.rounds, QUICK_MAX_ROUNDS),
    roundMs: own.roundMs === undefined ? context.defaults.roundMs : Math.max(50, Math.round(own.roundMs * QUICK_SCALE)),
    warmupMs: own.warmupMs === undefined ? context.defaults.warmupMs : Math.max(25, Math.round(own.warmupMs * QUICK_SCALE)),
  };
}

/** The number of operations in flight for `bench` in this run. */
export function caseConcurrency(bench: BenchCase, options: RunOptions): number {
  if ((bench.mode ?? 'async') === 'sync') return 1;
  if (bench.fixedConcurrency === true) return bench.concurrency ?? 1;
  return options.concurrency ?? bench.concurrency ?? 1;
}

interface Live {
  readonly contender: Contender;
  readonly op: NonNullable<Contender['op']>;
  readonly samples: RoundSample[];
  readonly metrics: RoundMetrics[];
  unavailable?: string;
  /** What `afterRound` returned for the last round played. */
  lastMetrics?: RoundMetrics;
  /** What `probeMetrics` returned. */
  probed?: RoundMetrics;
  /** Why `probeMetrics` failed. */
  probeError?: string;
}

/**
 * Runs one case to the end. Never throws: a failing setup gives a result with `error`, a
 * failing contender is listed as unavailable with the reason.
 */
export async function runCase(bench: BenchCase, context: CaseContext): Promise<CaseResult> {
  const started = performance.now();
  const mode = bench.mode ?? 'async';
  const concurrency = caseConcurrency(bench, context.options);
  const timing = caseTiming(bench, context);
  const base = {
    name: bench.name,
    description: bench.description,
    baseline: bench.baseline,
    mode,
    concurrency,
    timing,
    metrics: bench.metrics ?? [],
    latency: bench.latency === true,
  } as const;

  let fixture;
  try {
    fixture = await withTimeout(Promise.resolve(bench.setup()), SETUP_LIMIT_MS, `setup of "${bench.name}"`);
    checkContenders(bench, fixture.contenders);
  } catch (error) {
    let message = errorMessage(error);
    try {
      await fixture?.teardown?.();
    } catch (teardownError) {
      message += `; its teardown failed too: ${errorMessage(teardownError)}`;
    }
    context.progress.caseEnd(context.suite, bench.name, performance.now() - started, message);
    return { ...base, contenders: [], targets: [], error: message, durationMs: performance.now() - started };
  }

  const live: Live[] = [];
  const reasons = new Map<string, string>();
  for (const contender of fixture.contenders) {
    if (contender.op === undefined || contender.unavailable !== undefined) {
      reasons.set(contender.name, contender.unavailable ?? 'no operation given');
    } else {
      live.push({ contender, op: contender.op, samples: [], metrics: [] });
    }
  }

  let caseError: string | undefined;
  try {
    context.progress.caseStart(context.suite, bench.name, live.length, timing.rounds);
    for (const entry of live) {
      if (mode === 'sync') trySyncOnce(entry);
      if (entry.unavailable === undefined) await warmUp(entry, bench, context, concurrency, timing);
    }
    for (let round = 0; round < timing.rounds; round++) {
      const running = live.filter((entry) => entry.unavailable === undefined);
      const shift = running.length === 0 ? 0 : round % running.length;
      for (const entry of [...running.slice(shift), ...running.slice(0, shift)]) {
        await measure(entry, bench, context, concurrency, timing, `round ${round + 1}/${timing.rounds}`);
      }
    }
    for (const entry of live) if (entry.unavailable === undefined) await probeMetrics(entry, bench, context);
  } catch (error) {
    caseError = errorMessage(error);
  } finally {
    try {
      await withTimeout(Promise.resolve(fixture.teardown?.()), SETUP_LIMIT_MS, `teardown of "${bench.name}"`);
    } catch (error) {
      caseError ??= `teardown failed: ${errorMessage(error)}`;
    }
  }
  for (const entry of live) if (entry.unavailable !== undefined) reasons.set(entry.contender.name, entry.unavailable);

  const baselineRates = live
    .find((entry) => entry.contender.name === bench.baseline && entry.unavailable === undefined)
    ?.samples.map((s) => s.opsPerSec);
  const contenders = fixture.contenders.map((contender): ContenderResult => {
    const entry = live.find((candidate) => candidate.contender === contender);
    const reason = reasons.get(contender.name);
    const common = {
      name: contender.name,
      ...(contender.does === undefined ? {} : { does: contender.does }),
      baseline: contender.name === bench.baseline,
    };
    if (entry === undefined || reason !== undefined || entry.samples.length === 0) {
      return { ...common, unavailable: reason ?? 'did not run', rounds: [], failed: 0, ops: 0, metrics: {} };
    }
    return summarize(entry, bench, common, baselineRates);
  });

  const durationMs = performance.now() - started;
  const partial: CaseResult = { ...base, contenders, targets: [], durationMs, ...(caseError === undefined ? {} : { error: caseError }) };
  const targets = (bench.targets ?? []).flatMap((target) => {
    const outcome = target.evaluate(partial);
    return outcome === undefined ? [] : [{ label: target.label, ...outcome }];
  });
  context.progress.caseEnd(context.suite, bench.name, durationMs, caseError);
  return { ...partial, targets };
}

function checkContenders(bench: BenchCase, contenders: readonly Contender[]): void {
  const names = contenders.map((c) => c.name);
  const duplicate = names.find((name, index) => names.indexOf(name) !== index);
  if (duplicate !== undefined) throw new Error(`case "${bench.name}" has two contenders named "${duplicate}"`);
  if (!names.includes(bench.baseline))
    throw new Error(`case "${bench.name}": baseline "${bench.baseline}" is not one of its contenders (${names.join(', ')})`);
}

function trySyncOnce(entry: Live): void {
  try {
    entry.op(0);
  } catch (error) {
    entry.unavailable = `fails: ${errorMessage(error)}`;
  }
}

async function warmUp(entry: Live, bench: BenchCase, context: CaseContext, concurrency: number, timing: Timing): Promise<void> {
  const sample = await play(entry, bench, context, concurrency, timing.warmupMs, 'warm-up');
  if (sample === undefined) return;
  if (sample.ops === 0 && sample.failed > 0) entry.unavailable = `every operation failed: ${errorMessage(sample.firstError)}`;
}

async function measure(
  entry: Live,
  bench: BenchCase,
  context: CaseContext,
  concurrency: number,
  timing: Timing,
  label: string,
): Promise<void> {
  const sample = await play(entry, bench, context, concurrency, timing.roundMs, label);
  if (sample === undefined) return;
  entry.samples.push(sample);
  entry.metrics.push(entry.lastMetrics ?? {});
}

/** One round with its hooks; marks the contender unavailable (and returns undefined) if it breaks. */
async function play(
  entry: Live,
  bench: BenchCase,
  context: CaseContext,
  concurrency: number,
  durationMs: number,
  label: string,
): Promise<RoundSample | undefined> {
  const { contender } = entry;
  try {
    await contender.beforeRound?.();
    const sample = await runRound(entry.op, {
      mode: bench.mode ?? 'async',
      concurrency,
      durationMs,
      latency: bench.latency === true,
      drainLimitMs: DRAIN_LIMIT_MS,
      onTick: (ops) => context.progress.round(context.suite, bench.name, contender.name, label, ops),
    });
    entry.lastMetrics = (await contender.afterRound?.(sample)) ?? {};
    return sample;
  } catch (error) {
    entry.unavailable = `broke during ${label}: ${errorMessage(error)}`;
    return undefined;
  }
}

async function probeMetrics(entry: Live, bench: BenchCase, context: CaseContext): Promise<void> {
  const probe = entry.contender.probeMetrics;
  if (probe === undefined) return;
  context.progress.round(context.suite, bench.name, entry.contender.name, 'counting pass', 0);
  try {
    entry.probed = await probe();
  } catch (error) {
    entry.probeError = `its untimed counting pass failed: ${errorMessage(error)}`;
  }
}

function summarize(
  entry: Live,
  bench: BenchCase,
  common: Pick<ContenderResult, 'name' | 'does' | 'baseline'>,
  baselineRates: readonly number[] | undefined,
): ContenderResult {
  const rates = entry.samples.map((s) => s.opsPerSec);
  const metrics: Record<string, number> = {};
  for (const spec of bench.metrics ?? []) {
    const values = entry.metrics.map((m) => m[spec.key]).filter((v): v is number => typeof v === 'number' && !Number.isNaN(v));
    if (values.length > 0) metrics[spec.key] = aggregate(values, spec.aggregate);
  }
  for (const [key, value] of Object.entries(entry.probed ?? {})) if (!Number.isNaN(value)) metrics[key] = value;
  const latencies = entry.samples.flatMap((s) => (s.latency === undefined ? [] : [s.latency]));
  const ratio = baselineRates === undefined ? undefined : pairedRatio(rates, baselineRates);
  const sampleError = entry.samples.find((s) => s.firstError !== undefined)?.firstError;
  const firstError = entry.probeError ?? (sampleError === undefined ? undefined : errorMessage(sampleError));
  return {
    ...common,
    rounds: entry.samples,
    opsPerSec: summarizeRates(rates),
    ...(ratio === undefined ? {} : { ratio }),
    failed: entry.samples.reduce((sum, s) => sum + s.failed, 0),
    ops: entry.samples.reduce((sum, s) => sum + s.ops, 0),
    ...(latencies.length === 0 ? {} : { latency: { p50: median(latencies.map((l) => l.p50)), p99: median(latencies.map((l) => l.p99)) } }),
    metrics,
    ...(firstError === undefined ? {} : { firstError }),
  };
}
