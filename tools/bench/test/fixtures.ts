/**
 * Results as the harness writes them, built by hand for the report's tests: a case's
 * contenders with given per-round rates, and suites around such cases.
 *
 * @module
 */
import type { CaseResult, ContenderResult, SuiteResult, TargetOutcome } from '../harness/index.js';

const TIMING = { rounds: 3, roundMs: 400, warmupMs: 200 } as const;

/** A contender that ran rounds at `rates` ops/s, or one that could not run (`unavailable`). */
export function contender(name: string, rates: readonly number[] | { unavailable: string }, baseline = false): ContenderResult {
  if (!Array.isArray(rates)) {
    return { name, baseline, rounds: [], failed: 0, ops: 0, metrics: {}, unavailable: (rates as { unavailable: string }).unavailable };
  }
  const sorted = [...rates].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] as number;
  return {
    name,
    baseline,
    rounds: rates.map((opsPerSec) => ({ ops: Math.round(opsPerSec * 0.4), failed: 0, elapsedMs: 400, opsPerSec })),
    failed: 0,
    ops: rates.reduce((a, b) => a + Math.round(b * 0.4), 0),
    metrics: {},
    opsPerSec: { median, min: sorted[0] as number, max: sorted.at(-1) as number, spreadPct: 0 },
  };
}

/** A case named `name` whose first contender is the baseline. */
export function caseResult(
  name: string,
  contenders: readonly ContenderResult[],
  targets: readonly (TargetOutcome & { label: string })[] = [],
): CaseResult {
  return {
    name,
    description: `the ${name} case`,
    baseline: contenders.find((c) => c.baseline)?.name ?? contenders[0]?.name ?? '',
    mode: 'async',
    concurrency: 1,
    timing: TIMING,
    metrics: [],
    latency: false,
    contenders,
    targets,
    durationMs: 1_000,
  };
}

/** A suite that ran `cases`, started at `startedAt`. */
export function suiteResult(name: string, cases: readonly CaseResult[], startedAt = '2026-12-02T06:00:00.000Z'): SuiteResult {
  return {
    name,
    title: `the ${name} suite`,
    description: `what ${name} measures`,
    notes: [],
    sections: [],
    cases,
    environment: {
      node: 'v20.0.0',
      platform: 'linux x64',
      cpus: 2,
      cpuModel: 'test CPU',
      loadAverage: [1, 1, 1],
      startedAt,
      quick: false,
      timing: TIMING,
    },
    machine: { busyPct: 50, stealPct: 0 },
  };
}

/**
 * The six data cases (get, set, getMany(100) at 1 and 64 in flight) of a suite, latchkey at
 * `share` of `raw`'s rate and at `keyvShare` of keyv's, or keyv not running (`keyvShare` a reason).
 */
export function dataCases(raw: string, share: number, keyvShare: number | string): CaseResult[] {
  return ['get', 'set', 'getMany(100)'].flatMap((op) =>
    [1, 64].map((level) => {
      const rawRates = [1000, 1100, 900];
      const latchkey = rawRates.map((r) => r * share);
      const keyv =
        typeof keyvShare === 'string'
          ? contender('keyv', { unavailable: keyvShare })
          : contender(
              'keyv',
              latchkey.map((r) => r / keyvShare),
            );
      return caseResult(`${op}, ${level} in flight`, [contender('latchkey', latchkey), contender(raw, rawRates, true), keyv]);
    }),
  );
}
