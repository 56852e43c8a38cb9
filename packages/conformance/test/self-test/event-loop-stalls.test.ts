/**
 * The stall retry forgives only lag from outside the backend, and reports what it forgave: a
 * backend that blocks the event loop itself and answers wrongly half the time fails (a retry on
 * any lag would have re-run it until it passed), while a check that failed because the test
 * process itself held the event loop is re-run and reported flaky, with its timings.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CheckResult, RunResult } from '../../src/internal/runner.js';
import { fixturesDir, packageDir, runCli, type CliRun } from '../support/run-cli.js';

const GET_MANY = 'data: the backend’s data calls > getMany > ';

describe('a backend that blocks the event loop 60 ms per getMany and answers wrongly half the time', () => {
  let run: CliRun | undefined;
  beforeAll(async () => {
    run = await runCli(['stalls/blocking-flaky-get-many.ts']);
  }, 180_000);

  it.each(['answers in input order', 'answers each duplicate key', 'answers undefined in place of each missing key'])(
    'fails "%s" without a re-run, though the backend’s own calls stalled the event loop',
    (rule) => {
      const result = run?.report?.results.find((entry) => entry.name === `${GET_MANY}${rule}`);
      const seen = JSON.stringify(result?.attempts);
      expect(result?.state, `${seen}\n${run?.stdout}`).toBe('failed');
      expect(result?.flaky).toBe(false);
      expect(result?.attempts?.length, seen).toBe(1);
      const [first] = result?.attempts ?? [];
      // The lag was there (a retry on any lag would have re-run the check), and it was the backend's.
      expect(first?.totalLagMs, seen).toBeGreaterThanOrEqual(40);
      expect(first?.outsideLagMs, seen).toBeLessThan(50);
      expect(result?.messages.join('\n')).toContain('[timings] not re-run');
      expect(run?.code).toBe(1);
    },
  );
});

describe('a check that fails because the test process held the event loop outside any backend call', () => {
  let outcome: { result: RunResult; lines: string[] } | undefined;
  const check = (fragment: string): CheckResult | undefined => outcome?.result.results.find((entry) => entry.name.includes(fragment));

  beforeAll(async () => {
    const entry = join(fixturesDir, 'stalls', 'outside-lag-entry.ts');
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        [join(packageDir, 'test', 'support', 'run-entry.mjs'), entry],
        { cwd: fixturesDir, maxBuffer: 16 * 1024 * 1024, timeout: 170_000 },
        (error, out, err) => (error === null ? resolve(out) : reject(new Error(`${error.message}\n${err}`, { cause: error }))),
      );
    });
    outcome = JSON.parse(stdout) as { result: RunResult; lines: string[] };
  }, 180_000);

  it('is re-run, passes, and is reported flaky with the lag its failed attempt saw', () => {
    const result = check('(the first attempt holds');
    const seen = JSON.stringify(result);
    expect(result?.state, seen).toBe('passed');
    expect(result?.flaky, seen).toBe(true);
    expect(
      result?.attempts?.map((attempt) => attempt.outcome),
      seen,
    ).toStrictEqual(['failed', 'passed']);
    expect(result?.attempts?.[0]?.outsideLagMs, seen).toBeGreaterThanOrEqual(150);
    expect(result?.attempts?.[0]?.message, seen).toContain('the read answered');
    expect(result?.durationMs, seen).toBeGreaterThan(0);
    expect(outcome?.result.flaky).toBe(1);
    expect(outcome?.result.passed).toBe(2);
  });

  it('is shown flaky by the command, with each attempt’s timings', () => {
    const at = outcome?.lines.findIndex((line) => line.startsWith('~ flaky: ') && line.includes('(the first attempt holds')) ?? -1;
    expect(at, outcome?.lines.join('\n')).toBeGreaterThanOrEqual(0);
    expect(outcome?.lines[at + 1]).toMatch(/^ {4}attempt 1: failed after \d+ ms; worst event-loop lag \d+ ms, \d+ ms of it from outside/);
    expect(outcome?.lines.slice(at + 1).some((line) => line.startsWith('    attempt 2: passed after '))).toBe(true);
  });

  it('fails after two re-runs when every attempt fails, listing each attempt’s timings', () => {
    const result = check('(every attempt holds');
    expect(result?.state, JSON.stringify(result)).toBe('failed');
    expect(result?.attempts?.length).toBe(3);
    expect(result?.messages.join('\n')).toContain('[timings] re-run 2 time(s), failed every time');
  });

  it('is not re-run when it passes', () => {
    const result = check('(no stall)');
    expect(result?.state, JSON.stringify(result)).toBe('passed');
    expect(result?.flaky).toBe(false);
    expect(result?.attempts).toBeUndefined();
  });
});
