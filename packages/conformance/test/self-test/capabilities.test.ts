/**
 * The suite adapts to what a backend declares instead of failing it or silently skipping:
 * correct backends with unusual capabilities must pass, with every check that cannot apply
 * reported as skipped with its reason.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { CheckResult } from '../../src/internal/runner.js';
import { runCli, type CliRun } from '../support/run-cli.js';

const LOCKLESS = 'lockless-memory-backend.ts';
const BOUNDED = 'bounded-memory-backend.ts';
const COARSE = 'coarse-memory-backend.ts';

describe('adapting to declared capabilities', () => {
  let sizes: CliRun | undefined;
  let coarse: CliRun | undefined;
  const of = (run: CliRun | undefined, module: string): CheckResult[] =>
    run?.report?.results.filter((result) => result.module === module) ?? [];
  const failedIn = (results: readonly CheckResult[]): string[] =>
    results.filter((result) => result.state === 'failed').map((result) => result.name);

  beforeAll(async () => {
    [sizes, coarse] = await Promise.all([runCli([LOCKLESS, BOUNDED]), runCli([COARSE])]);
  }, 300_000);

  it('runs a backend without locks of its own through the core’s lock table and reports the direct lock checks as not applicable', () => {
    const results = of(sizes, LOCKLESS);
    expect(failedIn(results), sizes?.stdout).toStrictEqual([]);
    expect(results.filter((result) => result.state === 'passed').length).toBeGreaterThanOrEqual(120);
    const notApplicable = results.filter(
      (result) => result.state === 'skipped' && result.name.includes('not applicable: the backend has no locks of its own'),
    );
    expect(notApplicable.length).toBeGreaterThanOrEqual(30);
    // The direct lock checks: the locks group, and the lock calls' own bad-input checks in data.
    const directLockCheck = (name: string): boolean =>
      name.startsWith('locks: ') || /^data: [^>]+> bad input, called directly > /.test(name);
    expect(notApplicable.map((result) => result.name).filter((name) => !directLockCheck(name))).toStrictEqual([]);
  });

  it('checks declared key and value size limits instead of skipping them', () => {
    const results = of(sizes, BOUNDED);
    expect(failedIn(results), sizes?.stdout).toStrictEqual([]);
    const passed = results.filter((result) => result.state === 'passed').map((result) => result.name);
    expect(
      passed.some((name) =>
        name.endsWith('a value encoded larger than maxValueBytes (4096) rejects with ValueTooLargeError before any I/O'),
      ),
    ).toBe(true);
    expect(passed.some((name) => name.endsWith('a value encoded to exactly maxValueBytes (4096) is stored'))).toBe(true);
    expect(
      passed.some((name) => name.endsWith('a stored key longer than maxKeyBytes (120) rejects with InvalidKeyError before any I/O')),
    ).toBe(true);
    expect(passed.some((name) => name.endsWith('stores a key of maxKeyBytes (120) bytes'))).toBe(true);
  });

  it('stretches its waits to whole-second expiry and two-second minimum leases (memcached-like) and passes', () => {
    const results = of(coarse, COARSE);
    expect(failedIn(results), coarse?.stdout).toStrictEqual([]);
    expect(results.filter((result) => result.state === 'passed').length).toBeGreaterThan(60);
    // Only the peer checks need an option (createPeer) rather than a capability.
    expect(results.filter((result) => result.state === 'skipped').map((result) => result.name)).toStrictEqual([
      'locks: the backend’s own lease locks > acquire > a release hands the key to a waiter on another handle (createPeer) within the round-trip bound plus one poll (250 ms), not at the holder’s lapse — not applicable: no createPeer is given, so no waiter on another handle can be woken by the release',
      'locks: the backend’s own lease locks > close > close gives back the leases it holds: a peer takes each key at once — not applicable: no createPeer is given, so no second handle outlives closing the first',
    ]);
  });
});
