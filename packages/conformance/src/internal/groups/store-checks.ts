import {
  AlreadyConfiguredError,
  getKeyValueStore,
  KeyValueStore,
  LockAcquireTimeoutError,
  NotConfiguredError,
  NotFoundError,
  registerBackend,
  ValidationError,
} from '@latchkey/core';
import { expect } from 'vitest';
import type { ConformanceEnvironment } from '../environment.js';
import { expectRejection } from '../expect-error.js';
import { RecordingProxy } from '../proxies.js';
import { checksFor } from '../register.js';
import { sleep } from '../timing.js';

/** Values of every kind the default codec keeps, each checked through the backend's bytes. */
const VALUES: readonly (readonly [string, unknown])[] = [
  ['null', null],
  ['undefined', undefined],
  ['0', 0],
  ['-0', -0],
  ["'' (empty string)", ''],
  ['false', false],
  ['true', true],
  ['NaN', NaN],
  ['Infinity and -Infinity', [Infinity, -Infinity]],
  ['non-ASCII string', 'café ☕ 日本語 😀 \u0000 end'],
  ['nested object', { a: { b: [1, { c: 'd' }] }, e: null, f: [] }],
  ['array with undefined entries', [1, undefined, 'x', null]],
  ['Date', new Date('2024-02-29T12:34:56.789Z')],
  ['Uint8Array', Uint8Array.from([0, 1, 254, 255])],
  ['BigInt', 12345678901234567890n],
  [
    'Map',
    new Map<unknown, unknown>([
      ['a', 1],
      [2, { b: 3 }],
    ]),
  ],
  ['Set', new Set([1, 'two', 3])],
  ['64 KiB string', 'x'.repeat(64 * 1024)],
];

