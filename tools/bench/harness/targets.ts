/**
 * Ready-made goals for {@link BenchCase.targets}.
 *
 * @module
 */
import { pairedRatio } from './stats.js';
import type { CaseResult, ContenderResult, Target } from './types.js';

function ran(result: CaseResult, name: string): ContenderResult | undefined {
  const contender = result.contenders.find((c) => c.name === name);
  return contender?.opsPerSec === undefined ? undefined : contender;
}

/**
 * `contender` reaches at least `min` times the throughput of `reference` (median of the
 * per-round ratios, rounds paired by index).
 */
export function ratioAtLeast(contender: string, reference: string, min: number, label?: string): Target {
  return {
    label: label ?? `${contender} ≥ ${min.toFixed(2)}× ${reference}`,
    evaluate: (result) => {
      const a = ran(result, contender);
      const b = ran(result, reference);
      if (a === undefined || b === undefined) return undefined;
      const ratio = pairedRatio(
        a.rounds.map((s) => s.opsPerSec),
        b.rounds.map((s) => s.opsPerSec),
      );
      if (ratio === undefined) return undefined;
      return { pass: ratio >= min, actual: `${ratio.toFixed(2)}×` };
    },
  };
}

/** The aggregated metric `key` of `contender` is at most `max`. */
export function metricAtMost(contender: string, key: string, max: number, label: string): Target {
  return {
    label,
    evaluate: (result) => {
      const value = ran(result, contender)?.metrics[key];
      if (value === undefined) return undefined;
      const spec = result.metrics.find((m) => m.key === key);
      return { pass: value <= max, actual: value.toFixed(spec?.digits ?? 0) };
    },
  };
}

/** The aggregated metric `key` of `contender` is at least `min`. */
export function metricAtLeast(contender: string, key: string, min: number, label: string): Target {
  return {
    label,
    evaluate: (result) => {
      const value = ran(result, contender)?.metrics[key];
      if (value === undefined) return undefined;
      const spec = result.metrics.find((m) => m.key === key);
      return { pass: value >= min, actual: value.toFixed(spec?.digits ?? 0) };
    },
  };
}

/** `contender` had no failed operations in the measured rounds. */
export function noFailures(contender: string): Target {
  return {
    label: `${contender}: no failed operations`,
    evaluate: (result) => {
      const c = ran(result, contender);
      return c === undefined ? undefined : { pass: c.failed === 0, actual: `${c.failed} failed` };
    },
  };
}
