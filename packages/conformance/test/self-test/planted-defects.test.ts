/**
 * The suite has teeth: each fixture in test/fixtures/defects is a MemoryBackend with one
 * deliberate defect, run through the built `latchkey-conformance` command (only the groups
 * that concern it, per the fixture's `conformanceOptions`). Every defect must make the named
 * checks fail; the control fixtures — the same wrappers without a defect — must pass them all.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ConformanceGroup } from '../../src/index.js';
import type { CheckResult } from '../../src/internal/runner.js';
import { packageDir, runCli, type CliRun } from '../support/run-cli.js';

/** `[group, rule]`: a check by its group and its own name (the last part of its full name). */
type Check = readonly [ConformanceGroup, string];

interface PlantedDefect {
  readonly fixture: string;
  readonly defect: string;
  /** Checks that must fail because of the defect (others may fail too). */
  readonly caughtBy: readonly Check[];
}

/** Check names with numbers in them, as the suite registers them. */
const RACE_CHECK =
  'stale holders writing as their lease lapses never overwrite the new holder: 4 keys, 3 takeovers each, 4 stale writers per takeover';
const HAND_OVER_CHECK =
  'a release hands the key to a waiter on another handle (createPeer) within the round-trip bound plus one poll (250 ms), not at the holder’s lapse';
const LEAK_CHECK =
  'acquires that settle (granted, timed out, granted after a release) leave no abort listener on their signal and no timer or handle running (30 acquires)';
const CLOSE_CHECK = 'close leaves nothing running: every timer, socket and handle the backend made is gone once close resolves';