/** `KeyValueStore` behaviour over the backend: configure, values, batches, delete, getOrCreate, withLock, close. */
export function registerStoreChecks(env: ConformanceEnvironment): void {
  const { check, section } = checksFor(env);
  const { leaseMs } = env.timings;

  section('configure', () => {
    check('isConfigured is false before configure and true after', async (h) => {
      const store = h.track(new KeyValueStore(h.storeName()));
      expect(store.isConfigured).toBe(false);
      await store.configure(await h.backend());
      expect(store.isConfigured).toBe(true);
    });

    check('a second configure rejects with AlreadyConfiguredError and the first configuration keeps working', async (h) => {
      const { store } = await h.store();
      const key = h.key();
      await expectRejection(store.configure(await h.backend()), AlreadyConfiguredError);
      await store.set(key, 'v');
      expect(await store.get(key)).toBe('v');
    });

    check('a configure that fails on a bad option leaves the store unconfigured and configurable', async (h) => {
      const store = h.track(new KeyValueStore(h.storeName()));
      const backend = await h.backend();
      await expectRejection(store.configure(backend, { lockTimeoutMs: -1 }), ValidationError);
      expect(store.isConfigured).toBe(false);
      await store.configure(backend);
      await store.set(h.key(), 1);
      expect(await store.get(h.key())).toBe(1);
    });

    check('a configure that fails on a non-function key mangler leaves the store configurable', async (h) => {
      const store = h.track(new KeyValueStore(h.storeName()));
      const backend = await h.backend();
      await expectRejection(store.configure(backend, { keyMangler: 'sha1' as never }), ValidationError);
      expect(store.isConfigured).toBe(false);
      await store.configure(backend);
      expect(store.isConfigured).toBe(true);
      await store.set(h.key(), 'after the failed configure');
      expect(await store.get(h.key())).toBe('after the failed configure');
    });

    check('a configure that fails on an unknown backend name leaves the store configurable', async (h) => {
      const store = h.track(new KeyValueStore(h.storeName()));
      await expectRejection(store.configure(`no-such-backend-${h.id}`), ValidationError);
      expect(store.isConfigured).toBe(false);
      await store.configure(await h.backend());
      expect(store.isConfigured).toBe(true);
      await store.set(h.key(), 'after the failed configure');
      expect(await store.get(h.key())).toBe('after the failed configure');
    });

    check('configures over a backend registered by name, passing backendOptions to the factory', async (h) => {
      const name = `conformance-${h.id}`;
      const seen: Record<string, unknown>[] = [];
      registerBackend(name, async (options) => {
        seen.push(options);
        return h.backend();
      });
      const store = h.track(new KeyValueStore(h.storeName()));
      await store.configure(name, { backendOptions: { marker: h.id } });
      expect(seen).toStrictEqual([{ marker: h.id }]);
      await store.set(h.key(), 'v');
      expect(await store.get(h.key())).toBe('v');
    });

    const calls: readonly (readonly [string, (store: KeyValueStore, key: string) => unknown])[] = [
      ['get', (store, key) => store.get(key)],
      ['getMany', (store, key) => store.getMany([key])],
      ['set', (store, key) => store.set(key, 1)],
      ['setMany', (store, key) => store.setMany({ [key]: 1 })],
      ['delete', (store, key) => store.delete(key)],
      ['deleteMany', (store, key) => store.deleteMany([key])],
      ['getLock', (store, key) => store.getLock(key)],
      ['withLock', (store, key) => store.withLock(key, () => undefined)],
      ['getOrCreate', (store, key) => store.getOrCreate(key, () => 1)],
    ];
    for (const [name, call] of calls) {
      check(`${name} before configure rejects with NotConfiguredError`, async (h) => {
        const store = h.track(new KeyValueStore(h.storeName()));
        await expectRejection(() => call(store, h.key()), NotConfiguredError);
      });
    }
  });

  section('values', () => {
    for (const [label, value] of VALUES) {
      check(`returns a stored ${label} as stored`, async (h) => {
        const { store } = await h.store();
        const key = h.key();
        await store.set(key, value);
        const read = await store.get(key);
        if (typeof value === 'object' && value !== null) expect(read).toStrictEqual(value);
        else expect(Object.is(read, value), `read back ${String(read)}`).toBe(true);
      });
    }

    check(
      'get of a missing key rejects with NotFoundError whose target is the key, while a key written beside it reads back',
      async (h) => {
        const { store } = await h.store();
        const key = h.key();
        await store.set(h.key('written'), 'beside it');
        const error = await expectRejection(store.get(key), NotFoundError);
        expect(error.target).toBe(key);
        expect(error.message).toBe(`Could not find: ${key}.`);
        expect(await store.get(h.key('written'))).toBe('beside it');
      },
    );

    check('set replaces the earlier value', async (h) => {
      const { store } = await h.store();
      const key = h.key();
      await store.set(key, { v: 1 });
      await store.set(key, { v: 2 });
      expect(await store.get(key)).toStrictEqual({ v: 2 });
    });

    check('stored values are isolated from the objects given to set and returned by get', async (h) => {
      const { store } = await h.store();
      const key = h.key();
      const value = { list: [1, 2] };
      await store.set(key, value);
      value.list.push(3);
      const read = await store.get<{ list: number[] }>(key);
      read.list.push(4);
      expect(await store.get(key)).toStrictEqual({ list: [1, 2] });
    });
  });

  section('getMany', () => {
    check('getMany([]) resolves [] without calling the backend', async (h) => {
      const recorder = new RecordingProxy();
      const { store } = await h.store({ proxies: [recorder] });
      expect(await store.getMany([])).toStrictEqual([]);
      expect(recorder.methods).toStrictEqual([]);
    });

    check('answers in input order with one backend call', async (h) => {
      const recorder = new RecordingProxy();
      const { store } = await h.store({ proxies: [recorder] });
      const [a, b, c] = [h.key('a'), h.key('b'), h.key('c')];
      await store.setMany({ [a]: 'A', [b]: 'B', [c]: 'C' });
      recorder.calls.length = 0;
      expect(await store.getMany([c, a, b])).toStrictEqual(['C', 'A', 'B']);
      expect(recorder.methods).toStrictEqual(['getMany']);
    });

    check('duplicate keys give duplicate values', async (h) => {
      const { store } = await h.store();
      const [a, b] = [h.key('a'), h.key('b')];
      await store.setMany({ [a]: 1, [b]: 2 });
      expect(await store.getMany([a, b, a, a])).toStrictEqual([1, 2, 1, 1]);
    });

    check('returns stored falsy values as stored', async (h) => {
      const { store } = await h.store();
      const keys = ['n', 'u', 'z', 'e', 'f'].map((name) => h.key(name));
      const values = [null, undefined, 0, '', false];
      await store.setMany(keys.map((key, i) => [key, values[i]] as const));
      expect(await store.getMany(keys)).toStrictEqual(values);
    });

    check('a missing key rejects with NotFoundError whose target lists all missing keys in input order', async (h) => {
      const { store } = await h.store();
      const [a, b, x, y] = [h.key('a'), h.key('b'), h.key('x'), h.key('y')];
      await store.setMany({ [a]: 1, [b]: 2 });
      const error = await expectRejection(store.getMany([y, a, x, b]), NotFoundError);
      expect(error.target).toStrictEqual([y, x]);
    });
  });

  section('setMany', () => {
    check('stores every entry of an object', async (h) => {
      const { store } = await h.store();
      const [a, b] = [h.key('a'), h.key('b')];
      await store.setMany({ [a]: 1, [b]: { two: 2 } });
      expect(await store.getMany([a, b])).toStrictEqual([1, { two: 2 }]);
    });

    check('stores every pair of an iterable (a Map)', async (h) => {
      const { store } = await h.store();
      const [a, b] = [h.key('a'), h.key('b')];
      await store.setMany(
        new Map<string, unknown>([
          [a, 'A'],
          [b, 'B'],
        ]),
      );
      expect(await store.getMany([b, a])).toStrictEqual(['B', 'A']);
    });

    check('the later of duplicate pairs wins', async (h) => {
      const { store } = await h.store();
      const key = h.key();
      await store.setMany([
        [key, 'first'],
        [key, 'second'],
      ]);
      expect(await store.get(key)).toBe('second');
    });

    check('an empty setMany does not call the backend', async (h) => {
      const recorder = new RecordingProxy();
      const { store } = await h.store({ proxies: [recorder] });
      await store.setMany({});
      await store.setMany([]);
      expect(recorder.methods).toStrictEqual([]);
    });

    check('setMany takes no lock: it writes keys another holder has locked', async (h) => {
      const { store } = await h.store({ lockTimeoutMs: 20 * leaseMs });
      const key = h.key();
      const lock = await store.getLock(key).acquire({ waitMs: 0 });
      await store.setMany({ [key]: 'unlocked write' });
      expect(await store.get(key)).toBe('unlocked write');
      expect(lock.active).toBe(true);
    });
  });

  section('delete', () => {
    check('delete removes the key', async (h) => {
      const { store } = await h.store();
      const key = h.key();
      await store.set(key, 'v');
      await store.delete(key);
      await expectRejection(store.get(key), NotFoundError);
    });

    check('delete of a missing key rejects with NotFoundError whose target is the key, and leaves a stored key alone', async (h) => {
      const { store } = await h.store();
      const key = h.key();
      await store.set(h.key('kept'), 'kept');
      const error = await expectRejection(store.delete(key), NotFoundError);
      expect(error.target).toBe(key);
      expect(await store.get(h.key('kept'))).toBe('kept');
    });

    check('deleteMany removes the listed keys and leaves the others', async (h) => {
      const { store } = await h.store();
      const [a, b, c] = [h.key('a'), h.key('b'), h.key('c')];
      await store.setMany({ [a]: 1, [b]: 2, [c]: 3 });
      await store.deleteMany([a, c]);
      const error = await expectRejection(store.getMany([a, b, c]), NotFoundError);
      expect(error.target).toStrictEqual([a, c]);
      expect(await store.get(b)).toBe(2);
    });

    check('deleteMany never rejects for missing keys, and accepts []', async (h) => {
      const { store } = await h.store();
      const [key, kept] = [h.key(), h.key('kept')];
      await store.setMany({ [key]: 1, [kept]: 2 });
      expect(await store.get(key), 'the value before deleteMany').toBe(1);
      await store.deleteMany([h.key('missing'), key]);
      await store.deleteMany([]);
      await expectRejection(store.get(key), NotFoundError);
      expect(await store.get(kept), 'the key not listed').toBe(2);
    });

    check('deleteMany takes no lock: it deletes keys another holder has locked', async (h) => {
      const { store } = await h.store({ lockTimeoutMs: 20 * leaseMs });
      const key = h.key();
      await store.set(key, 1);
      const lock = await store.getLock(key).acquire({ waitMs: 0 });
      expect(await store.get(key), 'the locked value before deleteMany').toBe(1);
      await store.deleteMany([key]);
      await expectRejection(store.get(key), NotFoundError);
      expect(lock.active).toBe(true);
    });
  });

  section('getOrCreate', () => {
    check('returns the stored value without running the creator', async (h) => {
      const { store } = await h.store();
      const key = h.key();
      await store.set(key, 'stored');
      let runs = 0;
      expect(await store.getOrCreate(key, () => `made ${++runs}`)).toBe('stored');
      expect(runs).toBe(0);
    });

    check('returns a stored null without running the creator', async (h) => {
      const { store } = await h.store();
      const key = h.key();
      await store.set(key, null);
      let runs = 0;
      expect(await store.getOrCreate(key, () => `made ${++runs}`)).toBeNull();
      expect(runs).toBe(0);
    });

    check('runs the creator for a missing key, stores its result and returns it', async (h) => {
      const { store } = await h.store();
      const key = h.key();
      expect(await store.getOrCreate(key, async () => ({ made: true }))).toStrictEqual({ made: true });
      expect(await store.get(key)).toStrictEqual({ made: true });
    });

    check('runs the creator once for 20 concurrent callers on one store', async (h) => {
      const { store } = await h.store({ lockTimeoutMs: 20 * leaseMs });
      const key = h.key();
      let runs = 0;
      const creator = async (): Promise<string> => {
        runs += 1;
        await sleep(50);
        return `made ${runs}`;
      };
      const results = await Promise.all(Array.from({ length: 20 }, () => store.getOrCreate(key, creator, { waitMs: 20 * leaseMs })));
      expect(runs).toBe(1);
      expect(new Set(results)).toStrictEqual(new Set(['made 1']));
    });

    check('runs the creator once for 20 concurrent callers on two stores sharing the backend', async (h) => {
      const { store: first, backend } = await h.store({ lockTimeoutMs: 20 * leaseMs });
      const { store: second } = await h.store({ lockTimeoutMs: 20 * leaseMs }, await h.peer(backend));
      const key = h.key();
      let runs = 0;
      const creator = async (): Promise<string> => {
        runs += 1;
        await sleep(50);
        return `made ${runs}`;
      };
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? first : second).getOrCreate(key, creator, { waitMs: 20 * leaseMs })),
      );
      expect(runs).toBe(1);
      expect(new Set(results)).toStrictEqual(new Set(['made 1']));
    });

    check('a creator that throws stores nothing, propagates its error and lets the next caller create', async (h) => {
      const { store } = await h.store();
      const key = h.key();
      const failure = new Error('conformance: creator failed');
      const outcome = await store
        .getOrCreate(key, () => Promise.reject(failure))
        .then(
          () => 'resolved',
          (error: unknown) => error,
        );
      expect(outcome).toBe(failure);
      await expectRejection(store.get(key), NotFoundError);
      expect(await store.getOrCreate(key, () => 'second try')).toBe('second try');
      expect(await store.get(key), 'the value the next caller created').toBe('second try');
    });
  });

  section('withLock', () => {
    check('runs fn with an active lock for the key and resolves its result; a read-modify-write under that lock lands', async (h) => {
      const { store } = await h.store();
      const key = h.key();
      await store.set(key, 41);
      const result = await store.withLock(key, async (lock) => {
        expect(lock.key).toBe(key);
        expect(lock.active).toBe(true);
        const next = (await store.get<number>(key)) + 1;
        await store.set(key, next, { lock });
        return next;
      });
      expect(result).toBe(42);
      expect(await store.get(key), 'the value written under the lock').toBe(42);
    });

    check('releases the lock after fn resolves', async (h) => {
      const { store } = await h.store({ lockTimeoutMs: 20 * leaseMs });
      const key = h.key();
      const held = await store.withLock(key, (lock) => lock);
      expect(held.active).toBe(false);
      expect(await store.getLock(key).tryAcquire()).toBe(true);
    });

    check('releases the lock when fn throws, and rethrows the same error', async (h) => {
      const { store } = await h.store({ lockTimeoutMs: 20 * leaseMs });
      const key = h.key();
      const failure = new Error('conformance: fn failed');
      const outcome = await store
        .withLock(key, () => {
          throw failure;
        })
        .then(
          () => 'resolved',
          (error: unknown) => error,
        );
      expect(outcome).toBe(failure);
      expect(await store.getLock(key).tryAcquire()).toBe(true);
    });

    check('rejects with LockAcquireTimeoutError when the lock stays held past waitMs, without running fn', async (h) => {
      const { store } = await h.store({ lockTimeoutMs: 20 * leaseMs });
      const key = h.key();
      await store.getLock(key).acquire({ waitMs: 0 });
      let ran = false;
      await expectRejection(
        store.withLock(
          key,
          () => {
            ran = true;
          },
          { waitMs: 100 },
        ),
        LockAcquireTimeoutError,
      );
      expect(ran).toBe(false);
    });
  });

  section('close and the registry', () => {
    check('close is idempotent and later calls reject with NotConfiguredError', async (h) => {
      const { store } = await h.store();
      await store.close();
      await store.close();
      expect(store.isConfigured).toBe(false);
      await expectRejection(store.get(h.key()), NotConfiguredError);
      await expectRejection(store.set(h.key(), 1), NotConfiguredError);
    });

    check('close closes the backend', async (h) => {
      const { store, backend } = await h.store();
      await store.close();
      expect(
        await backend.get(h.storedKey(h.key())).then(
          () => 'resolved',
          () => 'rejected',
        ),
      ).toBe('rejected');
    });

    check('getKeyValueStore returns the same store until it is closed, then a new unconfigured one', async (h) => {
      const name = h.storeName('registry');
      const first = h.track(getKeyValueStore(name));
      expect(getKeyValueStore(name)).toBe(first);
      await first.configure(await h.backend());
      await first.set(h.key(), 1);
      await first.close();
      const second = h.track(getKeyValueStore(name));
      expect(second).not.toBe(first);
      expect(second.isConfigured).toBe(false);
    });

    check('`await using` closes the store at the end of the scope', async (h) => {
      const backend = await h.backend();
      let escaped: KeyValueStore | undefined;
      {
        await using store = new KeyValueStore(h.storeName());
        await store.configure(backend);
        await store.set(h.key(), 1);
        escaped = store;
      }
      expect(escaped.isConfigured).toBe(false);
      await expectRejection(escaped.get(h.key()), NotConfiguredError);
    });
  });
}
