/**
 * The goals set for the benchmarks ("Goals at a glance" in docs/PERFORMANCE.md), checked against
 * a run's results. A goal the harness already judged is taken as recorded; one it did not is
 * worked out from the recorded figures with the harness's own paired ratio, and says so.
 *
 * @module
 */
import { pairedRatio, type CaseResult, type ContenderResult, type SuiteResult } from '../harness/index.js';

/** A judged goal, or why it could not be judged. */
export type Verdict =
  | { readonly status: 'pass' | 'fail'; readonly measured: string; readonly source: 'harness' | 'derived' }
  | { readonly status: 'not measured'; readonly reason: string };

/** A throughput goal relative to a reference contender (drawn as a line on the chart). */
export interface RatioGoal {
  readonly contender: string;
  readonly reference: string;
  readonly min: number;
  /** `>` rather than `≥`. */
  readonly strict: boolean;
}

/** One goal of one case. */
export interface IssueTarget {
  readonly suite: string;
  /** The case it applies to: its exact name, or a pattern (`getMany(…)`, `locked increment × …`). */
  readonly caseName: string | RegExp;
  /** The case's name for a reader (`getMany(…)` for a pattern). */
  readonly caseLabel: string;
  /** The goal in words. */
  readonly label: string;
  /** Set for throughput goals. */
  readonly ratio?: RatioGoal;
  /** Recognises the same goal among the targets the harness recorded. */
  readonly recorded: RegExp;
  /** Judges the goal from the case's figures. */
  readonly derive: (result: CaseResult) => Verdict;
  /** Only checked when the suite has such a case (no "missing" entry otherwise). */
  readonly optional?: boolean;
  /** More figures to show next to the measured one (e.g. the other way of counting). */
  readonly detail?: (result: CaseResult) => string | undefined;
}

/** A goal checked against one case. */
export interface CheckedTarget {
  readonly suite: string;
  readonly caseName: string;
  readonly label: string;
  readonly verdict: Verdict;
}

/** The key of the locked-increment cases' lost-update count. */
export const LOST_KEY = 'lost';
/** Commands the clients sent per increment (`MONITOR`). */
export const SENT_KEY = 'commandsPerOp';
/** Every command the server ran per increment, Lua `redis.call`s included (`INFO commandstats`). */
export const ALL_COMMANDS_KEY = 'commandsAllPerOp';
/** Lock handoff p50 in ms. */
export const HANDOFF_KEY = 'handoffP50';
/** Waits that ran out. */
export const ACQUIRE_FAILURES_KEY = 'acquireFailures';

/** Whether a case is a locked-increment case (named so by the suites, or reporting handoffs). */
export function isLockCase(result: CaseResult): boolean {
  return /^locked increment/.test(result.name) || result.metrics.some((m) => m.key === HANDOFF_KEY);
}

