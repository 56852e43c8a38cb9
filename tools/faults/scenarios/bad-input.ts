/**
 * Bad input, property-based: generated malformed keys and values are each rejected with the
 * right typed error before any backend call (a recording proxy at the head of the chain sees
 * nothing), promptly, and leave other keys unchanged; distinct ill-formed (but valid) keys
 * never collide under the backend's key mangling.
 *
 * @module
 */
import { RecordingProxy } from '@latchkey/conformance';
import {
  InvalidKeyError,
  KeyValueStore,
  SerializationError,
  sha1KeyMangler,
  ValueTooLargeError,
  type Backend,
  type KeyMangler,
} from '@latchkey/core';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackend } from '../backends.js';
import { record } from '../stats.js';
import type { SuiteContext } from '../context.js';

/** How long a rejected call may take before it counts as a hang. */
const PROMPT_MS = 1000;

/** Largest value limit the generator goes beyond (Redis allows 512 MiB: not generated). */
const MAX_GENERATED_VALUE_BYTES = 32 * 1024 * 1024;

type ErrorClass = typeof InvalidKeyError | typeof SerializationError | typeof ValueTooLargeError;

interface Opened {
  readonly store: KeyValueStore;
  readonly recorder: RecordingProxy;
  readonly backend: Backend;
}

async function open(context: SuiteContext, name: string, keyMangler?: null): Promise<Opened> {
  const backend = await createBackend(context.target());
  const recorder = new RecordingProxy();
  const store = new KeyValueStore(name);
  await store.configure(backend, { proxies: [recorder], ...(keyMangler === null ? { keyMangler: null } : {}) });
  return { store, recorder, backend };
}

/** Runs `call` and returns what it threw, failing if it did not settle within {@link PROMPT_MS}. */
async function rejection(call: () => unknown): Promise<unknown> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<'hang'>((resolve) => {
    timer = setTimeout(() => resolve('hang'), PROMPT_MS);
  });
  try {
    const settled = await Promise.race([
      (async () => {
        await call();
        return 'resolved' as const;
      })().catch((error: unknown) => ({ error })),
      hang,
    ]);
    if (settled === 'hang') throw new Error(`the call did not settle within ${PROMPT_MS} ms`);
    if (settled === 'resolved') throw new Error('the call resolved instead of rejecting');
    return settled.error;
  } finally {
    clearTimeout(timer);
  }
}

const symbolArb = fc.string({ maxLength: 5 }).map((description) => Symbol(description));

/** Keys that are not non-empty strings. */
const notAKey: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(''),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.bigInt(),
  symbolArb,
  fc.date(),
  fc.object({ maxDepth: 1 }),
  fc.array(fc.string(), { maxLength: 3 }),
  fc.func(fc.string()),
);

/** Values the codec cannot encode. */
const unencodable: fc.Arbitrary<unknown> = fc.oneof(
  fc.func(fc.anything()),
  symbolArb,
  fc.record({ nested: fc.func(fc.integer()) }),
  fc.array(symbolArb, { minLength: 1, maxLength: 3 }),
  fc.constant(new WeakMap()),
  fc.constant(Promise.resolve(1)),
);

/** Strings a naive backend would store badly: lone surrogates, control characters, spaces, long runs. */
const illFormedKey: fc.Arbitrary<string> = fc.oneof(
  fc
    .array(
      fc.oneof(
        fc.integer({ min: 0xd800, max: 0xdfff }).map((unit) => String.fromCharCode(unit)),
        fc.constantFrom(' ', '\t', '\n', '\r\n', '\0', '\x7f', '\u00a0', '\u2028', '\ufeff'),
        fc.string({ unit: 'binary', maxLength: 4 }),
        fc.string({ unit: 'grapheme', maxLength: 4 }),
      ),
      { minLength: 1, maxLength: 8 },
    )
    .map((parts) => parts.join(''))
    .filter((key) => key.length > 0),
  fc.string({ unit: 'binary', minLength: 251, maxLength: 400 }),
);

const KEY_OPERATIONS: readonly [string, (store: KeyValueStore, key: unknown) => unknown][] = [
  ['get', (store, key) => store.get(key as string)],
  ['getMany', (store, key) => store.getMany(['fine', key as string])],
  ['set', (store, key) => store.set(key as string, 1)],
  [
    'setMany',
    (store, key) =>
      store.setMany([
        ['fine', 1],
        [key as string, 2],
      ]),
  ],
  ['delete', (store, key) => store.delete(key as string)],
  ['deleteMany', (store, key) => store.deleteMany(['fine', key as string])],
  ['getLock', (store, key) => store.getLock(key as string)],
  ['withLock', (store, key) => store.withLock(key as string, () => undefined)],
  ['getOrCreate', (store, key) => store.getOrCreate(key as string, () => 1)],
];

const VALUE_OPERATIONS: readonly [string, (store: KeyValueStore, value: unknown) => unknown][] = [
  ['set', (store, value) => store.set('target', value)],
  [
    'setMany',
    (store, value) =>
      store.setMany([
        ['fine', 1],
        ['target', value],
      ]),
  ],
  ['set with ttl', (store, value) => store.set('target', value, { ttlMs: 60_000 })],
];

