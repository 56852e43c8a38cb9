/**
 * Small statistics over per-round samples.
 *
 * @module
 */
import type { MetricAggregate, RateSummary } from './types.js';

/** The `q` quantile (0..1) of `values` by linear interpolation; `NaN` for no values. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return quantileOfSorted(sorted, q);
}

/** Like {@link quantile} for an already ascending array (no copy). */
export function quantileOfSorted(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const position = (sorted.length - 1) * q;
  const low = Math.floor(position);
  const high = Math.ceil(position);
  const lowValue = sorted[low] as number;
  const highValue = sorted[high] as number;
  return lowValue + (highValue - lowValue) * (position - low);
}

/** The median of `values`; `NaN` for no values. */
export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** Median, min, max and the full range relative to the median. */
export function summarizeRates(rates: readonly number[]): RateSummary {
  const med = median(rates);
  const min = Math.min(...rates);
  const max = Math.max(...rates);
  return { median: med, min, max, spreadPct: med > 0 ? ((max - min) / med) * 100 : 0 };
}

/**
 * The median of the per-round ratios `rates[i] / reference[i]`. Pairing rounds by index
 * cancels slow drifts of the machine (both sides of a pair ran back to back).
 */
export function pairedRatio(rates: readonly number[], reference: readonly number[]): number | undefined {
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(rates.length, reference.length); i++) {
    const base = reference[i] as number;
    if (base > 0) ratios.push((rates[i] as number) / base);
  }
  return ratios.length === 0 ? undefined : median(ratios);
}

/** Combines per-round values of a metric. */
export function aggregate(values: readonly number[], how: MetricAggregate): number {
  if (values.length === 0) return Number.NaN;
  switch (how) {
    case 'sum':
      return values.reduce((a, b) => a + b, 0);
    case 'max':
      return Math.max(...values);
    case 'median':
      return median(values);
  }
}

/** A growable buffer of latency samples (ms) with cheap percentiles. */
export class LatencyRecorder {
  #samples = new Float64Array(1024);
  #length = 0;

  /** Adds one sample. */
  add(ms: number): void {
    if (this.#length === this.#samples.length) {
      const bigger = new Float64Array(this.#samples.length * 2);
      bigger.set(this.#samples);
      this.#samples = bigger;
    }
    this.#samples[this.#length++] = ms;
  }

  /** Number of samples. */
  get size(): number {
    return this.#length;
  }

  /** The p50 and p99 of the samples so far (`undefined` when empty). */
  percentiles(): { p50: number; p99: number } | undefined {
    if (this.#length === 0) return undefined;
    const sorted = this.#samples.slice(0, this.#length).sort();
    return { p50: quantileOfSorted(sorted, 0.5), p99: quantileOfSorted(sorted, 0.99) };
  }

  /** Forgets every sample. */
  clear(): void {
    this.#length = 0;
  }
}
