/**
 * What the results say about the run as a whole: when, on what, with which timing, and how
 * busy the machine was.
 *
 * @module
 */
import type { SuiteResult, Timing } from '../harness/index.js';

/** A range of recorded values. */
export interface Range {
  readonly min: number;
  readonly max: number;
}

/** The run, summarised over the suites that ran. */
export interface RunInfo {
  /** Earliest and latest suite start (ISO strings), when any suite ran. */
  readonly started?: { readonly first: string; readonly last: string };
  /** Distinct Node versions. */
  readonly node: readonly string[];
  /** Distinct `platform · cpus × model` descriptions. */
  readonly machines: readonly string[];
  /** Distinct default timings. */
  readonly timings: readonly Timing[];
  /** Distinct case timings that differ from the default (e.g. the lock cases). */
  readonly caseTimings: readonly { readonly timing: Timing; readonly cases: readonly string[] }[];
  /** CPU busy and steal shares over the suites that recorded them, in percent. */
  readonly busyPct?: Range;
  readonly stealPct?: Range;
  /** The 1-minute load average at the start of each suite. */
  readonly load1?: Range;
  /** Suites run with `--quick`. */
  readonly quickSuites: readonly string[];
  /** Hours between the first and the last suite start. */
  readonly spanHours: number;
}

function range(values: readonly number[]): Range | undefined {
  return values.length === 0 ? undefined : { min: Math.min(...values), max: Math.max(...values) };
}

function sameTiming(a: Timing, b: Timing): boolean {
  return a.rounds === b.rounds && a.roundMs === b.roundMs && a.warmupMs === b.warmupMs;
}

/** `5 × 400 ms rounds after a 200 ms warm-up`. */
export function timingText(timing: Timing): string {
  return `${timing.rounds} × ${timing.roundMs} ms rounds after a ${timing.warmupMs} ms warm-up`;
}

/** Summarises the suites that ran (skipped ones recorded no machine figures worth quoting). */
export function runInfo(suites: readonly SuiteResult[]): RunInfo {
  const ran = suites.filter((s) => s.skipped === undefined);
  const starts = ran.map((s) => s.environment.startedAt).sort();
  const timings: Timing[] = [];
  for (const s of ran) if (!timings.some((t) => sameTiming(t, s.environment.timing))) timings.push(s.environment.timing);
  const caseTimings: { timing: Timing; cases: string[] }[] = [];
  for (const s of ran) {
    for (const c of s.cases) {
      if (sameTiming(c.timing, s.environment.timing)) continue;
      const entry = caseTimings.find((e) => sameTiming(e.timing, c.timing));
      if (entry === undefined) caseTimings.push({ timing: c.timing, cases: [`${s.name} ${c.name}`] });
      else entry.cases.push(`${s.name} ${c.name}`);
    }
  }
  const first = starts[0];
  const last = starts.at(-1);
  const busy = range(ran.flatMap((s) => (s.machine === undefined ? [] : [s.machine.busyPct])));
  const steal = range(ran.flatMap((s) => (s.machine === undefined ? [] : [s.machine.stealPct])));
  const load1 = range(ran.flatMap((s) => s.environment.loadAverage.slice(0, 1)));
  return {
    ...(first === undefined || last === undefined ? {} : { started: { first, last } }),
    node: [...new Set(ran.map((s) => s.environment.node))],
    machines: [...new Set(ran.map((s) => `${s.environment.platform} · ${s.environment.cpus} × ${s.environment.cpuModel}`))],
    timings,
    caseTimings,
    ...(busy === undefined ? {} : { busyPct: busy }),
    ...(steal === undefined ? {} : { stealPct: steal }),
    ...(load1 === undefined ? {} : { load1 }),
    quickSuites: ran.filter((s) => s.environment.quick).map((s) => s.name),
    spanHours: first === undefined || last === undefined ? 0 : (Date.parse(last) - Date.parse(first)) / 3_600_000,
  };
}

/** `29–40%` or `37%`. */
export function rangeText(r: Range, digits = 0, unit = '%'): string {
  const a = r.min.toFixed(digits);
  const b = r.max.toFixed(digits);
  return a === b ? `${a}${unit}` : `${a}–${b}${unit}`;
}

/** `2026-11-26, 13:17–13:19 UTC` (or both full dates when the run crossed midnight). */
export function dateText(started: { first: string; last: string }): string {
  const [d1, t1 = ''] = started.first.split('T');
  const [d2, t2 = ''] = started.last.split('T');
  const hm = (t: string): string => t.slice(0, 5);
  if (d1 === d2) return hm(t1) === hm(t2) ? `${d1}, ${hm(t1)} UTC` : `${d1}, suites started ${hm(t1)}–${hm(t2)} UTC`;
  return `${d1} ${hm(t1)} UTC – ${d2} ${hm(t2)} UTC`;
}
