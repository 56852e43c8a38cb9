import { getEventListeners } from 'node:events';
import { BackendClosedError, hasOwnLocks, LatchkeyError, ValidationError, type Lease, type LockingBackend } from '@latchkey/core';
import { expect } from 'vitest';
import { bytes, expectBytes } from '../bytes.js';
import type { ConformanceEnvironment } from '../environment.js';
import { describeError, expectRejectedWith, expectRejection, expectRejectionWith, expectWithin } from '../expect-error.js';
import type { Harness } from '../harness.js';
import { checksFor, type CheckBody } from '../register.js';
import { describeTypes, ResourceTracker } from '../resources.js';
import { eventually, settle, settleWithin, since, sleep, THIRTY_DAYS_MS } from '../timing.js';

/**
 * Values that are not leases, each paired with its label: a lease is an object with a
 * non-empty string `key` and `token` and a bigint `fencingToken`. The variants keep the held
 * lease's key, so a backend that looks only at the key would act on the held lock.
 */
function malformedLeases(lease: Lease): readonly (readonly [string, unknown])[] {
  return [
    ['{}', {}],
    ['null', null],
    ['a lease with an empty token', { ...lease, token: '' }],
    ['a lease whose fencingToken is a number', { ...lease, fencingToken: Number(lease.fencingToken) }],
    ['a lease without a token', { key: lease.key, fencingToken: lease.fencingToken }],
  ];
}

