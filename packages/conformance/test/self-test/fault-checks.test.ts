/**
 * The `faults` group has teeth: a tiny networked store (test/fixtures/faults/line-kv.ts) runs
 * through it via the built command, correct and with one planted defect at a time, and each
 * defect must fail exactly the fault checks it concerns while the correct store passes them all.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { faultCheckName } from '../../src/internal/groups/fault-checks.js';
import type { CheckResult } from '../../src/internal/runner.js';
import { runCli, type CliRun } from '../support/run-cli.js';

const DATA_CALLS = ['get', 'getMany', 'set', 'setMany', 'delete', 'deleteMany'] as const;
const LOCK_CALLS = ['acquireLock', 'releaseLock', 'extendLock'] as const;
type FaultName = 'pause' | 'black hole' | 'reset' | 'refused';

const CONTROL = 'faults/net-control.ts';
const DEFECTS: readonly { readonly fixture: string; readonly defect: string; readonly failsUnder: readonly FaultName[] }[] = [
  { fixture: 'faults/net-no-deadline.ts', defect: 'calls without a deadline', failsUnder: ['pause', 'black hole'] },
  { fixture: 'faults/net-untyped-errors.ts', defect: 'a lost connection rejected with a plain Error', failsUnder: ['reset', 'refused'] },
  { fixture: 'faults/net-never-reconnects.ts', defect: 'a backend that never reconnects', failsUnder: ['black hole', 'reset', 'refused'] },
];
const ALL_FAULTS: readonly FaultName[] = ['pause', 'black hole', 'reset', 'refused'];

/** The rule names (last part of the full name) of `results` in `state`, sorted. */
function rules(results: readonly CheckResult[], state: CheckResult['state']): string[] {
  return results
    .filter((result) => result.state === state)
    .map((result) => result.name.slice(result.name.lastIndexOf(' > ') + 3))
    .sort();
}

function checksUnder(faults: readonly FaultName[]): string[] {
  return faults.flatMap((fault) => DATA_CALLS.map((call) => faultCheckName(fault, call))).sort();
}

describe('the faults group', () => {
  let control: CliRun | undefined;
  let defects: CliRun | undefined;
  const of = (run: CliRun | undefined, module: string): CheckResult[] =>
    run?.report?.results.filter((result) => result.module === module) ?? [];

  beforeAll(async () => {
    [control, defects] = await Promise.all([runCli([CONTROL]), runCli(DEFECTS.map(({ fixture }) => fixture))]);
  }, 300_000);

  it('passes a correct networked backend under every fault, and reports the lock calls of a lockless one not applicable', () => {
    const results = of(control, CONTROL);
    expect(control?.failed, control?.stdout).toStrictEqual([]);
    expect(rules(results, 'passed')).toStrictEqual(checksUnder(ALL_FAULTS));
    expect(rules(results, 'skipped')).toStrictEqual(
      ALL_FAULTS.flatMap((fault) =>
        LOCK_CALLS.map((call) => `${faultCheckName(fault, call)} — not applicable: the backend has no locks of its own`),
      ).sort(),
    );
  });

  for (const { fixture, defect, failsUnder } of DEFECTS) {
    it(`catches ${defect} under ${failsUnder.join(', ')} and under nothing else`, () => {
      const results = of(defects, fixture);
      expect(results.length, defects?.stderr).toBeGreaterThan(0);
      expect(rules(results, 'failed'), defects?.stdout).toStrictEqual(checksUnder(failsUnder));
      expect(rules(results, 'passed')).toStrictEqual(checksUnder(ALL_FAULTS.filter((fault) => !failsUnder.includes(fault))));
    });
  }

  it('prints the deadline, the measured round trip, the bound and how long the call took when a check fails', () => {
    const failure = defects?.report?.results.find((result) => result.module === DEFECTS[0]?.fixture && result.state === 'failed');
    expect(failure?.messages.join('\n')).toMatch(
      /had not settled after \d+ ms; the deadline 300 ms \(callDeadlineMs\), round trip through the proxy \d+ ms, slack 250 ms: bound \d+ ms/,
    );
  });

  it('reports the group not applicable, with the reason, when no faults option is given', async () => {
    const run = await runCli(['--only', 'faults', 'control.ts']);
    expect(run.report?.results.map((result) => [result.state, result.name])).toStrictEqual([
      [
        'skipped',
        'faults: network faults between the backend and its server > every call settles with a typed error under network faults, and the backend recovers — not applicable: no faults option is given (faults: { server, createThrough } puts the suite’s TCP proxy between the backend and its server)',
      ],
    ]);
  }, 180_000);
});
