import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseArgs, RESULTS_DIR, RESULTS_DIR_ENV, UsageError } from '../harness/index.js';

const SUITES = ['codec', 'redis'];

describe('the results folder of a run', () => {
  it('is .bench-results at the repository root by default', () => {
    expect(parseArgs([], SUITES, {}).resultsDir).toBe(RESULTS_DIR);
  });

  it('is --out, taken from the current directory, in either spelling', () => {
    expect(parseArgs(['--out', '.bench-results/run-2'], SUITES, {}).resultsDir).toBe(resolve('.bench-results/run-2'));
    expect(parseArgs(['redis', '--out=/tmp/run-1'], SUITES, {}).resultsDir).toBe('/tmp/run-1');
  });

  it(`is $${RESULTS_DIR_ENV} when --out is not given, and --out wins over it`, () => {
    const env = { [RESULTS_DIR_ENV]: join('/tmp', 'from-env') };
    expect(parseArgs([], SUITES, env).resultsDir).toBe('/tmp/from-env');
    expect(parseArgs(['--out', '/tmp/flag'], SUITES, env).resultsDir).toBe('/tmp/flag');
    expect(parseArgs([], SUITES, { [RESULTS_DIR_ENV]: '' }).resultsDir).toBe(RESULTS_DIR);
  });

  it('needs a folder after --out', () => {
    expect(() => parseArgs(['--out'], SUITES, {})).toThrow(UsageError);
  });
});