const DEFECTS: readonly PlantedDefect[] = [
  {
    fixture: 'non-exclusive-lock',
    defect: 'a lock that is not exclusive',
    caughtBy: [
      ['locks', 'a try (waitMs 0) on a held key resolves undefined promptly'],
      [
        'locks',
        'only one of 8 concurrent waiters holds the key at a time, each gets it, and their read-modify-writes under the lease add up to 8',
      ],
      ['store-locks', 'tryAcquire resolves true on a free key and false while another lock holds it'],
      ['store-locks', 'read-modify-write by 12 workers on one store under the lock ends with the exact count'],
      [
        'store-locks',
        'a lock held through one store blocks tryAcquire through another store on the same backend, which takes it after the release and writes under it',
      ],
    ],
  },
  {
    fixture: 'misordered-get-many',
    defect: 'a getMany that answers out of order',
    caughtBy: [
      ['data', 'answers in input order'],
      ['store', 'answers in input order with one backend call'],
      ['store', 'a missing key rejects with NotFoundError whose target lists all missing keys in input order'],
    ],
  },
  {
    fixture: 'release-frees-any-holder',
    defect: 'a release that deletes someone else’s lock',
    caughtBy: [
      ['locks', 'releaseLock of a lapsed lease resolves false and leaves the new holder’s lease alone'],
      ['locks', 'releaseLock with a forged lease (right key, wrong token) resolves false and frees nothing'],
      ['store-locks', 'release never removes a lock another holder now owns'],
    ],
  },
  {
    fixture: 'ignores-ttl',
    defect: 'a backend that ignores TTL',
    caughtBy: [
      ['ttl', 'get resolves undefined once expiresAt has passed (within ttlResolutionMs 1)'],
      ['ttl', "setMany's expiresAt applies to every entry"],
      ['ttl', 'the backend drops a value written through the store once its ttlMs has passed (ttlResolutionMs 1)'],
    ],
  },
  {
    fixture: 'write-ignores-lease',
    defect: 'a locked write that ignores the lease',
    caughtBy: [
      ['locks', "set with a lease taken over resolves 'lease-lost' and keeps the new holder’s value"],
      ['locks', "set with a lease that lapsed resolves 'lease-lost' and writes nothing"],
      ['locks', "delete with a lease taken over resolves 'lease-lost' and keeps the value"],
      ['store', 'set with a lock whose lease was taken over rejects with LockTimeoutError and keeps the newer holder’s value'],
      ['store', 'delete with a lock whose lease was taken over rejects with LockTimeoutError and keeps the value'],
    ],
  },
  {
    fixture: 'clear-drops-leases',
    defect: 'a clear that also drops every held lease',
    caughtBy: [
      ['data', 'clear leaves leases alone: the holder still writes with its lease, nobody else acquires, fencing keeps increasing'],
      ['store', 'clear leaves locks alone: the holder keeps its lock and writes under it, fencing keeps increasing'],
    ],
  },
  {
    fixture: 'compare-and-set-ignores-expected',
    defect: 'a compareAndSet that writes whatever is stored',
    caughtBy: [
      ['data', 'compareAndSet writes only over exactly the expected bytes'],
      ['store', 'touch never undoes a write that lands between its read and its write-back (compareAndSet)'],
    ],
  },
  {
    fixture: 'keys-lists-another-namespace',
    defect: 'keys and clear that reach into other backends’ namespaces',
    caughtBy: [
      ['data', 'keys of a fresh backend lists nothing of another backend'],
      ['data', "clear removes every value of the backend's namespace and nothing of another"],
      ['store', "clear removes every value of the store and nothing of a store over another backend; a peer's store sees it"],
    ],
  },
  {
    fixture: 'delete-reports-deleted',
    defect: "a delete that answers 'deleted' for missing keys",
    caughtBy: [
      ['data', "delete of a key never written resolves 'missing' and leaves a stored key alone"],
      ['store', 'delete of a missing key rejects with NotFoundError whose target is the key, and leaves a stored key alone'],
    ],
  },
  {
    fixture: 'constant-fencing-token',
    defect: 'fencing tokens that do not increase',
    caughtBy: [
      ['locks', 'fencing tokens strictly increase over successive acquires of a key'],
      ['locks', 'the fencing token of a holder after a lapse exceeds the lapsed holder’s'],
      ['store-locks', 'fencing tokens strictly increase across holders and store instances'],
    ],
  },
  {
    fixture: 'extend-extends-any-holder',
    defect: 'an extend that renews another holder’s lease',
    caughtBy: [
      ['locks', 'extendLock of a lease taken over resolves false and does not extend the new holder'],
      ['locks', 'extendLock of a released lease resolves false'],
      ['store-locks', 'extend of a lock whose lease was taken over rejects with LockTimeoutError and leaves the new holder alone'],
    ],
  },
  {
    fixture: 'write-drops-lock',
    defect: 'an unconditional write that wipes the key’s lock',
    caughtBy: [
      ['locks', 'an unconditional set or setMany leaves the key’s lease held'],
      ['locks', 'deleting the value (delete or deleteMany) leaves the key’s lease held'],
    ],
  },
  {
    fixture: 'release-accepts-malformed-lease',
    defect: 'a releaseLock({}) that resolves false instead of rejecting',
    caughtBy: [['locks', 'releaseLock with a malformed lease rejects with ValidationError and frees nothing']],
  },
  {
    fixture: 'usable-after-close',
    defect: 'a close() after which every call still succeeds',
    caughtBy: [
      [
        'data',
        'every call after close rejects with BackendClosedError (lock calls too, when the backend has them), and close again resolves',
      ],
      ['locks', 'close rejects a pending wait with BackendClosedError promptly'],
    ],
  },
  {
    fixture: 'close-resolves-waiters',
    defect: 'a close() that resolves pending lock waits with undefined',
    // Through the store it is not seen: the store's close gives its locks back first, so its waiter
    // wins the key before the backend closes (and the store then refuses it with BackendClosedError).
    caughtBy: [['locks', 'close rejects a pending wait with BackendClosedError promptly']],
  },
  {
    fixture: 'long-wait-gives-up',
    defect: 'a waitMs beyond the timer range that gives up after 1 ms',
    caughtBy: [
      [
        'locks',
        'acquireLock with a 30-day waitMs on a held key is still waiting after 1 s; an abort then rejects with its reason and leaves nothing behind',
      ],
      [
        'store-locks',
        'acquire with a 30-day waitMs on a held key is still waiting after 1 s; an abort then rejects with its reason and leaves no lock behind',
      ],
    ],
  },
  {
    fixture: 'close-keeps-leases',
    defect: 'a close() that keeps the leases it holds (peers wait for them to lapse)',
    caughtBy: [['locks', 'close gives back the leases it holds: a peer takes each key at once']],
  },
  {
    fixture: 'copies-value-late',
    defect: 'a write that reads the caller’s buffer only after an await',
    caughtBy: [['data', 'set and setMany store the bytes a buffer held when called, though the caller changes it before the call settles']],
  },
  {
    fixture: 'past-expiry-never-expires',
    defect: 'an expiresAt already in the past stored as no expiry',
    caughtBy: [
      ['ttl', "set with an expiresAt already in the past resolves 'written' and leaves nothing readable, not even the earlier value"],
      ['ttl', 'setMany with an expiresAt already in the past leaves none of its entries readable'],
    ],
  },
  {
    fixture: 'abort-leaks-waiter',
    defect: 'an aborted wait that stays queued and takes the lease later',
    caughtBy: [
      ['locks', 'an aborted wait leaves no lease behind: the key is free as soon as the holder releases'],
      ['store-locks', 'an aborted acquire leaves no lock behind: the key is free as soon as the holder releases'],
    ],
  },
  {
    fixture: 'setmany-first-duplicate-wins',
    defect: 'a setMany that keeps the first of duplicate entries',
    caughtBy: [['data', 'lets the later of duplicate entries win']],
  },
  {
    fixture: 'delete-many-rejects-missing',
    defect: 'a deleteMany that rejects when a key is missing',
    caughtBy: [
      ['data', 'deleteMany ignores missing and duplicate keys'],
      ['store', 'deleteMany never rejects for missing keys, and accepts []'],
    ],
  },
  {
    fixture: 'delete-expired-reports-deleted',
    defect: "a delete of an expired key that answers 'deleted'",
    caughtBy: [['ttl', "delete of an expired key resolves 'missing'"]],
  },
  {
    fixture: 'get-returns-kept-buffer',
    defect: 'a get that answers the buffer the backend keeps',
    caughtBy: [['data', 'get answers a buffer of its own: changing it changes nothing stored']],
  },
  {
    fixture: 'get-many-shares-duplicates',
    defect: 'a getMany that answers duplicate keys with one shared buffer',
    caughtBy: [
      ['data', 'answers each duplicate key with a buffer of its own: changing one changes neither the other nor the stored value'],
    ],
  },
  {
    fixture: 'misordered-large-get-many',
    defect: 'a getMany that answers out of order only for batches above 500 keys',
    caughtBy: [['data', 'answers 1,000 keys in random order, duplicates included, in input order']],
  },
  {
    fixture: 'short-leases',
    defect: 'leases that last 70 % of the leaseMs asked for',
    caughtBy: [['locks', 'a lease lives at least its leaseMs: a second handle (createPeer) cannot take the key at 85 % of it']],
  },
  {
    fixture: 'extend-zero-lapses',
    defect: 'an extendLock(lease, 0) that lapses instead of never lapsing',
    caughtBy: [['locks', 'extendLock with leaseMs 0 makes the lease never lapse']],
  },
  {
    fixture: 'release-lapsed-answers-true',
    defect: 'a releaseLock of a lapsed lease nobody took over that answers true',
    caughtBy: [['locks', 'releaseLock of a lapsed lease that nobody took over resolves false']],
  },
  {
    fixture: 'try-acquire-waits',
    defect: 'a try (waitMs 0) that waits',
    caughtBy: [['locks', 'a try (waitMs 0) on a held key resolves undefined promptly']],
  },
  {
    fixture: 'fencing-token-drops-after-release',
    defect: 'fencing tokens that restart after a release',
    caughtBy: [
      ['locks', 'fencing tokens strictly increase over successive acquires of a key'],
      ['store-locks', 'fencing tokens strictly increase across holders and store instances'],
    ],
  },
  {
    fixture: 'capabilities-change',
    defect: 'capabilities that change after construction',
    caughtBy: [['data', 'declares the same capabilities on every backend create() returns, and keeps them']],
  },
  {
    fixture: 'false-distributed',
    defect: "an in-process backend declaring lockScope 'distributed' without createPeer",
    caughtBy: [['data', "a backend declaring lockScope 'distributed' is given createPeer, so its locks are checked across handles"]],
  },
  {
    fixture: 'lease-check-then-write',
    defect: 'a lease-conditional write done in two steps (check the lease, then write a round trip later)',
    caughtBy: [['locks', RACE_CHECK]],
  },
  {
    fixture: 'release-wakes-only-local',
    defect: 'a release that wakes only the releasing handle’s own waiters, never another handle’s',
    caughtBy: [['locks', HAND_OVER_CHECK]],
  },
  {
    fixture: 'acquire-leaks-listener-and-timer',
    defect: 'an acquire that leaves its abort listener on the signal and its wait timer running',
    caughtBy: [['locks', LEAK_CHECK]],
  },
  {
    fixture: 'close-leaves-timer',
    defect: 'a close() that leaves the backend’s sweeper interval running',
    caughtBy: [['data', CLOSE_CHECK]],
  },
];

