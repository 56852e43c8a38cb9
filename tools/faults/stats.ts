/**
 * Summaries of measured latencies, and where scenario results go.
 *
 * @module
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The `q` quantile (0…1) of `values` (nearest rank); `NaN` for none. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] as number;
}

/** The median of `values`. */
export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** Median, p99 and max of `values`, rounded to 0.1 ms. */
export function summarize(values: readonly number[]): { n: number; median: number; p99: number; max: number } {
  const round = (x: number): number => Math.round(x * 10) / 10;
  return {
    n: values.length,
    median: round(median(values)),
    p99: round(quantile(values, 0.99)),
    max: round(values.length === 0 ? Number.NaN : Math.max(...values)),
  };
}

const results = new Map<string, Record<string, unknown>>();

/**
 * Records what a scenario measured: printed at once (so the test log carries the figures),
 * and written to `$LATCHKEY_FAULTS_RESULTS_DIR/<backend>.json` by {@link flushResults}
 * when that variable is set (tools/faults/report.ts sets it).
 */
export function record(backend: string, scenario: string, data: Record<string, unknown>): void {
  results.set(`${backend}\u0000${scenario}`, data);
  console.log(`[faults] ${backend} ${scenario}: ${JSON.stringify(data)}`);
}

/** Writes the recorded results of `backend` (see {@link record}). */
export function flushResults(backend: string): void {
  const dir = process.env['LATCHKEY_FAULTS_RESULTS_DIR'];
  if (dir === undefined || dir === '') return;
  const mine: Record<string, unknown> = {};
  for (const [key, data] of results) {
    const [name, scenario] = key.split('\u0000') as [string, string];
    if (name === backend) mine[scenario] = data;
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, `${backend}.json`),
    `${JSON.stringify({ backend, recordedAt: new Date().toISOString(), scenarios: mine }, null, 2)}\n`,
  );
}
