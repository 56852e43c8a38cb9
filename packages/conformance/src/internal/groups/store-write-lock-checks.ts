import {
  LockKeyMismatchError,
  LockNotActiveError,
  LockTimeoutError,
  NotFoundError,
  type KeyValueStore,
  type KeyValueStoreLock,
} from '@latchkey/core';
import { expect } from 'vitest';
import type { ConformanceEnvironment } from '../environment.js';
import { expectRejection } from '../expect-error.js';
import type { Harness } from '../harness.js';
import { RecordingProxy } from '../proxies.js';
import { checksFor } from '../register.js';
import { since, sleep } from '../timing.js';

/** Writes and deletes with `options.lock` (the check order of the contract), and `locking: false`. */
export function registerStoreWriteLockChecks(env: ConformanceEnvironment): void {
  const { check, section } = checksFor(env);
  const { leaseMs, safetyMs, expiryGraceMs } = env.timings;
  const { minLeaseMs, ttlResolutionMs } = env.capabilities;
  const longLockMs = 20 * leaseMs;

  /** A store whose locks outlive the check unless a check expires them on purpose. */
  const lockingStore = async (h: Harness, recorder?: RecordingProxy): Promise<KeyValueStore> =>
    (await h.store({ lockTimeoutMs: longLockMs, ...(recorder === undefined ? {} : { proxies: [recorder] }) })).store;
  /** Waits until `lock` (acquired with lockTimeoutMs = leaseMs) counts as expired on the client. */
  const untilExpired = async (lock: KeyValueStoreLock): Promise<void> => {
    await sleep(leaseMs - safetyMs + 10);
    expect(lock.expired, 'the lock did not expire on time').toBe(true);
  };

  section('writes with a lock', () => {
    check('set with an active lock writes', async (h) => {
      const store = await lockingStore(h);
      const key = h.key();
      const lock = await store.getLock(key).acquire({ waitMs: 0 });
      await store.set(key, 'locked write', { lock });
      expect(await store.get(key)).toBe('locked write');
    });

    check('delete with an active lock deletes', async (h) => {
      const store = await lockingStore(h);
      const key = h.key();
      await store.set(key, 1);
      const lock = await store.getLock(key).acquire({ waitMs: 0 });
      await store.delete(key, { lock });
      await expectRejection(store.get(key), NotFoundError);
    });

    check('writes without a lock proceed and reads never wait while another holder has the key', async (h) => {
      const store = await lockingStore(h);
      const key = h.key();
      await store.getLock(key).acquire({ waitMs: 0 });
      const startedAt = performance.now();
      await store.set(key, 'unlocked');
      expect(await store.get(key)).toBe('unlocked');
      expect(await store.getMany([key])).toStrictEqual(['unlocked']);
      await store.delete(key);
      expect(since(startedAt)).toBeLessThan(leaseMs);
    });

    check('set with a lock for another key rejects with LockKeyMismatchError and keeps the earlier value', async (h) => {
      const store = await lockingStore(h);
      const key = h.key();
      await store.set(key, 'before');
      const lock = await store.getLock(h.key('other')).acquire({ waitMs: 0 });
      await expectRejection(store.set(key, 'x', { lock }), LockKeyMismatchError);
      expect(await store.get(key)).toBe('before');
    });

    check('the key is checked before activity: an unacquired lock for another key gives LockKeyMismatchError', async (h) => {
      const store = await lockingStore(h);
      await store.set(h.key(), 'before');
      const lock = store.getLock(h.key('other'));
      await expectRejection(store.set(h.key(), 'x', { lock }), LockKeyMismatchError);
      expect(await store.get(h.key()), 'the value after the refused write').toBe('before');
    });

    check('set with a lock never acquired rejects with LockNotActiveError and keeps the earlier value', async (h) => {
      const store = await lockingStore(h);
      const key = h.key();
      await store.set(key, 'before');
      await expectRejection(store.set(key, 'x', { lock: store.getLock(key) }), LockNotActiveError);
      expect(await store.get(key)).toBe('before');
    });

    check('set with a released lock rejects with LockNotActiveError and writes nothing', async (h) => {
      const store = await lockingStore(h);
      const key = h.key();
      await store.set(key, 'before');
      const lock = await store.getLock(key).acquire({ waitMs: 0 });
      await lock.release();
      await expectRejection(store.set(key, 'after', { lock }), LockNotActiveError);
      expect(await store.get(key)).toBe('before');
    });

    check('set with an expired lock rejects with LockTimeoutError and writes nothing', async (h) => {
      const store = await lockingStore(h);
      const key = h.key();
      await store.set(key, 'before');
      const lock = await store.getLock(key, { lockTimeoutMs: leaseMs }).acquire({ waitMs: 0 });
      await untilExpired(lock);
      const error = await expectRejection(store.set(key, 'after', { lock }), LockTimeoutError);
      expect(error.target).toBe(key);
      expect(await store.get(key)).toBe('before');
    });

    check('activity is checked before expiry: an expired, released lock gives LockNotActiveError', async (h) => {
      const store = await lockingStore(h);
      const key = h.key();
      await store.set(key, 'before');
      const lock = await store.getLock(key, { lockTimeoutMs: leaseMs }).acquire({ waitMs: 0 });
      await untilExpired(lock);
      await lock.release();
      await expectRejection(store.set(key, 'x', { lock }), LockNotActiveError);
      expect(await store.get(key), 'the value after the refused write').toBe('before');
    });

    check('the key is checked before expiry: an expired lock for another key gives LockKeyMismatchError', async (h) => {
      const store = await lockingStore(h);
      await store.set(h.key(), 'before');
      const lock = await store.getLock(h.key('other'), { lockTimeoutMs: leaseMs }).acquire({ waitMs: 0 });
      await untilExpired(lock);
      await expectRejection(store.set(h.key(), 'x', { lock }), LockKeyMismatchError);
      expect(await store.get(h.key()), 'the value after the refused write').toBe('before');
    });

    check('delete with a lock for another key rejects with LockKeyMismatchError and deletes nothing', async (h) => {
      const store = await lockingStore(h);
      const key = h.key();
      await store.set(key, 1);
      const lock = await store.getLock(h.key('other')).acquire({ waitMs: 0 });
      await expectRejection(store.delete(key, { lock }), LockKeyMismatchError);
      expect(await store.get(key)).toBe(1);
    });

    check('delete with a released lock rejects with LockNotActiveError and deletes nothing', async (h) => {
      const store = await lockingStore(h);
      const key = h.key();
      await store.set(key, 1);
      const lock = await store.getLock(key).acquire({ waitMs: 0 });
      await lock.release();
      await expectRejection(store.delete(key, { lock }), LockNotActiveError);
      expect(await store.get(key)).toBe(1);
    });

    check('delete with an expired lock rejects with LockTimeoutError and deletes nothing', async (h) => {
      const store = await lockingStore(h);
      const key = h.key();
      await store.set(key, 1);
      const lock = await store.getLock(key, { lockTimeoutMs: leaseMs }).acquire({ waitMs: 0 });
      await untilExpired(lock);
      await expectRejection(store.delete(key, { lock }), LockTimeoutError);
      expect(await store.get(key)).toBe(1);
    });
  });

  section('writes with a lock whose lease is gone on the backend', () => {
    /** A lock whose lease the test releases behind its back, and a newer holder of the key. */
    const takenOver = async (
      h: Harness,
    ): Promise<{ store: KeyValueStore; key: string; stale: KeyValueStoreLock; current: KeyValueStoreLock }> => {
      const recorder = new RecordingProxy();
      const store = await lockingStore(h, recorder);
      const key = h.key();
      const stale = await store.getLock(key).acquire({ waitMs: 0 });
      const released = await recorder.proxied.releaseLock?.(recorder.onlyLease());
      expect(released, 'releasing the lease directly on the backend').toBe(true);
      const current = await store.getLock(key).acquire({ waitMs: 0 });
      return { store, key, stale, current };
    };

    check('set with a lock whose lease was taken over rejects with LockTimeoutError and keeps the newer holder’s value', async (h) => {
      const { store, key, stale, current } = await takenOver(h);
      await store.set(key, 'newer holder', { lock: current });
      expect(stale.active && !stale.expired, 'the stale lock still looks live on the client').toBe(true);
      await expectRejection(store.set(key, 'stale holder', { lock: stale }), LockTimeoutError);
      expect(await store.get(key)).toBe('newer holder');
    });

    check('delete with a lock whose lease was taken over rejects with LockTimeoutError and keeps the value', async (h) => {
      const { store, key, stale, current } = await takenOver(h);
      await store.set(key, 'newer holder', { lock: current });
      await expectRejection(store.delete(key, { lock: stale }), LockTimeoutError);
      expect(await store.get(key)).toBe('newer holder');
    });

    check('a refused locked write aborts the lock’s signal', async (h) => {
      const { store, key, stale } = await takenOver(h);
      expect(stale.signal.aborted).toBe(false);
      await expectRejection(store.set(key, 'stale holder', { lock: stale }), LockTimeoutError);
      expect(stale.signal.aborted).toBe(true);
    });

    check(
      'set with a lock whose lease lapsed on the backend rejects with LockTimeoutError, although the client thinks it live',
      async (h) => {
        const recorder = new RecordingProxy();
        const store = await lockingStore(h, recorder);
        const key = h.key();
        await store.set(key, 'before');
        const lock = await store.getLock(key).acquire({ waitMs: 0 });
        const shortened = await recorder.proxied.extendLock?.(recorder.onlyLease(), minLeaseMs);
        expect(shortened, 'shortening the lease directly on the backend').toBe(true);
        await sleep(minLeaseMs + ttlResolutionMs + expiryGraceMs);
        expect(lock.expired).toBe(false);
        await expectRejection(store.set(key, 'after', { lock }), LockTimeoutError);
        expect(await store.get(key)).toBe('before');
      },
    );
  });

  section('locking: false', () => {
    check('locks are disabled and never reach the backend', async (h) => {
      const recorder = new RecordingProxy();
      const { store } = await h.store({ locking: false, proxies: [recorder] });
      const key = h.key();
      const lock = store.getLock(key);
      expect(lock.enabled).toBe(false);
      await lock.acquire({ waitMs: 0 });
      await store.set(key, 1, { lock });
      expect(await store.get(key), 'the write under the disabled lock').toBe(1);
      await lock.extend();
      await lock.release();
      await store.withLock(key, () => undefined);
      expect(recorder.methods.filter((method) => method.endsWith('Lock'))).toStrictEqual([]);
    });

    check('two disabled locks on one key are both acquired, and both write', async (h) => {
      const { store } = await h.store({ locking: false });
      const key = h.key();
      const first = await store.getLock(key).acquire({ waitMs: 0 });
      const second = await store.getLock(key).acquire({ waitMs: 0 });
      expect(first.active && second.active).toBe(true);
      await store.set(key, 'first', { lock: first });
      await store.set(key, 'second', { lock: second });
      expect(await store.get(key)).toBe('second');
    });

    check('the key check still applies: LockKeyMismatchError', async (h) => {
      const { store } = await h.store({ locking: false });
      await store.set(h.key(), 'before');
      const lock = await store.getLock(h.key('other')).acquire({ waitMs: 0 });
      await expectRejection(store.set(h.key(), 1, { lock }), LockKeyMismatchError);
      expect(await store.get(h.key()), 'the value after the refused write').toBe('before');
    });

    check('the activity check still applies: LockNotActiveError after release', async (h) => {
      const { store } = await h.store({ locking: false });
      const key = h.key();
      await store.set(key, 'before');
      const lock = await store.getLock(key).acquire({ waitMs: 0 });
      await lock.release();
      await expectRejection(store.set(key, 1, { lock }), LockNotActiveError);
      await expectRejection(store.delete(key, { lock }), LockNotActiveError);
      expect(await store.get(key), 'the value after the refused write and delete').toBe('before');
    });

    check('the expiry check still applies: LockTimeoutError once lockTimeoutMs has passed', async (h) => {
      const { store } = await h.store({ locking: false, lockTimeoutMs: longLockMs });
      const key = h.key();
      await store.set(key, 'before');
      const lock = await store.getLock(key, { lockTimeoutMs: leaseMs }).acquire({ waitMs: 0 });
      await untilExpired(lock);
      await expectRejection(store.set(key, 1, { lock }), LockTimeoutError);
      expect(await store.get(key), 'the value after the refused write').toBe('before');
    });
  });
}
