import { describe, expect, it } from 'vitest';
import type { SuiteResult } from '../harness/index.js';
import type { LoadedSuite } from '../report/load.js';
import { renderDocument, type RunInput } from '../report/markdown.js';
import { runInfo } from '../report/run-info.js';
import { dataCases, suiteResult } from './fixtures.js';

function run(dir: string, suites: readonly SuiteResult[]): RunInput {
  const loaded = suites.map((result): LoadedSuite => ({ kind: 'ok', name: result.name, file: `${dir}/${result.name}.json`, result }));
  return { suites: loaded, run: runInfo(suites), resultsDir: dir };
}

function goalRow(document: string, caseName: string, goal: string): string {
  const row = document.split('\n').find((line) => line.includes(`| ${caseName} `) && line.includes(goal));
  if (row === undefined) throw new Error(`no goals row for ${caseName} / ${goal}`);
  return row;
}

const GOAL = 'latchkey ≥ 0.95× raw ioredis';

describe('the goals table', () => {
  it('with one run, calls a goal that held "not settled" in words, not met', () => {
    const document = renderDocument({
      ...run('.bench-results', [suiteResult('redis', dataCases('raw ioredis', 1.2, 1.2))]),
      versions: [],
      chartFile: 'chart.svg',
    });
    const row = goalRow(document, 'get, 1 in flight', GOAL);
    expect(row).toContain('1.20×');
    expect(row).toContain('not settled: met in the one run given');
    expect(row).not.toContain('✅');
  });

  it('with two runs, shows each run’s figure and calls a goal met only where both runs met it', () => {
    const first = run('.bench-results/run-1', [suiteResult('redis', dataCases('raw ioredis', 1.2, 1.2), '2026-12-02T06:00:00.000Z')]);
    const second = run('.bench-results/run-2', [suiteResult('redis', dataCases('raw ioredis', 0.9, 1.2), '2026-12-02T07:00:00.000Z')]);
    const document = renderDocument({ ...first, versions: [], chartFile: 'chart.svg', otherRuns: [second] });
    const missed = goalRow(document, 'get, 1 in flight', GOAL);
    expect(missed).toContain('1.20×');
    expect(missed).toContain('0.90×');
    expect(missed).toContain('not met: missed in run 2, met in run 1');
    const met = goalRow(document, 'get, 1 in flight', 'latchkey ≥ 1.00× keyv');
    expect(met).toContain('✅ met in both runs');
    expect(document).toContain('| run 2 | `.bench-results/run-2` | 2026-12-02, 07:00 UTC');
  });

  it('lists every goal of a suite whose cases are missing, as not measured', () => {
    const document = renderDocument({ ...run('.bench-results', [suiteResult('mongo', [])]), versions: [], chartFile: 'chart.svg' });
    expect(goalRow(document, 'getMany(…), 64 in flight', 'latchkey ≥ 1.00× keyv')).toContain('the case is not in the results');
  });
});
