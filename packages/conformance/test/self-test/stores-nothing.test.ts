/**
 * A backend that stores nothing (every read misses, every write is dropped while answering
 * 'written', the locks are a real MemoryBackend's) must fail nearly every backend check that
 * touches data. The store's own logic above it (validation, the registry, lock bookkeeping)
 * still passes many store checks, which is why the report counts backend and store checks
 * apart. The counts are pinned: a change in them is a change in the suite's teeth.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { CheckResult } from '../../src/internal/runner.js';
import { runCli, type CliRun } from '../support/run-cli.js';

const FIXTURE = 'defects/stores-nothing.ts';

/** Backend checks that write or read values: every section of `data` but capabilities and close, backend expiry, and the lock sections about data. */
function touchesData(name: string): boolean {
  const [groupTitle, section] = name.split(' > ');
  const group = groupTitle?.split(':')[0];
  if (group === 'data') return ['values', 'getMany', 'setMany', 'delete'].includes(section ?? '');
  if (group === 'ttl') return section === 'backend expiry';
  if (group === 'locks') return ['lease-conditional writes', 'locks and data are independent'].includes(section ?? '');
  return false;
}

describe('a backend that stores nothing', () => {
  let run: CliRun | undefined;
  let results: CheckResult[] = [];

  beforeAll(async () => {
    run = await runCli([FIXTURE]);
    results = run.report?.results.filter((result) => result.module === FIXTURE) ?? [];
  }, 300_000);

  it('fails every backend check that touches data (at least 95 % of them)', () => {
    const applicable = results.filter((result) => touchesData(result.name) && result.state !== 'skipped');
    const passed = applicable.filter((result) => result.state === 'passed').map((result) => result.name);
    expect(applicable.length, run?.stderr).toBe(53);
    expect(passed, 'data checks a backend that stores nothing passes').toStrictEqual([]);
    expect((applicable.length - passed.length) / applicable.length).toBeGreaterThanOrEqual(0.95);
  });

  it('reports backend and store checks apart, with the pinned counts', () => {
    expect(run?.report?.layers).toStrictEqual({
      backend: { passed: 42, failed: 55, skipped: 3 },
      store: { passed: 82, failed: 83, skipped: 3 },
    });
    expect({ passed: run?.report?.passed, failed: run?.report?.failed, skipped: run?.report?.skipped }).toStrictEqual({
      passed: 124,
      failed: 138,
      skipped: 6,
    });
    expect(run?.stdout).toContain('backend checks (the backend called directly): 42 passed, 55 failed, 3 skipped');
    expect(run?.stdout).toContain('store checks (through KeyValueStore): 82 passed, 83 failed, 3 skipped');
    expect(run?.lastLine).toBe('124 passed, 138 failed');
    expect(run?.code).toBe(1);
  });
});
