/**
 * A backend that stores nothing (every read misses, every write is dropped while answering
 * 'written', the locks are a real MemoryBackend's) must fail every backend check that touches
 * data — lock checks included, since what is written under a lease must read back — and pass
 * at most 35 % of all the checks that apply. The store's own logic above it (validation, the
 * registry, lock bookkeeping) still passes some store checks, which is why the report counts
 * backend and store checks apart. The counts are pinned: a change in them is a change in the
 * suite's teeth.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { CheckResult } from '../../src/internal/runner.js';
import { runCli, type CliRun } from '../support/run-cli.js';

const FIXTURE = 'defects/stores-nothing.ts';

/** Sections of the `locks` group whose every check writes and reads values under leases. */
const LOCK_DATA_SECTIONS = ['lease-conditional writes', 'lease-conditional writes under a race', 'locks and data are independent'];

/**
 * Checks of the other `locks` sections that verify what was written under a lease: a lease
 * handed over, lapsed into, kept by `leaseMs: 0` or extended must be the one the key's writes
 * are checked against, and its write must read back. (Each name's start; some end in values.)
 */
const LOCK_DATA_CHECKS = [
  'a waiting acquire gets the lease once the holder releases, not before, and a write under it lands',
  'only one of 8 concurrent waiters holds the key at a time, each gets it, and their read-modify-writes under the lease add up to 8',
  'a second handle on the same backend (createPeer) sees the lease, and a write under its own lease reads back through the first',
  'a lease lapses by itself after its leaseMs',
  'a waiter gets the key when the holder’s lease lapses, without a release',
  'a lease with leaseMs 0 never lapses: past leaseMs it still holds the key and a write under it lands',
  'releaseLock of a lapsed lease resolves false and leaves the new holder’s lease alone',
  'extendLock of a held lease resolves true and keeps it past its first leaseMs',
  'extendLock with leaseMs 0 makes the lease never lapse',
  'fencing tokens grow in the order waiters are granted the key: each holder’s fencing-guarded write finds the previous holder’s smaller token',
  'set with a malformed lease rejects with ValidationError and writes nothing',
  'delete with a malformed lease rejects with ValidationError and deletes nothing',
];

/** Backend checks that write or read values: the data sections of `data`, backend expiry, and the lock checks about data. */
function touchesData(name: string): boolean {
  const [groupTitle, section, rule = ''] = name.split(' > ');
  const group = groupTitle?.split(':')[0];
  if (group === 'data') return ['values', 'getMany', 'setMany', 'delete'].includes(section ?? '');
  if (group === 'ttl') return section === 'backend expiry';
  if (group === 'locks') return LOCK_DATA_SECTIONS.includes(section ?? '') || LOCK_DATA_CHECKS.some((check) => rule.startsWith(check));
  return false;
}

/** Backend checks that touch data and apply to this backend: every one must fail. */
const DATA_CHECKS = 66;

/** What the backend passes, fails and is not given, per layer. */
const COUNTS = {
  backend: { passed: 39, failed: 82, skipped: 14 },
  store: { passed: 56, failed: 122, skipped: 5 },
};

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
    expect(applicable.length, run?.stderr).toBe(DATA_CHECKS);
    expect(passed, 'data checks a backend that stores nothing passes').toStrictEqual([]);
    expect((applicable.length - passed.length) / applicable.length).toBeGreaterThanOrEqual(0.95);
  });

  it('passes at most 35 % of the checks that apply, and reports backend and store checks apart, with the pinned counts', () => {
    const { backend, store } = COUNTS;
    expect(run?.report?.layers).toStrictEqual(COUNTS);
    // Every check that ran is a backend or a store check (a not-applicable one may be neither).
    const [passed, failed] = [backend.passed + store.passed, backend.failed + store.failed];
    expect({ passed: run?.report?.passed, failed: run?.report?.failed }).toStrictEqual({ passed, failed });
    expect(passed / (passed + failed), `${passed} of ${passed + failed} applicable checks passed`).toBeLessThanOrEqual(0.35);
    expect(run?.stdout).toContain(
      `backend checks (the backend called directly): ${backend.passed} passed, ${backend.failed} failed, ${backend.skipped} skipped`,
    );
    expect(run?.stdout).toContain(
      `store checks (through KeyValueStore): ${store.passed} passed, ${store.failed} failed, ${store.skipped} skipped`,
    );
    expect(run?.lastLine).toBe(`${passed} passed, ${failed} failed`);
    expect(run?.code).toBe(1);
  });
});
