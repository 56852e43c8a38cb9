/**
 * Reads the `.bench-results/<suite>.json` files written by `npm run bench` and checks their
 * shape, so that the report only ever shows figures a run recorded: a missing or malformed
 * file becomes a suite that is listed as not run, with the reason.
 *
 * @module
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type {
  CaseResult,
  ContenderResult,
  Environment,
  MetricSpec,
  RateSummary,
  RoundSample,
  SuiteResult,
  TargetOutcome,
  Timing,
} from '../harness/index.js';

/** The suites of `tools/bench/run.ts`, in the order the report shows them. */
export const KNOWN_SUITES: readonly string[] = ['codec', 'memory', 'redis', 'memcached', 'mongo', 'postgres', 'sqlite'];

/** One suite as found in the results folder. */
export type LoadedSuite =
  | { readonly kind: 'ok'; readonly name: string; readonly file: string; readonly result: SuiteResult }
  | { readonly kind: 'missing' | 'unreadable'; readonly name: string; readonly file: string; readonly reason: string };

/** Thrown for a results file whose content is not what the harness writes. */
class ShapeError extends Error {
  override readonly name = 'ShapeError';
}

type Json = Record<string, unknown>;

function object(value: unknown, path: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ShapeError(`${path} is not an object`);
  return value as Json;
}

function array(value: unknown, path: string): unknown[] {
  if (!Array.isArray(value)) throw new ShapeError(`${path} is not an array`);
  return value;
}

function string(o: Json, key: string, path: string): string {
  const value = o[key];
  if (typeof value !== 'string') throw new ShapeError(`${path}.${key} is not a string`);
  return value;
}

function optionalString(o: Json, key: string, path: string): string | undefined {
  return o[key] === undefined || o[key] === null ? undefined : string(o, key, path);
}

function boolean(o: Json, key: string, path: string): boolean {
  const value = o[key];
  if (typeof value !== 'boolean') throw new ShapeError(`${path}.${key} is not a boolean`);
  return value;
}

function number(o: Json, key: string, path: string): number {
  const value = o[key];
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new ShapeError(`${path}.${key} is not a finite number`);
  return value;
}

/** JSON turns `NaN` (a metric nobody measured) into `null`: that reads as "not measured". */
function optionalNumber(o: Json, key: string, path: string): number | undefined {
  return o[key] === undefined || o[key] === null ? undefined : number(o, key, path);
}

function strings(value: unknown, path: string): string[] {
  return array(value, path).map((item, i) => {
    if (typeof item !== 'string') throw new ShapeError(`${path}[${i}] is not a string`);
    return item;
  });
}

function timing(value: unknown, path: string): Timing {
  const o = object(value, path);
  return { rounds: number(o, 'rounds', path), roundMs: number(o, 'roundMs', path), warmupMs: number(o, 'warmupMs', path) };
}

function percentiles(value: unknown, path: string): { p50: number; p99: number } | undefined {
  if (value === undefined || value === null) return undefined;
  const o = object(value, path);
  const p50 = optionalNumber(o, 'p50', path);
  const p99 = optionalNumber(o, 'p99', path);
  return p50 === undefined || p99 === undefined ? undefined : { p50, p99 };
}

function rateSummary(value: unknown, path: string): RateSummary | undefined {
  if (value === undefined || value === null) return undefined;
  const o = object(value, path);
  return {
    median: number(o, 'median', path),
    min: number(o, 'min', path),
    max: number(o, 'max', path),
    spreadPct: number(o, 'spreadPct', path),
  };
}

function roundSample(value: unknown, path: string): RoundSample {
  const o = object(value, path);
  const latency = percentiles(o['latency'], `${path}.latency`);
  return {
    ops: number(o, 'ops', path),
    failed: number(o, 'failed', path),
    elapsedMs: number(o, 'elapsedMs', path),
    opsPerSec: number(o, 'opsPerSec', path),
    ...(latency === undefined ? {} : { latency }),
  };
}

function metricValues(value: unknown, path: string): Record<string, number> {
  const o = object(value ?? {}, path);
  const values: Record<string, number> = {};
  for (const key of Object.keys(o)) {
    const v = optionalNumber(o, key, path);
    if (v !== undefined) values[key] = v;
  }
  return values;
}

function contender(value: unknown, path: string): ContenderResult {
  const o = object(value, path);
  const does = optionalString(o, 'does', path);
  const unavailable = optionalString(o, 'unavailable', path);
  const opsPerSec = rateSummary(o['opsPerSec'], `${path}.opsPerSec`);
  const ratio = optionalNumber(o, 'ratio', path);
  const latency = percentiles(o['latency'], `${path}.latency`);
  const firstError = optionalString(o, 'firstError', path);
  return {
    name: string(o, 'name', path),
    baseline: boolean(o, 'baseline', path),
    rounds: array(o['rounds'] ?? [], `${path}.rounds`).map((r, i) => roundSample(r, `${path}.rounds[${i}]`)),
    failed: number(o, 'failed', path),
    ops: number(o, 'ops', path),
    metrics: metricValues(o['metrics'], `${path}.metrics`),
    ...(does === undefined ? {} : { does }),
    ...(unavailable === undefined ? {} : { unavailable }),
    ...(opsPerSec === undefined ? {} : { opsPerSec }),
    ...(ratio === undefined ? {} : { ratio }),
    ...(latency === undefined ? {} : { latency }),
    ...(firstError === undefined ? {} : { firstError }),
  };
}