/** The backend's own lease locks, called directly (only for backends that have them). */
export function registerLockChecks(env: ConformanceEnvironment): void {
  const { checkUnless, section } = checksFor(env);
  const { leaseMs, promptMs, expiryGraceMs } = env.timings;
  const { minLeaseMs, ttlResolutionMs } = env.capabilities;
  const noLocks = env.ownLocks
    ? undefined
    : 'the backend has no locks of its own — the core gives it an in-process lock table, checked through KeyValueStore in store-locks';
  const lockCheck = (name: string, body: CheckBody): void => checkUnless(noLocks, name, body);
  const lapseWithinMs = leaseMs + expiryGraceMs + Math.max(ttlResolutionMs, minLeaseMs);

  const setup = async (h: Harness): Promise<{ backend: LockingBackend; key: string }> => ({
    backend: await h.lockingBackend(),
    key: h.key(),
  });
  const tryLock = (backend: LockingBackend, key: string, lease = leaseMs): Promise<Lease | undefined> =>
    backend.acquireLock(key, { leaseMs: lease, waitMs: 0 });
  const mustLock = async (backend: LockingBackend, key: string, lease = leaseMs): Promise<Lease> => {
    const taken = await tryLock(backend, key, lease);
    if (taken === undefined) expect.fail(`the free key ${key} could not be locked`);
    return taken;
  };
  /** Polls until the key's lease lapses and this caller holds it; fails if it never does. */
  const takeOverAfterLapse = async (backend: LockingBackend, key: string, lease = leaseMs): Promise<Lease> => {
    let taken: Lease | undefined;
    const lapsed = await eventually(async () => (taken = await tryLock(backend, key, lease)) !== undefined, lapseWithinMs);
    if (!lapsed || taken === undefined) expect.fail(`the lease did not lapse within ${lapseWithinMs} ms`);
    return taken;
  };

  section('acquire', () => {
    lockCheck('acquireLock on a free key resolves a lease for that key with a token and a bigint fencing token', async (h) => {
      const { backend, key } = await setup(h);
      const lease = await mustLock(backend, key);
      expect(lease.key).toBe(key);
      expect(typeof lease.token === 'string' && lease.token.length > 0, `token ${String(lease.token)}`).toBe(true);
      expect(typeof lease.fencingToken).toBe('bigint');
    });

    lockCheck('every acquire gets a new owner token', async (h) => {
      const { backend, key } = await setup(h);
      const tokens = new Set<string>();
      for (let i = 0; i < 5; i++) {
        const lease = await mustLock(backend, key);
        tokens.add(lease.token);
        await backend.releaseLock(lease);
      }
      expect(tokens.size).toBe(5);
    });

    lockCheck('a try (waitMs 0) on a held key resolves undefined promptly', async (h) => {
      const { backend, key } = await setup(h);
      await mustLock(backend, key);
      const startedAt = performance.now();
      expect(await tryLock(backend, key)).toBeUndefined();
      expectWithin(startedAt, promptMs, 'the try');
    });

    lockCheck('a lease locks only its own key', async (h) => {
      const { backend, key } = await setup(h);
      await mustLock(backend, key);
      expect(await tryLock(backend, h.key('other'))).toBeDefined();
    });

    lockCheck('a waiting acquire gets the lease once the holder releases, not before, and a write under it lands', async (h) => {
      const { backend, key } = await setup(h);
      const holder = await mustLock(backend, key);
      let grantedAt: number | undefined;
      const waiting = settle(
        backend.acquireLock(key, { leaseMs: 20 * leaseMs, waitMs: 10 * leaseMs }).then((lease) => {
          grantedAt = performance.now();
          return lease;
        }),
      );
      await sleep(Math.min(100, leaseMs / 3));
      expect(grantedAt, 'granted while the holder still held the key').toBeUndefined();
      const releasedAt = performance.now();
      expect(await backend.releaseLock(holder)).toBe(true);
      const outcome = await waiting;
      const granted = outcome.ok ? outcome.value : undefined;
      if (granted?.key !== key) expect.fail('the waiter was not granted the key');
      expectWithin(releasedAt, promptMs, 'granting the waiter after the release', grantedAt);
      // The lease handed over must be the one the key's writes are checked against.
      expect(await backend.set(key, bytes(4), { lease: granted }), 'a write under the granted lease').toBe('written');
      expectBytes(await backend.get(key), bytes(4), 'the value written under the granted lease');
    });

    lockCheck('a waiting acquire resolves undefined when its waitMs runs out', async (h) => {
      const { backend, key } = await setup(h);
      await mustLock(backend, key, 20 * leaseMs);
      const waitMs = Math.max(100, leaseMs / 2);
      const startedAt = performance.now();
      expect(await backend.acquireLock(key, { leaseMs, waitMs })).toBeUndefined();
      const waited = since(startedAt);
      expect(waited).toBeGreaterThanOrEqual(waitMs - 5);
      expectWithin(startedAt, waitMs + promptMs, `a wait of ${waitMs} ms`);
    });

    lockCheck(
      'only one of 8 concurrent waiters holds the key at a time, each gets it, and their read-modify-writes under the lease add up to 8',
      async (h) => {
        const { backend, key } = await setup(h);
        await backend.set(key, bytes(0));
        let holders = 0;
        let most = 0;
        let served = 0;
        const refused: string[] = [];
        await Promise.all(
          Array.from({ length: 8 }, async (_, i) => {
            const lease = await backend.acquireLock(key, { leaseMs: 20 * leaseMs, waitMs: 20 * leaseMs });
            if (lease === undefined) return;
            holders += 1;
            most = Math.max(most, holders);
            const count = (await backend.get(key))?.[0] ?? -1;
            await sleep(5);
            const outcome = await backend.set(key, bytes(count + 1), { lease });
            if (outcome !== 'written') refused.push(`waiter ${i}: ${outcome}`);
            holders -= 1;
            served += 1;
            await backend.releaseLock(lease);
          }),
        );
        expect(most, 'most holders at once').toBe(1);
        expect(served).toBe(8);
        expect(refused, 'writes under a held lease that were refused').toStrictEqual([]);
        expectBytes(await backend.get(key), bytes(8), 'the count after 8 increments under the lease');
      },
    );

    lockCheck(
      'a second handle on the same backend (createPeer) sees the lease, and a write under its own lease reads back through the first',
      async (h) => {
        const { backend, key } = await setup(h);
        const peer = await h.peer(backend);
        if (!hasOwnLocks(peer)) expect.fail('the peer backend has no locks of its own');
        const lease = await mustLock(backend, key);
        expect(await peer.acquireLock(key, { leaseMs, waitMs: 0 })).toBeUndefined();
        await backend.releaseLock(lease);
        const peerLease = await mustLock(peer, key, 20 * leaseMs);
        expect(await peer.set(key, bytes(5), { lease: peerLease }), 'a write under the peer’s lease').toBe('written');
        expectBytes(await backend.get(key), bytes(5), 'the peer’s write, read through the first handle');
      },
    );

    checkUnless(
      noLocks ?? (env.hasPeer ? undefined : 'no createPeer is given, so no waiter on another handle can be woken by the release'),
      `a release hands the key to a waiter on another handle (createPeer) within the round-trip bound plus one poll (${POLL_ALLOWANCE_MS} ms), not at the holder’s lapse`,
      async (h) => {
        const { backend, key } = await setup(h);
        const peer = await h.peer(backend);
        if (!hasOwnLocks(peer)) expect.fail('createPeer returned a handle without its own locks');
        const holder = await mustLock(backend, key, 20 * leaseMs);
        let grantedAt: number | undefined;
        const waiting = settle(
          peer.acquireLock(key, { leaseMs: 20 * leaseMs, waitMs: 20 * leaseMs }).then((lease) => {
            grantedAt = performance.now();
            return lease;
          }),
        );
        // Held long enough for a polling waiter's backoff to grow to its longest pause.
        await sleep(HAND_OVER_HOLD_MS);
        expect(grantedAt, 'the peer’s waiter was granted the key while it was held').toBeUndefined();
        const releasedAt = performance.now();
        expect(await backend.releaseLock(holder)).toBe(true);
        const releaseTook = since(releasedAt);
        const outcome = await waiting;
        const granted = outcome.ok ? outcome.value : undefined;
        if (granted?.key !== key) {
          expect.fail(
            `the peer’s waiter was not granted the key after the release (${outcome.ok ? 'its wait ran out' : describeError(outcome.error)}, ${Math.round(since(releasedAt))} ms after the release)`,
          );
        }
        expectWithin(
          releasedAt,
          promptMs + POLL_ALLOWANCE_MS,
          `handing the key to the peer’s waiter (the release itself took ${Math.round(releaseTook)} ms; promptMs ${Math.round(promptMs)} ms from a measured round trip of ${Math.round(env.timings.roundTripMs)} ms)`,
          grantedAt,
        );
      },
    );
  });

  section('long waits', () => {
    lockCheck(
      'acquireLock with a 30-day waitMs on a held key is still waiting after 1 s; an abort then rejects with its reason and leaves nothing behind',
      async (h) => {
        const { backend, key } = await setup(h);
        const holder = await mustLock(backend, key, 20 * leaseMs);
        const controller = new AbortController();
        const reason = new Error('conformance: stop the 30-day wait');
        const startedAt = performance.now();
        let settledAfter: number | undefined;
        const waiting = settle(
          backend.acquireLock(key, { leaseMs, waitMs: THIRTY_DAYS_MS, signal: controller.signal }).finally(() => {
            settledAfter = since(startedAt);
          }),
        );
        await sleep(1_000);
        expect(settledAfter === undefined ? 'still waiting' : `settled after ${Math.round(settledAfter)} ms`, 'the 30-day wait').toBe(
          'still waiting',
        );
        const abortedAt = performance.now();
        controller.abort(reason);
        expectRejectedWith(await waiting, reason);
        expectWithin(abortedAt, promptMs, 'settling after the abort');
        expect(await backend.releaseLock(holder)).toBe(true);
        expect(await tryLock(backend, key), 'the aborted 30-day wait took the key').toBeDefined();
      },
    );
  });

  section('abort', () => {
    lockCheck('an aborted wait rejects with signal.reason promptly', async (h) => {
      const { backend, key } = await setup(h);
      await mustLock(backend, key, 20 * leaseMs);
      const controller = new AbortController();
      const reason = new Error('conformance: stop waiting');
      const outcome = settle(backend.acquireLock(key, { leaseMs, waitMs: 20 * leaseMs, signal: controller.signal }));
      await sleep(30);
      const abortedAt = performance.now();
      controller.abort(reason);
      expectRejectedWith(await outcome, reason);
      expectWithin(abortedAt, promptMs, 'settling after the abort');
    });

    lockCheck('an aborted wait leaves no lease behind: the key is free as soon as the holder releases', async (h) => {
      const { backend, key } = await setup(h);
      const holder = await mustLock(backend, key, 20 * leaseMs);
      const controller = new AbortController();
      const waiting = settle(backend.acquireLock(key, { leaseMs: 20 * leaseMs, waitMs: 20 * leaseMs, signal: controller.signal }));
      await sleep(30);
      controller.abort(new Error('conformance: stop waiting'));
      expect((await waiting).ok).toBe(false);
      await backend.releaseLock(holder);
      expect(await tryLock(backend, key), 'the aborted waiter took the key').toBeDefined();
    });

    lockCheck('an already-aborted signal rejects with its reason and takes no lease, even on a free key', async (h) => {
      const { backend, key } = await setup(h);
      const reason = new Error('conformance: aborted before the call');
      await expectRejectionWith(backend.acquireLock(key, { leaseMs: 20 * leaseMs, waitMs: 0, signal: AbortSignal.abort(reason) }), reason);
      expect(await tryLock(backend, key), 'the aborted call took the key').toBeDefined();
    });

    lockCheck('aborting one waiter does not disturb the others', async (h) => {
      const { backend, key } = await setup(h);
      const holder = await mustLock(backend, key, 20 * leaseMs);
      const controller = new AbortController();
      const aborted = settle(backend.acquireLock(key, { leaseMs, waitMs: 20 * leaseMs, signal: controller.signal }));
      const patient = settle(backend.acquireLock(key, { leaseMs, waitMs: 20 * leaseMs }));
      await sleep(30);
      controller.abort(new Error('conformance: only this one'));
      expect((await aborted).ok).toBe(false);
      await backend.releaseLock(holder);
      const outcome = await patient;
      expect(outcome.ok && outcome.value?.key, 'the patient waiter was not granted the key').toBe(key);
    });
  });

  section('what an acquire leaves behind', () => {
    lockCheck(
      `acquires that settle (granted, timed out, granted after a release) leave no abort listener on their signal and no timer or handle running (${LEAK_ROUNDS} acquires)`,
      async (h) => {
        const { backend, key } = await setup(h);
        // Warm-up: what a backend makes once (a subscription, a shared deadline timer) is not a per-acquire leak.
        const warm = await mustLock(backend, h.key('warm'), 20 * leaseMs);
        await backend.acquireLock(h.key('warm'), { leaseMs, waitMs: 20 });
        await backend.releaseLock(warm);
        const { signal } = new AbortController();
        const tracker = new ResourceTracker();
        try {
          let acquires = 0;
          await tracker.record(async () => {
            for (let i = 0; i < LEAK_ROUNDS - 6; i++) {
              const lease = await backend.acquireLock(h.key(`free${i % 4}`), { leaseMs: 20 * leaseMs, waitMs: 20 * leaseMs, signal });
              acquires += 1;
              if (lease === undefined) expect.fail(`acquire ${i} of a free key resolved undefined`);
              await backend.releaseLock(lease);
            }
            const holder = await mustLock(backend, key, 20 * leaseMs);
            const timedOut = await Promise.all(
              Array.from({ length: 5 }, () => backend.acquireLock(key, { leaseMs: 20 * leaseMs, waitMs: 30, signal })),
            );
            acquires += 5;
            expect(
              timedOut.filter((lease) => lease !== undefined),
              'waits on a held key that were granted',
            ).toStrictEqual([]);
            const waiting = backend.acquireLock(key, { leaseMs: 20 * leaseMs, waitMs: 20 * leaseMs, signal });
            await sleep(20);
            await backend.releaseLock(holder);
            const next = await waiting;
            acquires += 1;
            if (next === undefined) expect.fail('the wait for the released key resolved undefined');
            await backend.releaseLock(next);
          });
          const listeners = getEventListeners(signal, 'abort').length;
          expect(listeners, `abort listeners left on the signal of ${acquires} settled acquires`).toBe(0);
          // A timer may be cleared a moment after its call settled; one per acquire is a leak.
          const fewLeft = (): boolean => tracker.alive().length < acquires / 4;
          const settledAt = performance.now();
          const cleared = await tracker.unrecorded(() => eventually(fewLeft, promptMs));
          expect(
            cleared,
            `still running ${Math.round(since(settledAt))} ms after ${acquires} acquires settled and their leases were released: ${describeTypes(tracker.alive())}`,
          ).toBe(true);
        } finally {
          tracker.dispose();
        }
      },
    );
  });

  section('lapse', () => {
    lockCheck('a lease lives at least its leaseMs: a second handle (createPeer) cannot take the key at 85 % of it', async (h) => {
      const { backend, key } = await setup(h);
      const peer = await h.peer(backend);
      if (!hasOwnLocks(peer)) expect.fail('createPeer returned a handle without its own locks');
      // Timed from before the acquire was sent, so a slow round trip only shortens what is checked.
      const startedAt = performance.now();
      await mustLock(backend, key);
      await sleep(leaseMs * 0.85 - since(startedAt));
      const triedAt = since(startedAt);
      const taken = await tryLock(peer, key);
      const answeredAt = since(startedAt);
      // Only an answer given before leaseMs had passed proves the lease was shorter than asked.
      expect(
        taken === undefined || triedAt >= leaseMs,
        `the peer took the key ${Math.round(triedAt)}–${Math.round(answeredAt)} ms after the acquire was sent, though leaseMs was ${leaseMs} ms`,
      ).toBe(true);
    });

    lockCheck(`a lease lapses by itself after its leaseMs (${leaseMs} ms, within the expiry resolution)`, async (h) => {
      const { backend, key } = await setup(h);
      await mustLock(backend, key);
      const taken = await takeOverAfterLapse(backend, key, 20 * leaseMs);
      expect(taken.key).toBe(key);
      expect(await backend.set(key, bytes(3), { lease: taken }), 'a write under the lease taken after the lapse').toBe('written');
      expectBytes(await backend.get(key), bytes(3), 'the value written under the new lease');
    });

    lockCheck('a waiter gets the key when the holder’s lease lapses, without a release', async (h) => {
      const { backend, key } = await setup(h);
      await mustLock(backend, key);
      const startedAt = performance.now();
      const lease = await backend.acquireLock(key, { leaseMs: 20 * leaseMs, waitMs: lapseWithinMs + leaseMs });
      if (lease?.key !== key) expect.fail('the waiter was never served');
      expect(since(startedAt)).toBeGreaterThanOrEqual(leaseMs * 0.5);
      expect(await backend.set(key, bytes(2), { lease }), 'a write under the lease the waiter was granted').toBe('written');
      expectBytes(await backend.get(key), bytes(2), 'the value written under the granted lease');
    });

    lockCheck('a lease with leaseMs 0 never lapses: past leaseMs it still holds the key and a write under it lands', async (h) => {
      const { backend, key } = await setup(h);
      const lease = await mustLock(backend, key, 0);
      await sleep(leaseMs + expiryGraceMs);
      expect(await tryLock(backend, key)).toBeUndefined();
      expect(await backend.set(key, bytes(6), { lease }), 'a write under the leaseMs 0 lease').toBe('written');
      expectBytes(await backend.get(key), bytes(6), 'the value written under the lease');
    });
  });

  section('release', () => {
    lockCheck('releaseLock of a held lease resolves true and frees the key', async (h) => {
      const { backend, key } = await setup(h);
      const lease = await mustLock(backend, key);
      expect(await backend.releaseLock(lease)).toBe(true);
      expect(await tryLock(backend, key)).toBeDefined();
    });

    lockCheck('a second releaseLock of the same lease resolves false', async (h) => {
      const { backend, key } = await setup(h);
      const lease = await mustLock(backend, key);
      await backend.releaseLock(lease);
      expect(await backend.releaseLock(lease)).toBe(false);
    });

    lockCheck('releaseLock of a lapsed lease resolves false and leaves the new holder’s lease alone', async (h) => {
      const { backend, key } = await setup(h);
      const stale = await mustLock(backend, key);
      const current = await takeOverAfterLapse(backend, key, 20 * leaseMs);
      expect(await backend.releaseLock(stale)).toBe(false);
      expect(await tryLock(backend, key), 'the stale release freed the new holder’s key').toBeUndefined();
      expect(await backend.set(key, bytes(7), { lease: current })).toBe('written');
      expectBytes(await backend.get(key), bytes(7), 'the new holder’s write after the stale release');
    });

    lockCheck('releaseLock of a lapsed lease that nobody took over resolves false', async (h) => {
      const { backend, key } = await setup(h);
      const lease = await mustLock(backend, key);
      await sleep(lapseWithinMs);
      expect(await backend.releaseLock(lease), 'a lapsed lease was reported released').toBe(false);
    });

    lockCheck('releaseLock with a forged lease (right key, wrong token) resolves false and frees nothing', async (h) => {
      const { backend, key } = await setup(h);
      const lease = await mustLock(backend, key);
      expect(await backend.releaseLock({ ...lease, token: `${lease.token}-forged` })).toBe(false);
      expect(await tryLock(backend, key)).toBeUndefined();
    });
  });

  section('extend', () => {
    lockCheck('extendLock of a held lease resolves true and keeps it past its first leaseMs', async (h) => {
      const { backend, key } = await setup(h);
      const lease = await mustLock(backend, key);
      // Extended at once: a timer in between can fire past the whole lease on a starved machine,
      // and refusing to extend a lapsed lease would then be right.
      expect(await backend.extendLock(lease, 4 * leaseMs + expiryGraceMs)).toBe(true);
      await sleep(leaseMs + expiryGraceMs);
      expect(await tryLock(backend, key)).toBeUndefined();
      expect(await backend.set(key, bytes(1), { lease })).toBe('written');
      expectBytes(await backend.get(key), bytes(1), 'the value written under the extended lease');
    });

    lockCheck('extendLock with leaseMs 0 makes the lease never lapse', async (h) => {
      const { backend, key } = await setup(h);
      const lease = await mustLock(backend, key);
      expect(await backend.extendLock(lease, 0)).toBe(true);
      await sleep(2 * leaseMs + expiryGraceMs + Math.max(ttlResolutionMs, minLeaseMs));
      expect(await tryLock(backend, key), 'the extended lease lapsed').toBeUndefined();
      expect(await backend.set(key, bytes(1), { lease })).toBe('written');
      expectBytes(await backend.get(key), bytes(1), 'the value written under the never-lapsing lease');
    });

    lockCheck('extendLock of a released lease resolves false', async (h) => {
      const { backend, key } = await setup(h);
      const lease = await mustLock(backend, key);
      await backend.releaseLock(lease);
      expect(await backend.extendLock(lease, leaseMs)).toBe(false);
      expect(await tryLock(backend, key), 'the extend re-took the key').toBeDefined();
    });

    lockCheck('extendLock of a lease taken over resolves false and does not extend the new holder', async (h) => {
      const { backend, key } = await setup(h);
      const stale = await mustLock(backend, key);
      await takeOverAfterLapse(backend, key);
      expect(await backend.extendLock(stale, 60_000)).toBe(false);
      await takeOverAfterLapse(backend, key);
    });

    lockCheck('extendLock with a forged lease resolves false', async (h) => {
      const { backend, key } = await setup(h);
      const lease = await mustLock(backend, key);
      expect(await backend.extendLock({ ...lease, token: `${lease.token}-forged` }, 60_000)).toBe(false);
      await backend.releaseLock(lease);
      expect(await tryLock(backend, key)).toBeDefined();
    });
  });

  section('fencing tokens', () => {
    lockCheck('fencing tokens strictly increase over successive acquires of a key', async (h) => {
      const { backend, key } = await setup(h);
      const tokens: bigint[] = [];
      for (let i = 0; i < 6; i++) {
        const lease = await mustLock(backend, key);
        tokens.push(lease.fencingToken);
        await backend.releaseLock(lease);
      }
      expectIncreasing(tokens);
    });

    lockCheck(
      'fencing tokens grow in the order waiters are granted the key: each holder’s fencing-guarded write finds the previous holder’s smaller token',
      async (h) => {
        const { backend, key } = await setup(h);
        const granted: bigint[] = [];
        const guarded: string[] = [];
        await Promise.all(
          Array.from({ length: 6 }, async () => {
            const lease = await backend.acquireLock(key, { leaseMs: 20 * leaseMs, waitMs: 20 * leaseMs });
            if (lease === undefined) return;
            granted.push(lease.fencingToken);
            // What a fenced resource does: refuse a token no greater than the last one it stored.
            const stored = await backend.get(key);
            const last = stored === undefined ? undefined : BigInt(new TextDecoder().decode(stored));
            if (granted.length > 1 && last !== granted[granted.length - 2]) {
              guarded.push(`holder ${granted.length} (token ${lease.fencingToken}) found ${String(last)}, not the previous holder’s token`);
            } else if (last !== undefined && lease.fencingToken <= last) {
              guarded.push(`holder ${granted.length} (token ${lease.fencingToken}) found the greater or equal token ${last}`);
            }
            await sleep(2);
            const outcome = await backend.set(key, new TextEncoder().encode(String(lease.fencingToken)), { lease });
            if (outcome !== 'written') guarded.push(`holder ${granted.length}: ${outcome}`);
            await backend.releaseLock(lease);
          }),
        );
        expect(granted).toHaveLength(6);
        expectIncreasing(granted);
        expect(guarded, 'fencing-guarded writes that went wrong').toStrictEqual([]);
        const final = await backend.get(key);
        expect(final === undefined ? undefined : new TextDecoder().decode(final), 'the last token written').toBe(String(granted[5]));
      },
    );

    checkUnless(
      noLocks ?? (env.capabilities.fencingTokens ? undefined : 'the backend declares fencingTokens: false'),
      'the fencing token of a holder after a lapse exceeds the lapsed holder’s',
      async (h) => {
        const { backend, key } = await setup(h);
        const first = await mustLock(backend, key);
        const second = await takeOverAfterLapse(backend, key);
        expect(second.fencingToken > first.fencingToken, `${second.fencingToken} after ${first.fencingToken}`).toBe(true);
      },
    );
  });

  section('lease-conditional writes', () => {
    lockCheck("set with the held lease resolves 'written'", async (h) => {
      const { backend, key } = await setup(h);
      const lease = await mustLock(backend, key);
      expect(await backend.set(key, bytes(1), { lease })).toBe('written');
      expectBytes(await backend.get(key), bytes(1));
    });

    lockCheck("set with a released lease resolves 'lease-lost' and writes nothing", async (h) => {
      const { backend, key } = await setup(h);
      await backend.set(key, bytes(1));
      const lease = await mustLock(backend, key);
      await backend.releaseLock(lease);
      expect(await backend.set(key, bytes(2), { lease })).toBe('lease-lost');
      expectBytes(await backend.get(key), bytes(1));
    });

    lockCheck("set with a lease for another key resolves 'lease-lost' and writes nothing", async (h) => {
      const { backend, key } = await setup(h);
      const other = h.key('other');
      const lease = await mustLock(backend, other);
      expect(await backend.set(key, bytes(2), { lease })).toBe('lease-lost');
      expect(await backend.get(key)).toBeUndefined();
    });

    lockCheck("delete with a lease for another key resolves 'lease-lost' and keeps the value", async (h) => {
      const { backend, key } = await setup(h);
      await backend.set(key, bytes(1));
      const lease = await mustLock(backend, h.key('other'));
      expect(await backend.delete(key, { lease })).toBe('lease-lost');
      expectBytes(await backend.get(key), bytes(1));
    });

    lockCheck("set with a lease that lapsed resolves 'lease-lost' and writes nothing", async (h) => {
      const { backend, key } = await setup(h);
      await backend.set(key, bytes(1));
      const lease = await mustLock(backend, key);
      await sleep(leaseMs + expiryGraceMs + Math.max(ttlResolutionMs, minLeaseMs));
      expect(await backend.set(key, bytes(2), { lease })).toBe('lease-lost');
      expectBytes(await backend.get(key), bytes(1));
    });

    lockCheck("set with a lease taken over resolves 'lease-lost' and keeps the new holder’s value", async (h) => {
      const { backend, key } = await setup(h);
      const stale = await mustLock(backend, key);
      const current = await takeOverAfterLapse(backend, key, 20 * leaseMs);
      expect(await backend.set(key, bytes(2), { lease: current })).toBe('written');
      expect(await backend.set(key, bytes(1), { lease: stale })).toBe('lease-lost');
      expectBytes(await backend.get(key), bytes(2));
    });

    lockCheck("delete with the held lease resolves 'deleted'", async (h) => {
      const { backend, key } = await setup(h);
      await backend.set(key, bytes(1));
      const lease = await mustLock(backend, key);
      expect(await backend.delete(key, { lease })).toBe('deleted');
      expect(await backend.get(key)).toBeUndefined();
    });

    lockCheck("delete with the held lease of a missing key resolves 'missing'", async (h) => {
      const { backend, key } = await setup(h);
      const lease = await mustLock(backend, key);
      expect(await backend.delete(key, { lease })).toBe('missing');
      expect(await backend.set(key, bytes(6), { lease }), 'a set with the same lease afterwards').toBe('written');
      expectBytes(await backend.get(key), bytes(6), 'the value the lease holder wrote after');
    });

    lockCheck("delete with a lease taken over resolves 'lease-lost' and keeps the value", async (h) => {
      const { backend, key } = await setup(h);
      await backend.set(key, bytes(1));
      const stale = await mustLock(backend, key);
      await takeOverAfterLapse(backend, key, 20 * leaseMs);
      expect(await backend.delete(key, { lease: stale })).toBe('lease-lost');
      expectBytes(await backend.get(key), bytes(1));
    });

    lockCheck("delete with a released lease resolves 'lease-lost' and keeps the value", async (h) => {
      const { backend, key } = await setup(h);
      await backend.set(key, bytes(1));
      const lease = await mustLock(backend, key);
      await backend.releaseLock(lease);
      expect(await backend.delete(key, { lease })).toBe('lease-lost');
      expectBytes(await backend.get(key), bytes(1));
    });
  });

  /**
   * One race on one key: the stale holder keeps writing under its lease, from a few writers at
   * once, while its lease lapses and a new holder takes the key and writes `value`. Resolves
   * the new holder's lease and what the key holds once every stale write settled (`value`, when
   * every write under the lapsed lease that came after the takeover was refused).
   */
  const raceStaleWriters = async (
    backend: LockingBackend,
    key: string,
    stale: Lease,
    staleSince: number,
    value: string,
    nextLeaseMs: number,
  ): Promise<{ current: Lease; currentSince: number; final: string | undefined; detail: string }> => {
    const encode = (text: string): Uint8Array => new TextEncoder().encode(text);
    let newWritten = false;
    let gaveUp = false;
    const counts = { written: 0, lost: 0, rejected: 0, afterNew: 0 };
    let firstRejection: string | undefined;
    const writers = Array.from({ length: RACE_WRITERS }, async (_, w) => {
      // From shortly before the lapse: the writes in flight when it comes are the ones that race.
      await sleep(Math.max(0, leaseMs - 2 * promptMs) - since(staleSince));
      let afterNew = 0;
      for (let i = 0; !gaveUp && afterNew < 3; i++) {
        const startedAfterNew = newWritten;
        const outcome = await settle(backend.set(key, encode(`stale ${w}.${i}`), { lease: stale }));
        if (outcome.ok) counts[outcome.value === 'written' ? 'written' : 'lost'] += 1;
        else {
          // A typed refusal (memcached gives up on a CAS lost to the other writers too often) changes nothing: what is stored shows it.
          if (!(outcome.error instanceof LatchkeyError)) throw outcome.error;
          counts.rejected += 1;
          firstRejection ??= describeError(outcome.error);
        }
        if (startedAfterNew) {
          afterNew += 1;
          counts.afterNew += 1;
        }
        await sleep(1);
      }
    });
    let current: Lease | undefined;
    let currentSince: number | undefined;
    const waitMs = lapseWithinMs + leaseMs;
    try {
      current = await backend.acquireLock(key, { leaseMs: nextLeaseMs, waitMs });
      currentSince = performance.now();
      if (current === undefined) expect.fail(`the new holder did not get ${key} within ${waitMs} ms`);
      expect(await backend.set(key, encode(value), { lease: current }), `the write of ${value}`).toBe('written');
      newWritten = true;
    } finally {
      gaveUp = !newWritten;
      await Promise.all(writers);
    }
    const stored = await backend.get(key);
    return {
      current,
      currentSince: currentSince ?? performance.now(),
      final: stored === undefined ? undefined : new TextDecoder().decode(stored),
      detail: `stale writes: ${counts.written} written, ${counts.lost} lease-lost, ${counts.rejected} rejected${firstRejection === undefined ? '' : ` (${firstRejection})`}, ${counts.afterNew} of them sent after ${value} was written; settled ${Math.round(since(staleSince))} ms after the stale lease was granted`,
    };
  };

  section('lease-conditional writes under a race', () => {
    checkUnless(
      noLocks ?? (env.capabilities.atomicLeaseWrites ? undefined : 'the backend declares atomicLeaseWrites: false'),
      `stale holders writing as their lease lapses never overwrite the new holder: ${RACE_KEYS} keys, ${RACE_ROUNDS} takeovers each, ${RACE_WRITERS} stale writers per takeover`,
      async (h) => {
        const { backend } = await setup(h);
        const overwritten: string[] = [];
        await Promise.all(
          Array.from({ length: RACE_KEYS }, async (_, k) => {
            const key = h.key(`race${k}`);
            let staleSince = performance.now();
            let stale = await mustLock(backend, key);
            for (let round = 1; round <= RACE_ROUNDS; round++) {
              // Each new holder's lease lapses in turn and it becomes the stale holder of the next round.
              const value = `holder ${round}`;
              const race = await raceStaleWriters(backend, key, stale, staleSince, value, round < RACE_ROUNDS ? leaseMs : 20 * leaseMs);
              if (race.final !== value) {
                overwritten.push(
                  `key ${k}, takeover ${round}: holds ${race.final === undefined ? 'nothing' : JSON.stringify(race.final)}, not ${value} (${race.detail})`,
                );
              }
              [stale, staleSince] = [race.current, race.currentSince];
            }
          }),
        );
        if (overwritten.length > 0) expect.fail(`a stale write replaced the new holder’s value:\n${overwritten.join('\n')}`);
      },
    );
  });

  section('locks and data are independent', () => {
    lockCheck('writes and deletes without a lease proceed while the key is locked (locks are advisory)', async (h) => {
      const { backend, key } = await setup(h);
      await mustLock(backend, key, 20 * leaseMs);
      expect(await backend.set(key, bytes(1))).toBe('written');
      expectBytes(await backend.get(key), bytes(1));
      expect(await backend.delete(key)).toBe('deleted');
    });

    lockCheck(
      'a lock is not a value: get, getMany and delete of a locked key see nothing, and a locked value still reads back',
      async (h) => {
        const { backend, key } = await setup(h);
        const valued = h.key('valued');
        await backend.set(valued, bytes(8));
        await mustLock(backend, key, 20 * leaseMs);
        await mustLock(backend, valued, 20 * leaseMs);
        expect(await backend.get(key)).toBeUndefined();
        expect(await backend.getMany([key])).toStrictEqual([undefined]);
        expect(await backend.delete(key)).toBe('missing');
        expectBytes(await backend.get(valued), bytes(8), 'a locked key’s value');
      },
    );

    lockCheck('an unconditional set or setMany leaves the key’s lease held', async (h) => {
      const { backend, key } = await setup(h);
      const lease = await mustLock(backend, key, 20 * leaseMs);
      await backend.set(key, bytes(1));
      await backend.setMany([[key, bytes(2)]]);
      expectBytes(await backend.get(key), bytes(2), 'the value setMany wrote');
      expect(await tryLock(backend, key), 'the write freed the lock').toBeUndefined();
      expect(await backend.set(key, bytes(3), { lease })).toBe('written');
    });

    lockCheck('deleting the value (delete or deleteMany) leaves the key’s lease held', async (h) => {
      const { backend, key } = await setup(h);
      await backend.set(key, bytes(1));
      const lease = await mustLock(backend, key, 20 * leaseMs);
      expect(await backend.delete(key), 'the delete of the stored value').toBe('deleted');
      await backend.set(key, bytes(1));
      await backend.deleteMany([key]);
      expect(await tryLock(backend, key), 'the delete freed the lock').toBeUndefined();
      expect(await backend.set(key, bytes(3), { lease })).toBe('written');
    });
  });

  section('malformed leases', () => {
    lockCheck('releaseLock with a malformed lease rejects with ValidationError and frees nothing', async (h) => {
      const { backend, key } = await setup(h);
      const lease = await mustLock(backend, key, 20 * leaseMs);
      for (const [label, bad] of malformedLeases(lease)) {
        await expectRejection(() => backend.releaseLock(bad as Lease), ValidationError, `releaseLock(${label})`);
      }
      expect(await tryLock(backend, key), 'a malformed release freed the key').toBeUndefined();
      expect(await backend.releaseLock(lease)).toBe(true);
    });

    lockCheck('extendLock with a malformed lease rejects with ValidationError and extends nothing', async (h) => {
      const { backend, key } = await setup(h);
      const lease = await mustLock(backend, key);
      for (const [label, bad] of malformedLeases(lease)) {
        await expectRejection(() => backend.extendLock(bad as Lease, 1_000), ValidationError, `extendLock(${label}, 1000)`);
      }
      // The held lease was not renewed by the malformed calls: it still lapses on its own.
      await takeOverAfterLapse(backend, key);
    });

    lockCheck('set with a malformed lease rejects with ValidationError and writes nothing', async (h) => {
      const { backend, key } = await setup(h);
      await backend.set(key, bytes(1));
      const lease = await mustLock(backend, key, 20 * leaseMs);
      for (const [label, bad] of malformedLeases(lease)) {
        await expectRejection(() => backend.set(key, bytes(2), { lease: bad as Lease }), ValidationError, `set with lease ${label}`);
      }
      expectBytes(await backend.get(key), bytes(1), 'the value after the malformed writes');
      expect(await backend.set(key, bytes(3), { lease })).toBe('written');
    });

    lockCheck('delete with a malformed lease rejects with ValidationError and deletes nothing', async (h) => {
      const { backend, key } = await setup(h);
      await backend.set(key, bytes(1));
      const lease = await mustLock(backend, key, 20 * leaseMs);
      for (const [label, bad] of malformedLeases(lease)) {
        await expectRejection(() => backend.delete(key, { lease: bad as Lease }), ValidationError, `delete with lease ${label}`);
      }
      expectBytes(await backend.get(key), bytes(1), 'the value after the malformed deletes');
      expect(await backend.delete(key, { lease })).toBe('deleted');
    });
  });

  section('close', () => {
    lockCheck('close rejects a pending wait with BackendClosedError promptly', async (h) => {
      const { backend, key } = await setup(h);
      await mustLock(backend, key, 20 * leaseMs);
      const waiting = settleWithin(backend.acquireLock(key, { leaseMs, waitMs: 20 * leaseMs }), 5_000);
      await sleep(30);
      const closedAt = performance.now();
      const closing = settle(backend.close());
      const outcome = await waiting;
      const settledAt = performance.now();
      expect(
        outcome === 'hung'
          ? 'still waiting 5 s after close'
          : outcome.ok
            ? `resolved ${outcome.value === undefined ? 'undefined' : 'a lease'}`
            : outcome.error instanceof BackendClosedError
              ? 'BackendClosedError'
              : `rejected with ${describeError(outcome.error)}`,
        'the wait interrupted by close',
      ).toBe('BackendClosedError');
      expectWithin(closedAt, promptMs, 'rejecting the wait after close() was called', settledAt);
      const closed = await closing;
      expect(closed.ok, closed.ok ? '' : `close() rejected: ${describeError(closed.error)}`).toBe(true);
    });

    checkUnless(
      noLocks ?? (env.hasPeer ? undefined : 'no createPeer is given, so no second handle outlives closing the first'),
      'close gives back the leases it holds: a peer takes each key at once',
      async (h) => {
        const { backend, key } = await setup(h);
        const peer = await h.peer(backend);
        if (peer.acquireLock === undefined) expect.fail('the peer backend has no locks of its own');
        const keys = [key, h.key('second')];
        for (const held of keys) await mustLock(backend, held, 20 * leaseMs);
        expect(await peer.acquireLock(key, { leaseMs, waitMs: 0 }), 'the peer took a key held by the backend').toBeUndefined();
        await backend.close();
        for (const held of keys) {
          expect(await peer.acquireLock(held, { leaseMs, waitMs: 0 }), `the lease on ${held} was still held after close`).toBeDefined();
        }
      },
    );
  });
}

/** How long the hand-over check holds the key before releasing: a polling waiter's backoff grows to its longest pause meanwhile. */
const HAND_OVER_HOLD_MS = 1_000;
/**
 * One poll on top of the round-trip bound, for backends that cannot hear releases from other
 * handles and poll instead: the longest pause the backend kit's retry policies take while
 * releases go unheard (`wakeUpRetry`'s default fallback).
 */
const POLL_ALLOWANCE_MS = 250;
/** Acquires made by the leak check: a listener or timer per acquire then shows as dozens. */
const LEAK_ROUNDS = 30;
/** Keys raced at once, takeovers per key and stale writers per takeover, in the race check. */
const RACE_KEYS = 4;
const RACE_ROUNDS = 3;
const RACE_WRITERS = 4;

function expectIncreasing(tokens: readonly bigint[]): void {
  for (let i = 1; i < tokens.length; i++) {
    const [previous, next] = [tokens[i - 1] as bigint, tokens[i] as bigint];
    expect(next > previous, `fencing token ${next} came after ${previous} (sequence ${tokens.join(', ')})`).toBe(true);
  }
}