/** Registers the bad-input scenarios. */
export function defineBadInputTests(context: SuiteContext): void {
  const { profile, kind } = context;
  const perProperty = Math.ceil(profile.badInputs / 2);

  describe('bad input', () => {
    let main: Opened | undefined;
    let raw: Opened | undefined;
    const sentinels: Record<string, unknown> = { 'sentinel:a': 'a', 'sentinel:b': 0, 'sentinel:c': null, fine: 'fine', target: 'target' };

    beforeAll(async () => {
      main = await open(context, `${kind}-bad-input`);
      if (main.backend.capabilities.maxKeyBytes !== undefined) raw = await open(context, `${kind}-bad-input-raw`, null);
    });

    afterAll(async () => {
      await main?.store.close();
      await raw?.store.close();
    });

    it(
      `rejects ≥ ${profile.badInputs} generated malformed keys and values with the right typed error, before any backend call, leaving other keys unchanged`,
      { timeout: 120_000 },
      async () => {
        const { store, backend } = main as Opened;
        await store.setMany(Object.entries(sentinels));
        const maxKeyBytes = backend.capabilities.maxKeyBytes;
        const maxValueBytes = backend.capabilities.maxValueBytes;
        const counts = { keys: 0, values: 0 };
        const expectRefused = async (opened: Opened, call: () => unknown, expected: ErrorClass): Promise<void> => {
          const before = opened.recorder.calls.length;
          const error = await rejection(call);
          expect(error).toBeInstanceOf(expected);
          expect(opened.recorder.calls.slice(before)).toEqual([]);
        };

        const tooLongKey =
          maxKeyBytes === undefined
            ? fc.constant(undefined)
            : fc
                .string({ unit: 'grapheme', minLength: 1, maxLength: 8 })
                .map((unit) => unit.repeat(Math.ceil((maxKeyBytes + 1) / Math.max(1, Buffer.byteLength(unit)))));
        await fc.assert(
          fc.asyncProperty(fc.oneof(notAKey, tooLongKey), fc.constantFrom(...KEY_OPERATIONS), async (key, [, operation]) => {
            counts.keys += 1;
            // Non-empty strings here are the over-long keys, refused by the store without a mangler.
            const opened = typeof key === 'string' && key !== '' ? raw : main;
            if (opened === undefined) throw new Error('no store for over-long keys');
            await expectRefused(opened, () => operation(opened.store, key), InvalidKeyError);
          }),
          { numRuns: perProperty },
        );

        // Oversized values only where the limit is small enough to allocate a few hundred times.
        const sizeChecked = maxValueBytes !== undefined && maxValueBytes <= MAX_GENERATED_VALUE_BYTES;
        const tooLarge = sizeChecked
          ? fc.oneof(
              { arbitrary: unencodable, weight: 4 },
              { arbitrary: fc.integer({ min: 1, max: 4096 }).map((extra) => new Uint8Array(maxValueBytes + extra)), weight: 1 },
            )
          : unencodable;
        await fc.assert(
          fc.asyncProperty(tooLarge, fc.constantFrom(...VALUE_OPERATIONS), async (value, [, operation]) => {
            counts.values += 1;
            await expectRefused(
              main as Opened,
              () => operation(store, value),
              value instanceof Uint8Array ? ValueTooLargeError : SerializationError,
            );
          }),
          { numRuns: perProperty },
        );

        expect(await store.getMany(Object.keys(sentinels))).toEqual(Object.values(sentinels));
        record(kind, 'bad-input', {
          malformedKeys: counts.keys,
          malformedValues: counts.values,
          keyLimitBytes: maxKeyBytes ?? null,
          valueLimitBytes: maxValueBytes ?? null,
          oversizedValuesGenerated: sizeChecked,
          backendCallsDuringBadInput: 0,
          othersUnchanged: true,
        });
        expect(counts.keys + counts.values).toBeGreaterThanOrEqual(profile.badInputs);
      },
    );

    it('never lets distinct ill-formed keys collide under the backend\u2019s key mangling', { timeout: 120_000 }, async () => {
      const { store, backend } = main as Opened;
      const mangle: KeyMangler = backend.keyMangler ?? sha1KeyMangler;
      let keys = 0;
      let run = 0;
      await fc.assert(
        fc.asyncProperty(fc.uniqueArray(illFormedKey, { minLength: 10, maxLength: 30 }), async (generated) => {
          run += 1;
          const batch = generated.map((key) => `c${run}/${key}`);
          keys += batch.length;
          expect(new Set(batch.map(mangle)).size).toBe(batch.length);
          await store.setMany(batch.map((key, index) => [key, index] as const));
          expect(await store.getMany(batch)).toEqual(batch.map((_, index) => index));
          await store.deleteMany(batch);
        }),
        { numRuns: Math.ceil(profile.badInputs / 20) },
      );
      record(kind, 'ill-formed-keys', { keys, collisions: 0, mangler: backend.keyMangler === undefined ? 'sha1KeyMangler' : 'backend' });
      expect(keys).toBeGreaterThanOrEqual(profile.badInputs / 2);
    });

    it('keeps apart ill-formed keys that spell each other\u2019s lone-surrogate escapes', async () => {
      const { store, backend } = main as Opened;
      const mangle: KeyMangler = backend.keyMangler ?? sha1KeyMangler;
      // Both keys are ill-formed; escaping only the lone surrogate as "&#55296;" would make them equal.
      const [first, second] = ['\ud800&#55296;', '&#55296;\ud800'] as const;
      expect(mangle(first)).not.toBe(mangle(second));
      await store.set(first, 'first');
      await store.set(second, 'second');
      expect(await store.getMany([first, second])).toEqual(['first', 'second']);
      await store.deleteMany([first, second]);
    });
  });
}