function metricSpec(value: unknown, path: string): MetricSpec {
  const o = object(value, path);
  const aggregate = string(o, 'aggregate', path);
  if (aggregate !== 'sum' && aggregate !== 'median' && aggregate !== 'max') throw new ShapeError(`${path}.aggregate is ${aggregate}`);
  const digits = optionalNumber(o, 'digits', path);
  return { key: string(o, 'key', path), label: string(o, 'label', path), aggregate, ...(digits === undefined ? {} : { digits }) };
}

function targetOutcome(value: unknown, path: string): TargetOutcome & { label: string } {
  const o = object(value, path);
  return { label: string(o, 'label', path), pass: boolean(o, 'pass', path), actual: string(o, 'actual', path) };
}

function caseResult(value: unknown, path: string): CaseResult {
  const o = object(value, path);
  const mode = string(o, 'mode', path);
  if (mode !== 'async' && mode !== 'sync') throw new ShapeError(`${path}.mode is ${mode}`);
  const error = optionalString(o, 'error', path);
  return {
    name: string(o, 'name', path),
    description: string(o, 'description', path),
    baseline: string(o, 'baseline', path),
    mode,
    concurrency: number(o, 'concurrency', path),
    timing: timing(o['timing'], `${path}.timing`),
    metrics: array(o['metrics'] ?? [], `${path}.metrics`).map((m, i) => metricSpec(m, `${path}.metrics[${i}]`)),
    latency: o['latency'] === true,
    contenders: array(o['contenders'] ?? [], `${path}.contenders`).map((c, i) => contender(c, `${path}.contenders[${i}]`)),
    targets: array(o['targets'] ?? [], `${path}.targets`).map((t, i) => targetOutcome(t, `${path}.targets[${i}]`)),
    durationMs: number(o, 'durationMs', path),
    ...(error === undefined ? {} : { error }),
  };
}

function environment(value: unknown, path: string): Environment {
  const o = object(value, path);
  return {
    node: string(o, 'node', path),
    platform: string(o, 'platform', path),
    cpus: number(o, 'cpus', path),
    cpuModel: string(o, 'cpuModel', path),
    loadAverage: array(o['loadAverage'], `${path}.loadAverage`).map((l, i) => {
      if (typeof l !== 'number') throw new ShapeError(`${path}.loadAverage[${i}] is not a number`);
      return l;
    }),
    startedAt: string(o, 'startedAt', path),
    quick: boolean(o, 'quick', path),
    timing: timing(o['timing'], `${path}.timing`),
  };
}

/**
 * Checks that `value` is a suite result as the harness writes it.
 *
 * @throws {Error} naming the first field that does not fit.
 */
export function parseSuiteResult(value: unknown): SuiteResult {
  const o = object(value, 'result');
  const skipped = optionalString(o, 'skipped', 'result');
  const error = optionalString(o, 'error', 'result');
  let machine: { busyPct: number; stealPct: number } | undefined;
  if (o['machine'] !== undefined && o['machine'] !== null) {
    const m = object(o['machine'], 'result.machine');
    machine = { busyPct: number(m, 'busyPct', 'result.machine'), stealPct: number(m, 'stealPct', 'result.machine') };
  }
  return {
    name: string(o, 'name', 'result'),
    title: string(o, 'title', 'result'),
    description: string(o, 'description', 'result'),
    notes: strings(o['notes'] ?? [], 'result.notes'),
    sections: strings(o['sections'] ?? [], 'result.sections'),
    cases: array(o['cases'] ?? [], 'result.cases').map((c, i) => caseResult(c, `result.cases[${i}]`)),
    environment: environment(o['environment'], 'result.environment'),
    ...(skipped === undefined ? {} : { skipped }),
    ...(error === undefined ? {} : { error }),
    ...(machine === undefined ? {} : { machine }),
  };
}

function loadOne(dir: string, name: string): LoadedSuite {
  const file = join(dir, `${name}.json`);
  if (!existsSync(file)) return { kind: 'missing', name, file, reason: `no results file (${name}.json) in the results folder` };
  try {
    const result = parseSuiteResult(JSON.parse(readFileSync(file, 'utf8')) as unknown);
    if (result.name !== name) return { kind: 'unreadable', name, file, reason: `the file holds the results of suite "${result.name}"` };
    return { kind: 'ok', name, file, result };
  } catch (error) {
    return { kind: 'unreadable', name, file, reason: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * Every known suite, found or not, in report order. Other `.json` files in `dir` (copies kept for
 * a comparison, other tools' output) are not read: only `<suite>.json` of a known suite is.
 *
 * @throws {Error} when `dir` cannot be listed (it does not exist or is not a folder).
 */
export function loadResults(dir: string): LoadedSuite[] {
  // Listing the folder first makes a missing folder fail here, as the caller expects, not as seven missing files.
  readdirSync(dir);
  return KNOWN_SUITES.map((name) => loadOne(dir, name));
}
