import { BackendClosedError, LockAcquireTimeoutError, LockTimeoutError, type KeyValueStore, type KeyValueStoreLock } from '@latchkey/core';
import { expect } from 'vitest';
import type { ConformanceEnvironment } from '../environment.js';
import { describeError, expectRejectedWith, expectRejection, expectRejectionWith, expectWithin } from '../expect-error.js';
import type { Harness } from '../harness.js';
import { RecordingProxy } from '../proxies.js';
import { readLagSince } from '../event-loop-lag.js';
import { checksFor } from '../register.js';
import { eventually, settle, settleWithin, since, sleep, THIRTY_DAYS_MS } from '../timing.js';

/** How far back the autoExtend checks look for event-loop stalls when they size their lease. */
const RECENT_LAG_WINDOW_MS = 10_000;

/** `KeyValueStoreLock` over the backend. */
export function registerStoreLockChecks(env: ConformanceEnvironment): void {
  const { check, checkUnless, section } = checksFor(env);
  const { leaseMs, safetyMs, promptMs, expiryGraceMs } = env.timings;
  const { minLeaseMs, ttlResolutionMs } = env.capabilities;
  const longLockMs = 20 * leaseMs;
  const lapseWithinMs = leaseMs + expiryGraceMs + Math.max(ttlResolutionMs, minLeaseMs);

  const lockingStore = async (h: Harness, options: { lockTimeoutMs?: number; proxies?: RecordingProxy[] } = {}): Promise<KeyValueStore> =>
    (await h.store({ lockTimeoutMs: longLockMs, ...options })).store;
  /** Two stores over the same backend (the second over `createPeer`'s handle when given). */
  const twoStores = async (h: Harness): Promise<[KeyValueStore, KeyValueStore]> => {
    const { store, backend } = await h.store({ lockTimeoutMs: longLockMs });
    const { store: second } = await h.store({ lockTimeoutMs: longLockMs }, await h.peer(backend));
    return [store, second];
  };
  /** Polls `tryAcquire` on fresh locks until one wins after the holder's lease lapsed. */
  const takeOverAfterLapse = async (store: KeyValueStore, key: string, lockTimeoutMs = longLockMs): Promise<KeyValueStoreLock> => {
    let taken: KeyValueStoreLock | undefined;
    const won = await eventually(async () => {
      const lock = store.getLock(key, { lockTimeoutMs });
      if (!(await lock.tryAcquire())) return false;
      taken = lock;
      return true;
    }, lapseWithinMs);
    if (!won || taken === undefined) expect.fail(`the lease did not lapse within ${lapseWithinMs} ms`);
    return taken;
  };
  /** Read-modify-write of a counter by `workers` concurrent callers, each under the key's lock. */
  const countUnderLock = async (
    stores: readonly KeyValueStore[],
    key: string,
    workers: number,
  ): Promise<{ count: unknown; most: number }> => {
    let holders = 0;
    let most = 0;
    const [first] = stores;
    if (first === undefined) throw new Error('no store');
    await first.set(key, 0);
    await Promise.all(
      Array.from({ length: workers }, (_, i) =>
        (stores[i % stores.length] as KeyValueStore).withLock(
          key,
          async (lock) => {
            holders += 1;
            most = Math.max(most, holders);
            const count = await (stores[i % stores.length] as KeyValueStore).get<number>(key);
            await sleep(2);
            await (stores[i % stores.length] as KeyValueStore).set(key, count + 1, { lock });
            holders -= 1;
          },
          { waitMs: longLockMs },
        ),
      ),
    );
    return { count: await first.get(key), most };
  };

  section('acquire', () => {
    check('acquire resolves the lock itself: active, not expired, enabled, with a bigint fencing token', async (h) => {
      const store = await lockingStore(h);
      const key = h.key();
      const lock = store.getLock(key);
      expect(lock.active).toBe(false);
      expect(await lock.acquire({ waitMs: 0 })).toBe(lock);
      expect(lock.key).toBe(key);
      expect(lock.enabled).toBe(true);
      expect(lock.active).toBe(true);
      expect(lock.expired).toBe(false);
      expect(typeof lock.fencingToken).toBe('bigint');
      expect(lock.signal.aborted).toBe(false);
    });

    check('`await using` releases the lock at the end of the scope', async (h) => {
      const store = await lockingStore(h);
      const key = h.key();
      let escaped: KeyValueStoreLock | undefined;
      {
        await using lock = await store.getLock(key).acquire({ waitMs: 0 });
        escaped = lock;
        expect(await store.getLock(key).tryAcquire()).toBe(false);
      }
      expect(escaped.active).toBe(false);
      expect(await store.getLock(key).tryAcquire()).toBe(true);
    });

    check('tryAcquire resolves true on a free key and false while another lock holds it', async (h) => {
      const store = await lockingStore(h);
      const key = h.key();
      expect(await store.getLock(key).tryAcquire()).toBe(true);
      const loser = store.getLock(key);
      expect(await loser.tryAcquire()).toBe(false);
      expect(loser.active).toBe(false);
    });

    check('a lock holds only its own key', async (h) => {
      const store = await lockingStore(h);
      await store.getLock(h.key('a')).acquire({ waitMs: 0 });
      expect(await store.getLock(h.key('b')).tryAcquire()).toBe(true);
    });

    check('acquire waits for the holder to release, then takes the lock promptly', async (h) => {
      const store = await lockingStore(h);
      const key = h.key();
      const holder = await store.getLock(key).acquire({ waitMs: 0 });
      const waiter = store.getLock(key);
      const waiting = settle(waiter.acquire({ waitMs: longLockMs }));
      await sleep(50);
      expect(waiter.active, 'acquired while the key was held').toBe(false);
      const releasedAt = performance.now();
      await holder.release();
      expect((await waiting).ok, 'the waiting acquire failed').toBe(true);
      expect(waiter.active).toBe(true);
      expectWithin(releasedAt, promptMs, 'taking the lock after the release');
      await store.set(key, 'the waiter’s write', { lock: waiter });
      expect(await store.get(key)).toBe('the waiter’s write');
    });

    check('acquire rejects with LockAcquireTimeoutError once waitMs has passed', async (h) => {
      const store = await lockingStore(h);
      const key = h.key();
      await store.getLock(key).acquire({ waitMs: 0 });
      const waitMs = 150;
      const startedAt = performance.now();
      const error = await expectRejection(store.getLock(key).acquire({ waitMs }), LockAcquireTimeoutError);
      expect(error.target).toBe(key);
      expect(since(startedAt)).toBeGreaterThanOrEqual(waitMs - 5);
      expectWithin(startedAt, waitMs + promptMs, `a wait of ${waitMs} ms`);
    });

    check('an aborted acquire rejects with signal.reason promptly', async (h) => {
      const store = await lockingStore(h);
      const key = h.key();
      await store.getLock(key).acquire({ waitMs: 0 });
      const controller = new AbortController();
      const reason = new Error('conformance: give up');
      const outcome = settle(store.getLock(key).acquire({ waitMs: longLockMs, signal: controller.signal }));
      await sleep(30);
      const abortedAt = performance.now();
      controller.abort(reason);
      expectRejectedWith(await outcome, reason);
      expectWithin(abortedAt, promptMs, 'settling after the abort');
    });

    check('an aborted acquire leaves no lock behind: the key is free as soon as the holder releases', async (h) => {
      const store = await lockingStore(h);
      const key = h.key();
      const holder = await store.getLock(key).acquire({ waitMs: 0 });
      const controller = new AbortController();
      const aborted = store.getLock(key);
      const waiting = settle(aborted.acquire({ waitMs: longLockMs, signal: controller.signal }));
      await sleep(30);
      controller.abort(new Error('conformance: give up'));
      expect((await waiting).ok).toBe(false);
      expect(aborted.active).toBe(false);
      await holder.release();
      expect(await store.getLock(key).tryAcquire(), 'the aborted acquire left a lock behind').toBe(true);
    });

    check('an acquire with an already-aborted signal rejects with its reason and takes nothing', async (h) => {
      const store = await lockingStore(h);
      const key = h.key();
      const reason = new Error('conformance: aborted already');
      await expectRejectionWith(store.getLock(key).acquire({ signal: AbortSignal.abort(reason) }), reason);
      expect(await store.getLock(key).tryAcquire()).toBe(true);
    });
  });

  section('long waits and close', () => {
    check(
      'acquire with a 30-day waitMs on a held key is still waiting after 1 s; an abort then rejects with its reason and leaves no lock behind',
      async (h) => {
        const store = await lockingStore(h);
        const key = h.key();
        const holder = await store.getLock(key).acquire({ waitMs: 0 });
        const controller = new AbortController();
        const reason = new Error('conformance: stop the 30-day wait');
        const waiter = store.getLock(key);
        const startedAt = performance.now();
        let settledAfter: number | undefined;
        const waiting = settle(
          waiter.acquire({ waitMs: THIRTY_DAYS_MS, signal: controller.signal }).finally(() => {
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
        expect(waiter.active).toBe(false);
        await holder.release();
        expect(await store.getLock(key).tryAcquire(), 'the aborted 30-day wait left a lock behind').toBe(true);
      },
    );

    check('an acquire waiting when the store closes rejects with BackendClosedError promptly', async (h) => {
      const store = await lockingStore(h);
      const key = h.key();
      await store.getLock(key).acquire({ waitMs: 0 });
      const waiting = settleWithin(store.getLock(key).acquire({ waitMs: longLockMs }), 5_000);
      await sleep(30);
      const closedAt = performance.now();
      const closing = settle(store.close());
      const outcome = await waiting;
      const settledAt = performance.now();
      expect(
        outcome === 'hung'
          ? 'still waiting 5 s after close'
          : outcome.ok
            ? 'acquired the lock'
            : outcome.error instanceof BackendClosedError
              ? 'BackendClosedError'
              : `rejected with ${describeError(outcome.error)}`,
        'the acquire interrupted by close',
      ).toBe('BackendClosedError');
      expectWithin(closedAt, promptMs, 'rejecting the acquire after close() was called', settledAt);
      const closed = await closing;
      expect(closed.ok, closed.ok ? '' : `close() rejected: ${describeError(closed.error)}`).toBe(true);
    });
  });

  section('mutual exclusion', () => {
    check('read-modify-write by 12 workers on one store under the lock ends with the exact count', async (h) => {
      const store = await lockingStore(h);
      const { count, most } = await countUnderLock([store], h.key(), 12);
      expect(most, 'most holders at once').toBe(1);
      expect(count).toBe(12);
    });

    check('read-modify-write by 12 workers on two stores sharing the backend ends with the exact count', async (h) => {
      const stores = await twoStores(h);
      const { count, most } = await countUnderLock(stores, h.key(), 12);
      expect(most, 'most holders at once').toBe(1);
      expect(count).toBe(12);
    });

    check(
      'a lock held through one store blocks tryAcquire through another store on the same backend, which takes it after the release and writes under it',
      async (h) => {
        const [first, second] = await twoStores(h);
        const key = h.key();
        const held = await first.getLock(key).acquire({ waitMs: 0 });
        expect(await second.getLock(key).tryAcquire()).toBe(false);
        await held.release();
        const taken = second.getLock(key);
        expect(await taken.tryAcquire()).toBe(true);
        await second.set(key, 'second store', { lock: taken });
        expect(await first.get(key), 'the second store’s locked write, read through the first').toBe('second store');
      },
    );
  });

  section('lease expiry', () => {
    check('when a holder’s lease lapses, the next holder gets in without a release', async (h) => {
      const store = await lockingStore(h);
      const key = h.key();
      await store.getLock(key, { lockTimeoutMs: leaseMs }).acquire({ waitMs: 0 });
      const next = await store.getLock(key).acquire({ waitMs: lapseWithinMs + leaseMs });
      expect(next.active).toBe(true);
      await store.set(key, 'next holder', { lock: next });
      expect(await store.get(key)).toBe('next holder');
    });

    check('release never removes a lock another holder now owns', async (h) => {
      const store = await lockingStore(h);
      const key = h.key();
      const stale = await store.getLock(key, { lockTimeoutMs: leaseMs }).acquire({ waitMs: 0 });
      const current = await takeOverAfterLapse(store, key);
      await stale.release();
      expect(await store.getLock(key).tryAcquire(), 'the stale release freed the key').toBe(false);
      await store.set(key, 'current holder', { lock: current });
      expect(await store.get(key)).toBe('current holder');
    });

    check('fencing tokens strictly increase across holders and store instances', async (h) => {
      const [first, second] = await twoStores(h);
      const key = h.key();
      const tokens: bigint[] = [];
      for (let i = 0; i < 6; i++) {
        const store = i % 2 === 0 ? first : second;
        const lock = await store.getLock(key).acquire({ waitMs: 0 });
        tokens.push(lock.fencingToken as bigint);
        // A fencing-guarded write, as a fenced resource takes it: the token stored by the previous holder is smaller.
        if (i > 0) expect(await store.get(key), `the token holder ${i} found stored`).toBe(String(tokens[i - 1]));
        await store.set(key, String(lock.fencingToken), { lock });
        await lock.release();
      }
      for (let i = 1; i < tokens.length; i++) {
        expect((tokens[i] as bigint) > (tokens[i - 1] as bigint), `fencing tokens ${tokens.join(', ')}`).toBe(true);
      }
      expect(await first.get(key), 'the last holder’s token').toBe(String(tokens[5]));
    });

    checkUnless(
      env.capabilities.fencingTokens ? undefined : 'the backend declares fencingTokens: false',
      'the fencing token of the holder after a lapse exceeds the lapsed holder’s',
      async (h) => {
        const store = await lockingStore(h);
        const key = h.key();
        const stale = await store.getLock(key, { lockTimeoutMs: leaseMs }).acquire({ waitMs: 0 });
        const current = await takeOverAfterLapse(store, key);
        expect((current.fencingToken as bigint) > (stale.fencingToken as bigint)).toBe(true);
      },
    );
  });

  section('release', () => {
    check('writes and deletes without a lock leave another holder’s lock in place', async (h) => {
      const store = await lockingStore(h);
      const key = h.key();
      const lock = await store.getLock(key).acquire({ waitMs: 0 });
      await store.set(key, 'unlocked');
      await store.setMany({ [key]: 'unlocked batch' });
      await store.delete(key);
      await store.deleteMany([key]);
      expect(await store.getLock(key).tryAcquire(), 'an unlocked write freed the lock').toBe(false);
      await store.set(key, 'holder', { lock });
      expect(await store.get(key)).toBe('holder');
    });

    check('release makes the lock inactive, aborts its signal, frees the key and is idempotent', async (h) => {
      const store = await lockingStore(h);
      const key = h.key();
      const lock = await store.getLock(key).acquire({ waitMs: 0 });
      await lock.release();
      expect(lock.active).toBe(false);
      expect(lock.signal.aborted).toBe(true);
      await lock.release();
      expect(await store.getLock(key).tryAcquire()).toBe(true);
    });

    check('a released lock can be acquired again, and a write under its new lease lands', async (h) => {
      const store = await lockingStore(h);
      const key = h.key();
      const lock = store.getLock(key);
      await lock.acquire({ waitMs: 0 });
      const firstToken = lock.fencingToken as bigint;
      await lock.release();
      await lock.acquire({ waitMs: 0 });
      expect(lock.active).toBe(true);
      expect((lock.fencingToken as bigint) > firstToken).toBe(true);
      await store.set(key, 'acquired again', { lock });
      expect(await store.get(key)).toBe('acquired again');
    });
  });

  section('extend', () => {
    check('extend keeps the lock past its first lease', async (h) => {
      const store = await lockingStore(h);
      const key = h.key();
      const lock = await store.getLock(key, { lockTimeoutMs: leaseMs }).acquire({ waitMs: 0 });
      // Extended at once: a timer in between can fire past the whole lease on a starved machine,
      // and the extend of an expired lock would then rightly be refused.
      await lock.extend(4 * leaseMs + lapseWithinMs);
      await sleep(lapseWithinMs);
      expect(lock.expired).toBe(false);
      expect(await store.getLock(key).tryAcquire(), 'the lease lapsed despite extend').toBe(false);
      await store.set(key, 'still mine', { lock });
      expect(await store.get(key)).toBe('still mine');
    });

    check('extend of a released lock rejects with LockTimeoutError', async (h) => {
      const store = await lockingStore(h);
      const lock = await store.getLock(h.key()).acquire({ waitMs: 0 });
      await lock.release();
      await expectRejection(lock.extend(), LockTimeoutError);
    });

    check('extend of a lock whose lease was taken over rejects with LockTimeoutError and leaves the new holder alone', async (h) => {
      const store = await lockingStore(h);
      const key = h.key();
      const stale = await store.getLock(key, { lockTimeoutMs: leaseMs }).acquire({ waitMs: 0 });
      const current = await takeOverAfterLapse(store, key);
      await expectRejection(stale.extend(), LockTimeoutError);
      await store.set(key, 'current holder', { lock: current });
      expect(await store.get(key)).toBe('current holder');
    });
  });

  section('expired', () => {
    check('with lockTimeoutMs 0 a lock never expires and its lease never lapses', async (h) => {
      const store = await lockingStore(h);
      const key = h.key();
      const lock = await store.getLock(key, { lockTimeoutMs: 0 }).acquire({ waitMs: 0 });
      expect(lock.lockTimeoutMs).toBe(0);
      await sleep(lapseWithinMs);
      expect(lock.expired).toBe(false);
      expect(await store.getLock(key).tryAcquire()).toBe(false);
      await store.set(key, 'never expires', { lock });
      expect(await store.get(key)).toBe('never expires');
    });

    check('a lock turns expired once lockTimeoutMs minus the safety window has passed since acquire started', async (h) => {
      const store = await lockingStore(h);
      const lock = store.getLock(h.key(), { lockTimeoutMs: leaseMs });
      const startedAt = performance.now();
      await lock.acquire({ waitMs: 0 });
      const expiresAfter = leaseMs - safetyMs;
      await sleep(expiresAfter / 2 - since(startedAt));
      expect(lock.expired, `expired after ${Math.round(since(startedAt))} ms`).toBe(false);
      await sleep(expiresAfter - since(startedAt) + 15);
      expect(lock.expired, `not expired after ${Math.round(since(startedAt))} ms`).toBe(true);
    });

    check('the lock’s signal aborts when it expires', async (h) => {
      const store = await lockingStore(h);
      const lock = await store.getLock(h.key(), { lockTimeoutMs: leaseMs }).acquire({ waitMs: 0 });
      expect(lock.signal.aborted).toBe(false);
      await sleep(leaseMs - safetyMs + 20);
      expect(lock.signal.aborted).toBe(true);
      expect(lock.signal.reason).toBeInstanceOf(LockTimeoutError);
    });
  });

  /**
   * The lease of an autoExtend check: `leaseMs`, or longer when a renewal here is slow. A renewal
   * starts a third of the way through the trusted time (lease minus the safety window) and must
   * land before its end, so the lease leaves six of the slowest of three measured renewals for
   * that (FerretDB at load average 13: up to 540 ms each, against a 167 ms window at 300 ms).
   * The renewals run on this process's timers too: the lease also leaves three times the worst
   * event-loop stall of the last ten seconds (at load average 20, stalls of 300–600 ms let a
   * 300 ms lease run out before its renewal timer could fire).
   */
  const renewableLeaseMs = async (store: KeyValueStore, key: string): Promise<number> => {
    const probe = await store.getLock(key, { lockTimeoutMs: longLockMs }).acquire({ waitMs: 0 });
    let slowestMs = 0;
    for (let i = 0; i < 3; i++) {
      const startedAt = performance.now();
      await probe.extend();
      slowestMs = Math.max(slowestMs, since(startedAt));
    }
    await probe.release();
    const stallMs = readLagSince(performance.now() - RECENT_LAG_WINDOW_MS).totalMs;
    return Math.max(leaseMs, Math.ceil(safetyMs + 1.5 * 6 * slowestMs), Math.ceil(safetyMs + 3 * stallMs));
  };

  section('autoExtend', () => {
    check('autoExtend keeps a lock alive past its lease while the holder runs', async (h) => {
      const store = await lockingStore(h);
      const key = h.key();
      const autoLeaseMs = await renewableLeaseMs(store, h.key('probe'));
      const lock = await store.getLock(key, { lockTimeoutMs: autoLeaseMs, autoExtend: true }).acquire({ waitMs: 0 });
      await sleep(2.5 * autoLeaseMs);
      expect(lock.expired, `expired with autoExtend on a ${autoLeaseMs} ms lease`).toBe(false);
      expect(lock.signal.aborted, `aborted with autoExtend on a ${autoLeaseMs} ms lease`).toBe(false);
      expect(await store.getLock(key).tryAcquire()).toBe(false);
      await store.set(key, 'kept alive', { lock });
      expect(await store.get(key)).toBe('kept alive');
      await lock.release();
    });

    check('autoExtend aborts the signal when it cannot renew a lease that was taken over', async (h) => {
      const recorder = new RecordingProxy();
      const store = await lockingStore(h, { proxies: [recorder] });
      const key = h.key();
      const lock = await store.getLock(key, { lockTimeoutMs: leaseMs, autoExtend: true }).acquire({ waitMs: 0 });
      expect(await recorder.proxied.releaseLock?.(recorder.onlyLease())).toBe(true);
      expect(await store.getLock(key).tryAcquire()).toBe(true);
      // The renewal that finds the lease gone runs on this process's timers: a stall of the event loop delays it, whoever caused it.
      const startedAt = performance.now();
      while (!lock.signal.aborted && since(startedAt) < leaseMs + promptMs + readLagSince(startedAt).totalMs) await sleep(10);
      expect(
        lock.signal.aborted,
        `the signal did not abort within ${Math.round(since(startedAt))} ms (leaseMs ${leaseMs}, worst event-loop stall ${Math.round(readLagSince(startedAt).totalMs)} ms)`,
      ).toBe(true);
      await lock.release();
    });
  });
}
