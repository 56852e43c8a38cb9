import { InvalidKeyError, ValidationError, ValueTooLargeError, type Backend, type Lease, type StoredValue } from '@latchkey/core';
import { expect } from 'vitest';
import { bytes, expectBytes } from '../bytes.js';
import type { ConformanceEnvironment } from '../environment.js';
import { expectRejection as expectTypedRejection, type ErrorClass } from '../expect-error.js';
import type { Harness } from '../harness.js';
import { checksFor } from '../register.js';

/**
 * Asserts `work` rejects with a `type` whose message says something: a bare error class tells
 * the caller nothing about which argument was wrong.
 */
async function expectRejection<E extends Error>(work: () => unknown, type: ErrorClass<E>, what: string): Promise<E> {
  const error = await expectTypedRejection(work, type, what);
  expect(error.message.trim(), `${what}: the ${type.name} has an empty message`).not.toBe('');
  return error;
}

/**
 * Asserts a rejection's message describes the value given, not only which option it was: a
 * number as written, `null`, "array" for an array, an object's class name ("object" when it
 * has none). Other values (strings, `undefined`) are not checked: their type name is enough.
 */
function expectDescribes(message: string, given: unknown, what: string): void {
  const described =
    typeof given === 'number'
      ? String(given)
      : given === null
        ? 'null'
        : Array.isArray(given)
          ? 'array'
          : typeof given === 'object'
            ? ((Object.getPrototypeOf(given) as { constructor?: { name?: string } } | null)?.constructor?.name ?? 'object')
            : undefined;
  if (described !== undefined)
    expect(message, `${what}: the message does not describe the value given as ${described}`).toContain(described);
}

/** Stored keys that are not non-empty strings. */
const BAD_KEYS: readonly (readonly [string, unknown])[] = [
  ["''", ''],
  ['123', 123],
  ['null', null],
  ['undefined', undefined],
  ['{}', {}],
  ['a symbol', Symbol('key')],
];

/** Values that are not `Uint8Array`s (backends store encoded bytes only). */
const NOT_BYTES: readonly (readonly [string, unknown])[] = [
  ['a string', 'abc'],
  ['an array of numbers', [1, 2, 3]],
  ['an ArrayBuffer', new ArrayBuffer(3)],
  ['null', null],
  ['undefined', undefined],
];

/** Values that are not arrays, for the batch calls. */
const NOT_ARRAYS: readonly (readonly [string, unknown])[] = [
  ['a string', 'abc'],
  ['null', null],
  ['{}', {}],
  ['42', 42],
];

/** Durations no lease or wait can have. */
const BAD_DURATIONS: readonly (readonly [string, unknown])[] = [
  ['-1', -1],
  ['NaN', NaN],
  ["'100'", '100'],
  ['undefined', undefined],
];

/** Above this `maxValueBytes`, a value of the limit is too large to write in a data check. */
const SMALL_VALUE_LIMIT = 1024 * 1024;

type KeyedCall = (backend: Backend, key: string, valid: string) => Promise<unknown>;

/**
 * Backend calls that take a stored key, with the bad key in each position it can take. The
 * valid key beside it in batches is stored, so a batch that wrote or deleted before checking shows.
 */
const KEYED_CALLS: readonly (readonly [string, KeyedCall])[] = [
  ['get', (backend, key) => backend.get(key)],
  ['getMany', (backend, key, valid) => backend.getMany([valid, key])],
  ['set', (backend, key) => backend.set(key, bytes(1))],
  [
    'setMany',
    (backend, key, valid) =>
      backend.setMany([
        [valid, bytes(1)],
        [key, bytes(2)],
      ]),
  ],
  ['delete', (backend, key) => backend.delete(key)],
  ['deleteMany', (backend, key, valid) => backend.deleteMany([valid, key])],
];

/**
 * Bad input given to the backend itself. The store rejects bad input before it reaches the
 * backend (the `bad-input` group), so without these checks a backend's own guards never run in
 * the suite; yet a backend is also called by proxies, tools and other cores. Each call must
 * reject with the typed error, and leave nothing written, freed or extended.
 */
