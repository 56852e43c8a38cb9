import { InvalidKeyError, KeyValueStore, SerializationError, ValidationError, ValueTooLargeError, type Codec } from '@latchkey/core';
import { expect } from 'vitest';
import { byteCodec, MAX_WRITTEN_VALUE_BYTES } from '../byte-codec.js';
import { bytes, expectBytes, patterned } from '../bytes.js';
import type { ConformanceEnvironment } from '../environment.js';
import { expectRejection } from '../expect-error.js';
import type { Harness } from '../harness.js';
import { RecordingProxy } from '../proxies.js';
import { checksFor } from '../register.js';

/** Keys that are not non-empty strings. */
const BAD_KEYS: readonly (readonly [string, unknown])[] = [
  ["''", ''],
  ['123', 123],
  ['null', null],
  ['undefined', undefined],
  ['{}', {}],
  ['a symbol', Symbol('key')],
];

type KeyedCall = (store: KeyValueStore, key: string) => unknown;

/** Store calls that take a key, with the key in each position it can take. */
const KEYED_CALLS: readonly (readonly [string, KeyedCall])[] = [
  ['get', (store, key) => store.get(key)],
  ['getMany', (store, key) => store.getMany(['valid', key])],
  ['set', (store, key) => store.set(key, 1)],
  [
    'setMany',
    (store, key) =>
      store.setMany([
        ['valid', 1],
        [key, 2],
      ]),
  ],
  ['delete', (store, key) => store.delete(key)],
  ['deleteMany', (store, key) => store.deleteMany(['valid', key])],
  ['getLock', (store, key) => store.getLock(key)],
  ['withLock', (store, key) => store.withLock(key, () => undefined)],
  ['getOrCreate', (store, key) => store.getOrCreate(key, () => 1)],
];

