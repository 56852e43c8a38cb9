import { describe, expect, it } from 'vitest';
import { mergeRuns, settle } from '../report/runs.js';
import type { CheckedTarget, Verdict } from '../report/targets.js';

const pass: Verdict = { status: 'pass', measured: '1.02×', source: 'derived' };
const fail: Verdict = { status: 'fail', measured: '0.90×', source: 'derived' };
const none: Verdict = { status: 'not measured', reason: 'keyv did not run' };

describe('settle (the two-run rule)', () => {
  it('leaves a goal met in the only run given not settled, and says so in words', () => {
    const settled = settle([pass]);
    expect(settled.status).toBe('not settled');
    expect(settled.text).toMatch(/^not settled: met in the one run given; .*2 full runs/);
  });

  it('counts a goal as met when it held in both of two runs', () => {
    expect(settle([pass, pass])).toEqual({ status: 'met', text: 'met in both runs' });
    expect(settle([pass, pass, pass])).toEqual({ status: 'met', text: 'met in all 3 runs' });
  });

  it('counts a goal as not met as soon as one run missed it, naming the runs', () => {
    expect(settle([pass, fail])).toEqual({ status: 'not met', text: 'not met: missed in run 2, met in run 1' });
    expect(settle([fail, pass, fail])).toEqual({ status: 'not met', text: 'not met: missed in run 1 and 3, met in run 2' });
    expect(settle([fail, fail])).toEqual({ status: 'not met', text: 'not met: missed in both runs' });
    expect(settle([fail, fail, fail]).text).toBe('not met: missed in all 3 runs');
    expect(settle([fail])).toEqual({ status: 'not met', text: 'not met: missed in the one run given' });
    expect(settle([none, fail])).toEqual({ status: 'not met', text: 'not met: missed in run 2, not measured in run 1' });
  });

  it('does not settle a goal one of the runs did not measure', () => {
    expect(settle([pass, none])).toEqual({ status: 'not settled', text: 'not settled: met in run 1, not measured in run 2' });
    expect(settle([undefined, pass]).status).toBe('not settled');
  });

  it('reports a goal no run measured as not measured', () => {
    expect(settle([none]).status).toBe('not measured');
    expect(settle([none, undefined])).toEqual({ status: 'not measured', text: 'not measured in any run' });
  });
});

describe('mergeRuns', () => {
  const checked = (caseName: string, label: string, verdict: Verdict): CheckedTarget => ({ suite: 'redis', caseName, label, verdict });

  it('lines up the runs by suite, case and goal, in the first run’s order, and settles each row', () => {
    const run1 = [
      checked('get, 1 in flight', 'latchkey ≥ 0.95× raw ioredis', pass),
      checked('get, 1 in flight', 'latchkey ≥ 1.00× keyv', fail),
    ];
    const run2 = [
      checked('get, 1 in flight', 'latchkey ≥ 1.00× keyv', pass),
      checked('get, 1 in flight', 'latchkey ≥ 0.95× raw ioredis', pass),
    ];
    const rows = mergeRuns([run1, run2]);
    expect(rows.map((r) => [r.label, r.verdicts.map((v) => v?.status), r.settled.status])).toEqual([
      ['latchkey ≥ 0.95× raw ioredis', ['pass', 'pass'], 'met'],
      ['latchkey ≥ 1.00× keyv', ['fail', 'pass'], 'not met'],
    ]);
  });

  it('keeps a goal only a later run has, with no verdict for the runs that lack it', () => {
    const rows = mergeRuns([[], [checked('set, 64 in flight', 'latchkey ≥ 1.00× keyv', pass)]]);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.verdicts).toEqual([undefined, pass]);
    expect(rows[0]?.settled.status).toBe('not settled');
  });
});
