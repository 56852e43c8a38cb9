/**
 * The two-run rule: a goal counts as met only when it holds in every full run given to the
 * generator, and at least two were given. One run's pass is "not settled" — on a shared machine
 * a ratio moves by 0.2–0.3 between runs (tools/bench/README.md), so one pass proves little.
 *
 * @module
 */
import type { CheckedTarget, Verdict } from './targets.js';

/** Full runs needed before a goal can count as met. */
export const RUNS_NEEDED = 2;

/** A goal over all the runs: what each run measured and the verdict of them together. */
export interface GoalRow {
  readonly suite: string;
  readonly caseName: string;
  readonly label: string;
  /** One per run, in the order the runs were given; `undefined`: the run has no such goal row. */
  readonly verdicts: readonly (Verdict | undefined)[];
  readonly settled: Settled;
}

/** The verdict over the runs. */
export interface Settled {
  readonly status: 'met' | 'not met' | 'not settled' | 'not measured';
  /** The verdict in words (the goals table's last column). */
  readonly text: string;
}

/** `1`, `1 and 2`, `1, 2 and 3`. */
function runList(indexes: readonly number[]): string {
  const names = indexes.map((i) => String(i + 1));
  return names.length <= 1 ? (names[0] ?? '') : `${names.slice(0, -1).join(', ')} and ${names.at(-1) ?? ''}`;
}

/**
 * The verdict of one goal over the runs' verdicts (one per run, `undefined` where a run has no
 * such row): met only when every run measured it and passed, and there are at least
 * {@link RUNS_NEEDED} runs; not met as soon as one run missed it.
 */
export function settle(verdicts: readonly (Verdict | undefined)[]): Settled {
  const runs = verdicts.length;
  const failed = verdicts.flatMap((v, i) => (v?.status === 'fail' ? [i] : []));
  const passed = verdicts.flatMap((v, i) => (v?.status === 'pass' ? [i] : []));
  const unmeasured = verdicts.flatMap((v, i) => (v === undefined || v.status === 'not measured' ? [i] : []));
  if (failed.length > 0) {
    const where =
      runs === 1
        ? 'missed in the one run given'
        : failed.length === runs
          ? runs === 2
            ? 'missed in both runs'
            : `missed in all ${runs} runs`
          : `missed in run ${runList(failed)}` +
            (passed.length > 0 ? `, met in run ${runList(passed)}` : '') +
            (unmeasured.length > 0 ? `, not measured in run ${runList(unmeasured)}` : '');
    return { status: 'not met', text: `not met: ${where}` };
  }
  if (passed.length === 0) return { status: 'not measured', text: runs === 1 ? 'not measured' : 'not measured in any run' };
  if (unmeasured.length > 0)
    return {
      status: 'not settled',
      text: `not settled: met in run ${runList(passed)}, not measured in run ${runList(unmeasured)}`,
    };
  if (runs < RUNS_NEEDED)
    return {
      status: 'not settled',
      text: `not settled: met in the one run given; a goal counts as met only when it holds in ${RUNS_NEEDED} full runs`,
    };
  return { status: 'met', text: runs === 2 ? 'met in both runs' : `met in all ${runs} runs` };
}

function key(target: CheckedTarget): string {
  return [target.suite, target.caseName, target.label].join('\u0000');
}

/**
 * Lines up the goals checked in each run (`runs[i]`: run i's goal rows) by suite, case and goal,
 * in the order of the first run (goals only later runs have follow), and settles each.
 */
export function mergeRuns(runs: readonly (readonly CheckedTarget[])[]): GoalRow[] {
  const rows = new Map<string, { target: CheckedTarget; verdicts: (Verdict | undefined)[] }>();
  runs.forEach((checked, run) => {
    // A goal that applies twice to one case (not the case today) keeps one row per occurrence.
    const seen = new Map<string, number>();
    for (const target of checked) {
      const base = key(target);
      const occurrence = seen.get(base) ?? 0;
      seen.set(base, occurrence + 1);
      const id = `${base}\u0000${occurrence}`;
      let row = rows.get(id);
      if (row === undefined) {
        row = { target, verdicts: Array<Verdict | undefined>(runs.length).fill(undefined) };
        rows.set(id, row);
      }
      row.verdicts[run] = target.verdict;
    }
  });
  return [...rows.values()].map(({ target, verdicts }) => ({
    suite: target.suite,
    caseName: target.caseName,
    label: target.label,
    verdicts,
    settled: settle(verdicts),
  }));
}