/** Bad input: rejected with typed errors, before any I/O. */
export function registerBadInputChecks(env: ConformanceEnvironment): void {
  const { check, checkUnless, section } = checksFor(env);
  const { maxKeyBytes, maxValueBytes } = env.capabilities;

  /** A store whose every backend call the returned recorder sees. */
  const recorded = async (
    h: Harness,
    options: { keyMangler?: null; codec?: Codec } = {},
  ): Promise<{ store: KeyValueStore; recorder: RecordingProxy }> => {
    const recorder = new RecordingProxy();
    const { store } = await h.store({ proxies: [recorder], ...options });
    return { store, recorder };
  };

  section('invalid keys', () => {
    for (const [name, call] of KEYED_CALLS) {
      check(`${name} rejects empty and non-string keys with InvalidKeyError before any I/O`, async (h) => {
        const { store, recorder } = await recorded(h);
        for (const [label, key] of BAD_KEYS) {
          const error = await expectRejection(() => call(store, key as string), InvalidKeyError);
          expect(error.code, `key ${label}`).toBe('INVALID_KEY');
        }
        expect(recorder.methods).toStrictEqual([]);
      });
    }

    checkUnless(
      maxKeyBytes === undefined ? 'the backend declares no maxKeyBytes (a 1024-byte key is checked in data)' : undefined,
      `a stored key longer than maxKeyBytes${maxKeyBytes === undefined ? '' : ` (${maxKeyBytes})`} rejects with InvalidKeyError before any I/O`,
      async (h) => {
        const { store, recorder } = await recorded(h, { keyMangler: null });
        const key = 'k'.repeat((maxKeyBytes ?? 0) + 1);
        await expectRejection(store.set(key, 1), InvalidKeyError);
        await expectRejection(store.get(key), InvalidKeyError);
        expect(recorder.methods).toStrictEqual([]);
      },
    );
  });

  section('value size', () => {
    const declaredLimit = maxValueBytes === undefined ? '' : ` (${maxValueBytes})`;
    checkUnless(
      maxValueBytes === undefined ? 'the backend declares no maxValueBytes' : undefined,
      `a value encoded larger than maxValueBytes${declaredLimit} rejects with ValueTooLargeError before any I/O`,
      async (h) => {
        const limit = maxValueBytes ?? 0;
        const { store, recorder } = await recorded(h, { codec: byteCodec });
        // The store encodes before it measures, so it must see limit + 1 bytes: one zero-filled
        // payload (no string, no codec copy); the envelope the store builds around it is the
        // only other allocation.
        const tooLarge = new Uint8Array(limit + 1);
        const error = await expectRejection(store.set(h.key(), tooLarge), ValueTooLargeError);
        expect(error.limit).toBe(maxValueBytes);
        expect(error.size).toBeGreaterThan(limit);
        // setMany refuses through the same encoding; above what the suite writes it is left out,
        // sparing a second buffer of the limit's size (one takes about 10 s at 512 MiB here).
        if (limit <= MAX_WRITTEN_VALUE_BYTES) {
          await expectRejection(store.setMany({ [h.key('a')]: bytes(1), [h.key('b')]: tooLarge }), ValueTooLargeError);
        }
        expect(recorder.methods).toStrictEqual([]);
      },
    );

    const target = Math.min(maxValueBytes ?? 0, MAX_WRITTEN_VALUE_BYTES);
    checkUnless(
      maxValueBytes === undefined ? 'the backend declares no maxValueBytes' : undefined,
      maxValueBytes === undefined || maxValueBytes <= MAX_WRITTEN_VALUE_BYTES
        ? `a value encoded to exactly maxValueBytes${declaredLimit} is stored`
        : `a value encoded to ${target} bytes is stored (the suite writes at most 16 MiB; maxValueBytes is ${maxValueBytes})`,
      async (h) => {
        const { store, recorder } = await recorded(h, { codec: byteCodec });
        const key = h.key();
        // What the envelope adds, from what reached the backend for an empty payload.
        await store.set(key, new Uint8Array(0));
        const envelope = recorder.calls[0]?.values[0]?.byteLength ?? 0;
        recorder.calls.length = 0;
        const value = patterned(Math.max(0, target - envelope));
        await store.set(key, value);
        expect(recorder.calls[0]?.values[0]?.byteLength, 'the encoded size of the value written').toBe(target);
        expectBytes(await store.get(key), value);
      },
    );

    checkUnless(
      maxValueBytes === undefined ? undefined : 'the backend declares a maxValueBytes (checked above)',
      'with no maxValueBytes declared, a 2 MiB value is stored and read back',
      async (h) => {
        const { store } = await h.store();
        const key = h.key();
        const value = 'v'.repeat(2 * 1024 * 1024);
        await store.set(key, value);
        expect(await store.get(key)).toBe(value);
      },
    );
  });

  section('values that cannot be encoded', () => {
    const unencodable: readonly (readonly [string, unknown])[] = [
      ['a function', () => 1],
      ['a symbol', Symbol('value')],
      ['an object holding a function', { nested: { fn: () => 1 } }],
    ];
    for (const [label, value] of unencodable) {
      check(`set of ${label} rejects with SerializationError before any I/O`, async (h) => {
        const { store, recorder } = await recorded(h);
        await expectRejection(store.set(h.key(), value), SerializationError);
        expect(recorder.methods).toStrictEqual([]);
      });
    }

    check('setMany with one value that cannot be encoded writes nothing', async (h) => {
      const { store, recorder } = await recorded(h);
      const [a, b] = [h.key('a'), h.key('b')];
      await expectRejection(store.setMany({ [a]: 1, [b]: () => 2 }), SerializationError);
      expect(recorder.methods).toStrictEqual([]);
    });
  });

  section('corrupt stored bytes', () => {
    const corrupt: readonly (readonly [string, Uint8Array])[] = [
      ['random bytes', bytes(0xde, 0xad, 0xbe, 0xef, 0x00, 0x13, 0x37)],
      ['zero bytes', new Uint8Array(0)],
      ['a valid header with a garbage payload', bytes(0x6c, 0x01, 0x00, 0xff, 0xff, 0xff, 0x0f, 0x99)],
      ['a truncated expiry', bytes(0x6c, 0x01, 0x01, 0x41)],
    ];
    for (const [label, garbage] of corrupt) {
      check(`get of ${label} written directly to the backend rejects with SerializationError`, async (h) => {
        const { store, backend } = await h.store();
        const key = h.key();
        await backend.set(h.storedKey(key), garbage);
        await expectRejection(store.get(key), SerializationError);
      });
    }

    check('getMany with one corrupt value rejects with SerializationError', async (h) => {
      const { store, backend } = await h.store();
      const [good, bad] = [h.key('good'), h.key('bad')];
      await store.set(good, 'fine');
      await backend.set(h.storedKey(bad), bytes(1, 2, 3));
      await expectRejection(store.getMany([good, bad]), SerializationError);
    });

    check('getOrCreate over a corrupt value rejects with SerializationError and does not overwrite it', async (h) => {
      const { store, backend } = await h.store();
      const key = h.key();
      await backend.set(h.storedKey(key), bytes(9, 9, 9));
      let runs = 0;
      await expectRejection(
        store.getOrCreate(key, () => ++runs),
        SerializationError,
      );
      expect(runs).toBe(0);
      expect([...((await backend.get(h.storedKey(key))) ?? [])]).toStrictEqual([9, 9, 9]);
    });
  });

  section('invalid options', () => {
    check('set with ttlMs 0, negative or NaN rejects with ValidationError before any I/O', async (h) => {
      const { store, recorder } = await recorded(h);
      for (const ttlMs of [0, -1, NaN]) await expectRejection(store.set(h.key(), 1, { ttlMs }), ValidationError);
      expect(recorder.methods).toStrictEqual([]);
    });

    check('setMany with a negative ttlMs rejects with ValidationError before any I/O', async (h) => {
      const { store, recorder } = await recorded(h);
      await expectRejection(store.setMany({ [h.key()]: 1 }, { ttlMs: -5 }), ValidationError);
      expect(recorder.methods).toStrictEqual([]);
    });

    check('acquire with a negative waitMs rejects with ValidationError before any I/O', async (h) => {
      const { store, recorder } = await recorded(h);
      await expectRejection(store.getLock(h.key()).acquire({ waitMs: -1 }), ValidationError);
      expect(recorder.methods).toStrictEqual([]);
    });

    check('getLock with a lockTimeoutMs inside the safety window throws ValidationError', async (h) => {
      const { store } = await h.store({ lockSafetyWindowMs: 100 });
      await expectRejection(() => store.getLock(h.key(), { lockTimeoutMs: 50 }), ValidationError);
    });

    check('getOrCreate without a creator function and withLock without fn reject with ValidationError before any I/O', async (h) => {
      const { store, recorder } = await recorded(h);
      await expectRejection(store.getOrCreate(h.key(), 'nope' as never), ValidationError);
      await expectRejection(store.withLock(h.key(), 'nope' as never), ValidationError);
      expect(recorder.methods).toStrictEqual([]);
    });

    check('configure with an invalid option rejects with ValidationError without touching the backend', async (h) => {
      const backend = await h.backend();
      const recorder = new RecordingProxy();
      const store = h.track(new KeyValueStore(h.storeName()));
      await expectRejection(store.configure(backend, { proxies: [recorder], ttlMs: -1 }), ValidationError);
      expect(recorder.methods).toStrictEqual([]);
      expect(store.isConfigured).toBe(false);
    });
  });
}