export function registerDirectBadInputChecks(env: ConformanceEnvironment): void {
  const { check, checkUnless, section } = checksFor(env);
  const noLocks = env.ownLocks ? undefined : 'the backend has no locks of its own';
  const { maxKeyBytes, maxValueBytes } = env.capabilities;

  /** A backend holding `bytes(9)` under `valid` and `keep`, so writes and deletes that slip through show. */
  const seeded = async (h: Harness): Promise<{ backend: Backend; valid: string; keep: string }> => {
    const backend = await h.backend();
    const [valid, keep] = [h.key('valid'), h.key('keep')];
    await backend.setMany([
      [valid, bytes(9)],
      [keep, bytes(9)],
    ]);
    return { backend, valid, keep };
  };
  const expectUntouched = async (backend: Backend, keys: readonly string[]): Promise<void> => {
    for (const key of keys) expectBytes(await backend.get(key), bytes(9), `the value of ${key} after the rejected calls`);
  };

  section('bad input, called directly', () => {
    for (const [name, call] of KEYED_CALLS) {
      check(`${name} rejects empty and non-string keys with InvalidKeyError and changes nothing`, async (h) => {
        const { backend, valid, keep } = await seeded(h);
        for (const [label, key] of BAD_KEYS) {
          const error = await expectRejection(() => call(backend, key as string, valid), InvalidKeyError, `${name} with key ${label}`);
          expect(error.code, `${name} with key ${label}`).toBe('INVALID_KEY');
        }
        await expectUntouched(backend, [valid, keep]);
      });
    }

    check('getMany and deleteMany reject a keys argument that is not an array with ValidationError', async (h) => {
      const { backend, valid, keep } = await seeded(h);
      for (const [label, keys] of NOT_ARRAYS) {
        await expectRejection(() => backend.getMany(keys as string[]), ValidationError, `getMany(${label})`);
        await expectRejection(() => backend.deleteMany(keys as string[]), ValidationError, `deleteMany(${label})`);
      }
      await expectUntouched(backend, [valid, keep]);
    });

    check('set rejects a value that is not a Uint8Array with ValidationError and writes nothing', async (h) => {
      const { backend, keep } = await seeded(h);
      for (const [label, value] of NOT_BYTES) {
        await expectRejection(() => backend.set(keep, value as StoredValue), ValidationError, `set of ${label}`);
        await expectRejection(() => backend.set(h.key('fresh'), value as StoredValue), ValidationError, `set of ${label}`);
      }
      await expectUntouched(backend, [keep]);
      expect(await backend.get(h.key('fresh')), 'a key only ever set with bad values').toBeUndefined();
    });

    check('setMany with one value that is not a Uint8Array rejects with ValidationError and writes no entry', async (h) => {
      const { backend, keep } = await seeded(h);
      for (const [label, value] of NOT_BYTES) {
        const entries = [
          [keep, bytes(1)],
          [h.key('fresh'), value],
        ] as unknown as [string, StoredValue][];
        await expectRejection(() => backend.setMany(entries), ValidationError, `setMany with ${label} as a value`);
      }
      await expectUntouched(backend, [keep]);
      expect(await backend.get(h.key('fresh')), 'a key only ever written in rejected batches').toBeUndefined();
    });

    check('setMany rejects entries that are not an array of [key, value] pairs with ValidationError and writes nothing', async (h) => {
      const { backend, keep } = await seeded(h);
      for (const [label, entries] of NOT_ARRAYS) {
        await expectRejection(() => backend.setMany(entries as [string, StoredValue][]), ValidationError, `setMany(${label})`);
      }
      for (const [label, entry] of NOT_ARRAYS) {
        const entries = [[keep, bytes(1)], entry] as unknown as [string, StoredValue][];
        await expectRejection(() => backend.setMany(entries), ValidationError, `setMany with ${label} as an entry`);
      }
      await expectUntouched(backend, [keep]);
    });

    checkUnless(noLocks, 'acquireLock rejects empty and non-string keys with InvalidKeyError', async (h) => {
      const backend = await h.lockingBackend();
      for (const [label, key] of BAD_KEYS) {
        await expectRejection(
          () => backend.acquireLock(key as string, { leaseMs: 1_000, waitMs: 0 }),
          InvalidKeyError,
          `acquireLock(${label})`,
        );
      }
    });

    checkUnless(noLocks, 'acquireLock rejects bad options with a ValidationError naming the option, and takes no lease', async (h) => {
      const backend = await h.lockingBackend();
      const key = h.key();
      // [label, options, the option named, the value given]
      const cases: [string, unknown, string, unknown][] = [
        ['no options', undefined, 'options', undefined],
        ['null options', null, 'options', null],
        ['leaseMs Infinity', { leaseMs: Infinity, waitMs: 0 }, 'leaseMs', Infinity],
        ['waitMs -Infinity', { leaseMs: 1_000, waitMs: -Infinity }, 'waitMs', -Infinity],
        ['a signal that is not an AbortSignal', { leaseMs: 1_000, waitMs: 0, signal: {} }, 'signal', {}],
        ['an array as signal', { leaseMs: 1_000, waitMs: 0, signal: [] }, 'signal', []],
        ['a null-prototype object as signal', { leaseMs: 1_000, waitMs: 0, signal: Object.create(null) }, 'signal', Object.create(null)],
      ];
      for (const [label, leaseMs] of BAD_DURATIONS) cases.push([`leaseMs ${label}`, { leaseMs, waitMs: 0 }, 'leaseMs', leaseMs]);
      for (const [label, waitMs] of BAD_DURATIONS) cases.push([`waitMs ${label}`, { leaseMs: 1_000, waitMs }, 'waitMs', waitMs]);
      for (const [label, options, named, given] of cases) {
        const error = await expectRejection(() => backend.acquireLock(key, options as never), ValidationError, `acquireLock with ${label}`);
        expect(error.message, `acquireLock with ${label}`).toContain(named);
        expectDescribes(error.message, given, `acquireLock with ${label}`);
      }
      // waitMs may be Infinity (wait until won): on the free key that is the lease at once.
      const lease = await backend.acquireLock(key, { leaseMs: 1_000, waitMs: Infinity });
      expect(lease, 'a rejected acquireLock left a lease behind, or waitMs Infinity was refused').toBeDefined();
      if (lease !== undefined) expect(await backend.releaseLock(lease)).toBe(true);
    });

    checkUnless(
      noLocks,
      'a lease with an empty key is malformed: releaseLock, extendLock, set and delete reject it with ValidationError',
      async (h) => {
        const backend = await h.lockingBackend();
        const key = h.key();
        await backend.set(key, bytes(1));
        const lease = await backend.acquireLock(key, { leaseMs: 60_000, waitMs: 0 });
        if (lease === undefined) expect.fail('the free key could not be locked');
        const bad = { ...lease, key: '' } as Lease;
        await expectRejection(() => backend.releaseLock(bad), ValidationError, 'releaseLock');
        await expectRejection(() => backend.extendLock(bad, 1_000), ValidationError, 'extendLock');
        await expectRejection(() => backend.set(key, bytes(2), { lease: bad }), ValidationError, 'set');
        await expectRejection(() => backend.delete(key, { lease: bad }), ValidationError, 'delete');
        expectBytes(await backend.get(key), bytes(1), 'the value after the rejected calls');
        expect(await backend.releaseLock(lease), 'the lease after the rejected calls').toBe(true);
      },
    );

    checkUnless(
      maxKeyBytes === undefined ? 'the backend declares no maxKeyBytes' : undefined,
      `set of a stored key longer than maxKeyBytes${maxKeyBytes === undefined ? '' : ` (${maxKeyBytes})`} rejects with InvalidKeyError; one of exactly maxKeyBytes is stored`,
      async (h) => {
        const limit = maxKeyBytes ?? 0;
        const backend = await h.backend();
        // Unique per check, padded to the byte length wanted; 'é' is two UTF-8 bytes.
        const keyOf = (bytesLong: number, pad = 'k'): string => {
          const base = h.key('');
          return base + pad.repeat(Math.floor((bytesLong - Buffer.byteLength(base)) / Buffer.byteLength(pad)));
        };
        for (const pad of ['k', 'é']) {
          const long = keyOf(limit + 2, pad);
          expect(Buffer.byteLength(long)).toBeGreaterThan(limit);
          const error = await expectRejection(
            () => backend.set(long, bytes(1)),
            InvalidKeyError,
            `set of a ${Buffer.byteLength(long)}-byte key`,
          );
          expect(error.message, `set of a ${Buffer.byteLength(long)}-byte key: the message names the limit`).toContain(String(limit));
        }
        const exact = keyOf(limit);
        expect(Buffer.byteLength(exact)).toBe(limit);
        expect(await backend.set(exact, bytes(1))).toBe('written');
        expectBytes(await backend.get(exact), bytes(1), `the value under a key of exactly ${limit} bytes`);
      },
    );

    checkUnless(
      maxValueBytes === undefined || maxValueBytes > SMALL_VALUE_LIMIT
        ? `the backend declares ${maxValueBytes === undefined ? 'no maxValueBytes' : 'a maxValueBytes above 1 MiB (the store checks it through its codec)'}`
        : undefined,
      `set of a value larger than maxValueBytes${maxValueBytes === undefined ? '' : ` (${maxValueBytes})`} rejects with ValueTooLargeError; one of exactly maxValueBytes is stored`,
      async (h) => {
        const limit = maxValueBytes ?? 0;
        const backend = await h.backend();
        const key = h.key();
        const error = await expectRejection(
          () => backend.set(key, new Uint8Array(limit + 1)),
          ValueTooLargeError,
          `set of ${limit + 1} bytes`,
        );
        expect(error.limit).toBe(limit);
        expect(await backend.set(key, new Uint8Array(limit))).toBe('written');
        expect((await backend.get(key))?.byteLength).toBe(limit);
      },
    );

    checkUnless(noLocks, 'extendLock rejects a bad leaseMs with a ValidationError naming leaseMs, and the lease still holds', async (h) => {
      const backend = await h.lockingBackend();
      const lease: Lease | undefined = await backend.acquireLock(h.key(), { leaseMs: 60_000, waitMs: 0 });
      if (lease === undefined) expect.fail('the free key could not be locked');
      for (const [label, leaseMs] of [...BAD_DURATIONS, ['Infinity', Infinity] as const]) {
        const error = await expectRejection(
          () => backend.extendLock(lease, leaseMs as number),
          ValidationError,
          `extendLock(lease, ${label})`,
        );
        expect(error.message, `extendLock(lease, ${label})`).toContain('leaseMs');
        expectDescribes(error.message, leaseMs, `extendLock(lease, ${label})`);
      }
      expect(await backend.releaseLock(lease), 'the lease after the rejected extends').toBe(true);
    });
  });
}