/** The get/set/getMany operation a case measures, if it is one of those. */
export function kvOperation(caseName: string): 'get' | 'set' | 'getMany' | undefined {
  // `get, 64 in flight` (suites measuring several levels) is a get case too.
  const operation = caseName.replace(IN_FLIGHT_SUFFIX, '');
  if (operation === 'get' || operation === 'set') return operation;
  return /^getMany\(/.test(operation) ? 'getMany' : undefined;
}

/** The `, N in flight` suffix of the cases of suites that measure several levels of concurrency. */
const IN_FLIGHT_SUFFIX = /, \d+ in flight$/;

function measured(result: CaseResult, name: string): ContenderResult | Verdict {
  const contender = result.contenders.find((c) => c.name === name);
  if (contender === undefined) return { status: 'not measured', reason: `${name} is not in the results` };
  if (contender.unavailable !== undefined) return { status: 'not measured', reason: `${name} did not run: ${contender.unavailable}` };
  if (contender.opsPerSec === undefined) return { status: 'not measured', reason: `${name} has no measured rounds` };
  return contender;
}

function ratioGoal(suite: string, caseName: string | RegExp, goal: RatioGoal, label?: string, caseLabel?: string): IssueTarget {
  const threshold = `${goal.min.toFixed(2)}×`;
  const escaped = `${goal.contender} ≥ ${threshold} ${goal.reference}`.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return {
    suite,
    caseName,
    caseLabel: caseLabel ?? (typeof caseName === 'string' ? caseName : 'getMany(…)'),
    label: label ?? `${goal.contender} ${goal.strict ? '>' : '≥'} ${threshold} ${goal.reference}`,
    ratio: goal,
    recorded: goal.strict ? new RegExp(`^${goal.contender} .*faster than`) : new RegExp(`^${escaped}$`),
    derive: (result) => {
      const a = measured(result, goal.contender);
      const b = measured(result, goal.reference);
      if ('status' in a) return a;
      if ('status' in b) return b;
      const ratio = pairedRatio(
        a.rounds.map((r) => r.opsPerSec),
        b.rounds.map((r) => r.opsPerSec),
      );
      if (ratio === undefined) return { status: 'not measured', reason: `${goal.reference} has no rounds with a rate above 0` };
      const pass = goal.strict ? ratio > goal.min : ratio >= goal.min;
      return { status: pass ? 'pass' : 'fail', measured: ratioText(ratio, goal.min), source: 'derived' };
    },
  };
}

/** A ratio to 2 decimals, or to 3 where 2 would print the threshold itself (0.949 is not "0.95×"). */
function ratioText(ratio: number, min: number): string {
  return `${ratio.toFixed(ratio.toFixed(2) === min.toFixed(2) && ratio !== min ? 3 : 2)}×`;
}

/**
 * The measured figure the harness recorded for a goal, or, where it reads as the threshold
 * itself (`0.95×` for a goal of 0.95×, rounded), the same ratio worked out to 3 decimals.
 */
function recordedText(target: IssueTarget, result: CaseResult, actual: string, pass: boolean): string {
  if (target.ratio === undefined || actual !== `${target.ratio.min.toFixed(2)}×`) return actual;
  const derived = target.derive(result);
  return derived.status === (pass ? 'pass' : 'fail') ? derived.measured : actual;
}

function metricVerdict(result: CaseResult, contender: string, key: string, max: number, digits: number): Verdict {
  const c = measured(result, contender);
  if ('status' in c) return c;
  const value = c.metrics[key];
  if (value === undefined) return { status: 'not measured', reason: `${contender} has no ${key} figure` };
  return { status: value <= max ? 'pass' : 'fail', measured: value.toFixed(digits), source: 'derived' };
}

const LOCK_CASE = /^locked increment/;
const GET_MANY = /^getMany\(/;

/** The latchkey contender of a lock case (`latchkey`, `latchkey withLock`). */
function latchkeyName(result: CaseResult): string {
  return result.contenders.find((c) => c.name.startsWith('latchkey'))?.name ?? 'latchkey';
}

function lostUpdates(suite: string, optional: boolean): IssueTarget {
  return {
    suite,
    caseName: LOCK_CASE,
    caseLabel: 'locked increment',
    label: 'latchkey: 0 lost updates',
    recorded: /^latchkey.*: 0 lost updates$/,
    derive: (result) => metricVerdict(result, latchkeyName(result), LOST_KEY, 0, 0),
    optional,
  };
}

function scriptInternal(result: CaseResult): string | undefined {
  const value = result.contenders.find((c) => c.name === latchkeyName(result))?.metrics[ALL_COMMANDS_KEY];
  return value === undefined
    ? undefined
    : `${value.toFixed(2)} including the commands run inside Lua scripts, which the goal does not count`;
}

/**
 * The cross-process lock cases with more than one process (`N processes × 8 waiters` on one key):
 * with one process there is no hand-over to another process to compare.
 */
const CROSS_PROCESS = /^cross-process locked increment: (?:[2-9]|\d{2,}) processes/;
/** Script-internal commands per increment in the cross-process cases (sent ones are {@link SENT_KEY}). */
export const SCRIPT_INTERNAL_KEY = 'scriptInternalPerOp';
/** Hand-over p50 to a holder in another process, in ms. */
export const CROSS_HANDOFF_KEY = 'crossHandoffP50';

function crossProcessCase(processes: number): RegExp {
  return new RegExp(`^cross-process locked increment: ${processes} processes`);
}

function scriptInternalOfCrossProcess(result: CaseResult): string | undefined {
  const value = result.contenders.find((c) => c.name === 'latchkey')?.metrics[SCRIPT_INTERNAL_KEY];
  return value === undefined ? undefined : `${value.toFixed(2)} more run inside Lua scripts`;
}

/** latchkey's hand-over to another process is no slower than the faster of redlock and redis-semaphore. */
function crossHandoffVerdict(result: CaseResult): Verdict {
  const own = measured(result, 'latchkey');
  if ('status' in own) return own;
  const peers = ['redlock', 'redis-semaphore'].map((name) => measured(result, name));
  const values = peers.flatMap((peer) => ('status' in peer ? [] : [peer.metrics[CROSS_HANDOFF_KEY]])).filter((v) => v !== undefined);
  const value = own.metrics[CROSS_HANDOFF_KEY];
  if (value === undefined || values.length === 0) return { status: 'not measured', reason: 'no cross-process hand-over figures' };
  const best = Math.min(...values);
  return { status: value <= best ? 'pass' : 'fail', measured: `${value.toFixed(3)} vs ${best.toFixed(3)} ms`, source: 'derived' };
}

/** Operations in flight of the data cases (`get, 1 in flight`, `get, 64 in flight`, …). */
export const DATA_LEVELS = [1, 64] as const;
/** latchkey's share of the raw driver's rate on every data case. */
export const RAW_GOAL = 0.95;
/** latchkey's share of keyv's rate on every data case. */
export const KEYV_GOAL = 1;
/** The tagged codec's share of JSON's round-trip rate on each JSON-shaped value. */
export const CODEC_GOAL = 0.9;
/** latchkey's share of `Map + v8 copy`'s rate in the memory suite. */
export const MEMORY_GOAL = 0.95;
/** The values of the codec suite that JSON can carry (its cases `<value>: round trip`). */
export const JSON_SHAPED_VALUES = ['small object', 'small array', '4 KB object', '10 KB object'] as const;
/**
 * The data goals of a suite, for get, set and getMany at each level in flight: latchkey ≥
 * {@link RAW_GOAL}× `raw` (the driver doing the same job by hand, JSON by hand) and ≥
 * {@link KEYV_GOAL}× keyv (not measured, with keyv's reason, where keyv cannot run).
 */
function dataGoals(suite: string, raw: string): IssueTarget[] {
  const operations = [
    ['get', 'get'],
    ['set', 'set'],
    ['getMany\\(\\d+\\)', 'getMany(…)'],
  ] as const;
  return operations.flatMap(([pattern, label]) =>
    DATA_LEVELS.flatMap((level) =>
      [
        { reference: raw, min: RAW_GOAL },
        { reference: 'keyv', min: KEYV_GOAL },
      ].map(({ reference, min }) =>
        ratioGoal(
          suite,
          new RegExp(`^${pattern}, ${level} in flight$`),
          { contender: 'latchkey', reference, min, strict: false },
          undefined,
          `${label}, ${level} in flight`,
        ),
      ),
    ),
  );
}

/** Every goal, by suite. */
export const ISSUE_TARGETS: readonly IssueTarget[] = [
  ...JSON_SHAPED_VALUES.map((value) =>
    ratioGoal(
      'codec',
      `${value}: round trip`,
      { contender: 'tagged', reference: 'JSON', min: CODEC_GOAL, strict: false },
      `tagged codec (the default) ≥ ${CODEC_GOAL.toFixed(2)}× JSON's round-trip rate`,
    ),
  ),
  ...(['get', 'set', GET_MANY] as const).map((op) =>
    ratioGoal('memory', op, { contender: 'latchkey', reference: 'Map + v8 copy', min: MEMORY_GOAL, strict: false }),
  ),
  lostUpdates('memory', false),
  ...dataGoals('redis', 'raw ioredis'),
  lostUpdates('redis', false),
  {
    suite: 'redis',
    caseName: LOCK_CASE,
    caseLabel: 'locked increment',
    label: 'latchkey: ≤ 6 commands per locked increment, counted as commands sent by the clients',
    recorded: /≤ 6 commands sent/,
    derive: (result) => metricVerdict(result, 'latchkey', SENT_KEY, 6, 2),
    detail: scriptInternal,
  },
  {
    suite: 'redis',
    caseName: crossProcessCase(16),
    caseLabel: 'cross-process locked increment: 16 processes × 8 waiters',
    label: 'latchkey: ≤ 6 commands sent per locked increment at 16 processes × 8 waiters on one key',
    recorded: /≤ 6 commands sent/,
    derive: (result) => metricVerdict(result, 'latchkey', SENT_KEY, 6, 2),
    detail: scriptInternalOfCrossProcess,
  },
  {
    suite: 'redis',
    caseName: CROSS_PROCESS,
    caseLabel: 'cross-process locked increment',
    label: 'latchkey: hand-over p50 to another process ≤ the best of redlock and redis-semaphore in the same run',
    recorded: /hand-over to another process p50 ≤ the best peer/,
    derive: crossHandoffVerdict,
  },
  ...(['redlock', 'redis-semaphore'] as const).map((peer): IssueTarget => ({
    ...ratioGoal('redis', crossProcessCase(4), { contender: 'latchkey', reference: peer, min: 1, strict: false }),
    caseLabel: 'cross-process locked increment: 4 processes × 8 waiters',
    label: `latchkey locked-increment throughput across 4 processes ≥ ${peer} (≥ 1.00×)`,
  })),
  ...dataGoals('memcached', 'raw memjs'),
  lostUpdates('memcached', true),
  ...dataGoals('mongo', 'raw mongodb'),
  lostUpdates('mongo', true),
  ...dataGoals('postgres', 'raw pg'),
  ...dataGoals('sqlite', 'raw better-sqlite3'),
];

function applies(target: IssueTarget, suite: string, result: CaseResult): boolean {
  if (target.suite !== suite) return false;
  return typeof target.caseName === 'string' ? target.caseName === result.name : target.caseName.test(result.name);
}

/** The throughput goal of a case, for the chart. */
export function ratioGoalOf(suite: string, caseName: string): RatioGoal | undefined {
  return ISSUE_TARGETS.find(
    (t) =>
      t.ratio !== undefined && t.suite === suite && (typeof t.caseName === 'string' ? t.caseName === caseName : t.caseName.test(caseName)),
  )?.ratio;
}

/** Whether a goal compares latchkey's throughput with `reference` on this case. */
export function hasRatioGoal(suite: string, caseName: string, reference: string): boolean {
  return ISSUE_TARGETS.some(
    (t) =>
      t.ratio?.reference === reference &&
      t.suite === suite &&
      (typeof t.caseName === 'string' ? t.caseName === caseName : t.caseName.test(caseName)),
  );
}

/** The goals of one case: the issue's (recorded or derived) and the harness's other checks. */
export interface CaseTargets {
  readonly issue: readonly CheckedTarget[];
  /** Checks the harness recorded that are not issue goals (e.g. "the control loses updates"). */
  readonly other: readonly CheckedTarget[];
}

/** Checks the issue's goals for `result` and collects the harness's other recorded checks. */
export function checkCase(suite: string, result: CaseResult): CaseTargets {
  const used = new Set<number>();
  const issue = ISSUE_TARGETS.filter((t) => applies(t, suite, result)).map((target): CheckedTarget => {
    const index = result.targets.findIndex((r, i) => !used.has(i) && target.recorded.test(r.label));
    let verdict: Verdict;
    if (index >= 0) {
      used.add(index);
      const recorded = result.targets[index] as (typeof result.targets)[number];
      verdict = {
        status: recorded.pass ? 'pass' : 'fail',
        measured: recordedText(target, result, recorded.actual, recorded.pass),
        source: 'harness',
      };
    } else verdict = target.derive(result);
    const detail = verdict.status === 'not measured' ? undefined : target.detail?.(result);
    if (detail !== undefined && verdict.status !== 'not measured') verdict = { ...verdict, measured: `${verdict.measured}; ${detail}` };
    return { suite, caseName: result.name, label: target.label, verdict };
  });
  const other = result.targets
    .filter((_, i) => !used.has(i))
    .map((r): CheckedTarget => ({
      suite,
      caseName: result.name,
      label: r.label,
      verdict: { status: r.pass ? 'pass' : 'fail', measured: r.actual, source: 'harness' },
    }));
  return { issue, other };
}

/** The goals a suite must be judged on (those that apply only to cases it may not have left out). */
export function goalsOfSuite(suite: string): readonly IssueTarget[] {
  return ISSUE_TARGETS.filter((t) => t.suite === suite && t.optional !== true);
}

/** Issue goals of `suite` that no case of its results matched (the case is missing from the results). */
export function unmatchedGoals(suite: SuiteResult): readonly IssueTarget[] {
  return goalsOfSuite(suite.name).filter((t) => !suite.cases.some((c) => applies(t, suite.name, c)));
}