/** True when `name` (a full name below the module) is `check`. */
function isCheck(name: string, [group, rule]: Check): boolean {
  return name.startsWith(`${group}: `) && name.endsWith(` > ${rule}`);
}

function resultsOf(run: CliRun, module: string): CheckResult[] {
  return run.report?.results.filter((result) => result.module === module) ?? [];
}

const modulePath = (fixture: string): string => `defects/${fixture}.ts`;

/** The defect-free handle close-keeps-leases and release-wakes-only-local build on: a backend with createPeer. */
const PEER_CONTROL = 'peer-memory-backend.ts';

describe('the suite catches planted defects', () => {
  // Three command runs share the defect fixtures (fewer vite start-ups); the controls run alongside.
  const third = Math.ceil(DEFECTS.length / 3);
  const batches = [DEFECTS.slice(0, third), DEFECTS.slice(third, 2 * third), DEFECTS.slice(2 * third)];
  const runs = new Map<string, CliRun>();
  let control: CliRun | undefined;
  let peerControl: CliRun | undefined;

  beforeAll(async () => {
    const [controlRun, peerRun, ...batchRuns] = await Promise.all([
      runCli(['control.ts']),
      runCli([PEER_CONTROL]),
      ...batches.map((batch) => runCli(batch.map(({ fixture }) => modulePath(fixture)))),
    ]);
    control = controlRun;
    peerControl = peerRun;
    batchRuns.forEach((run, i) => batches[i]?.forEach(({ fixture }) => runs.set(fixture, run)));
  }, 300_000);

  it('passes the defect-free wrapper every defect fixture builds on (control), with the counts the README states', () => {
    expect(control?.failed, control?.stdout).toStrictEqual([]);
    expect(control?.code).toBe(0);
    // The control is a MemoryBackend behind a proxy: the same checks apply as to MemoryBackend.
    const stated = /it runs \*\*(\d+) checks\*\* \((\d+) apply, (\d+) are reported as not applicable\)/.exec(
      readFileSync(join(packageDir, 'README.md'), 'utf8'),
    );
    expect(stated, 'the README states no check counts').not.toBeNull();
    const [total, apply, notApplicable] = [stated?.[1], stated?.[2], stated?.[3]].map(Number) as [number, number, number];
    expect({ passed: control?.report?.passed, skipped: control?.report?.skipped }).toStrictEqual({ passed: apply, skipped: notApplicable });
    expect(apply + notApplicable).toBe(total);
  });

  it('passes a correct backend with createPeer (the control of close-keeps-leases and release-wakes-only-local), the peer checks included', () => {
    expect(peerControl?.failed, peerControl?.stdout).toStrictEqual([]);
    expect(peerControl?.code).toBe(0);
    const results = peerControl === undefined ? [] : resultsOf(peerControl, PEER_CONTROL);
    const peerChecks: Check[] = [
      ['locks', 'close gives back the leases it holds: a peer takes each key at once'],
      ['locks', HAND_OVER_CHECK],
    ];
    for (const peerCheck of peerChecks) {
      expect(
        results.filter((result) => isCheck(result.name, peerCheck)).map((result) => result.state),
        peerCheck[1],
      ).toStrictEqual(['passed']);
    }
  });

  it('ends every run with the counts line and a failing exit code', () => {
    for (const run of new Set(runs.values())) {
      expect(run.lastLine).toBe(`${run.report?.passed} passed, ${run.report?.failed} failed`);
      expect(run.code).toBe(1);
    }
  });

  for (const { fixture, defect, caughtBy } of DEFECTS) {
    it(`catches ${defect} (${fixture})`, () => {
      const run = runs.get(fixture);
      const results = run === undefined ? [] : resultsOf(run, modulePath(fixture));
      expect(results.length, run?.stderr).toBeGreaterThan(0);
      const failed = results.filter((result) => result.state === 'failed').map((result) => result.name);
      const missed = caughtBy.filter((check) => !failed.some((name) => isCheck(name, check))).map(([group, rule]) => `${group} > ${rule}`);
      expect(missed, `checks that did not catch the defect; the failed checks were:\n${failed.join('\n')}`).toStrictEqual([]);
      expect(results.filter((result) => result.state === 'passed').length, 'the rest of the selected groups still ran').toBeGreaterThan(0);
    });
  }
});
