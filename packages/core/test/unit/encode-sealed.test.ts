import { describe, expect, it } from 'vitest';
import { encodeSealed, encodeWith } from '../../src/codec.js';
import { jsonCodec, SerializationError, taggedCodec, v8Codec, type Codec } from '../../src/index.js';
import { carriedKey, open, seal } from '../../src/internal/envelope.js';

const expiresAt = 1_800_000_000_123;
const keys = [undefined, 'user:42', 'user:ü🔑', 'lone \ud800 surrogate', `tenant:${'x'.repeat(300)}`];
const expiries = [undefined, expiresAt];
const values: unknown[] = [
  { id: 42, name: 'Ada Lovelace', roles: ['admin', 'ops'], active: true, score: 97.5 },
  'plain string',
  'ünïcödé ✓ 🔑',
  0,
  null,
  [],
  // Long enough for the in-place path (a JSON text of 1024 characters or more), ASCII and not.
  { text: 'a'.repeat(2000) },
  { text: 'é'.repeat(1500) },
  // Not plain JSON data: the v8 path.
  new Map([[1, 2]]),
  undefined,
  -0,
];

/** The two-step path the store used before: encode, then seal. */
function twoStep(codec: Codec, value: unknown, expiry: number | undefined, key: string | undefined): Buffer {
  return Buffer.from(seal(encodeWith(codec, value), expiry, key));
}

describe('encodeSealed', () => {
  it('writes, in one step, the bytes encode-then-seal writes, for every envelope layout and both payload formats', () => {
    let cases = 0;
    for (const value of values) {
      for (const expiry of expiries) {
        for (const key of keys) {
          const bytes = Buffer.from(encodeSealed(taggedCodec, value, expiry, key));
          expect(bytes).toStrictEqual(twoStep(taggedCodec, value, expiry, key));
          cases += 1;
        }
      }
    }
    expect(cases).toBe(values.length * expiries.length * keys.length);
  });

  it('writes what the envelope reads back: the expiry, the carried key and the value', () => {
    for (const key of keys) {
      const bytes = encodeSealed(taggedCodec, { a: [1, 'two'] }, expiresAt, key);
      const opened = open(bytes);
      expect(opened.expiresAt).toBe(expiresAt);
      expect(carriedKey(bytes)).toBe(key === undefined ? undefined : Buffer.from(key, 'utf8').toString('utf8'));
      expect(taggedCodec.decode(opened.payload)).toStrictEqual({ a: [1, 'two'] });
    }
  });

  it('uses encode-then-seal for any other codec', () => {
    for (const codec of [v8Codec, jsonCodec]) {
      for (const key of keys) {
        expect(Buffer.from(encodeSealed(codec, { id: 1 }, expiresAt, key))).toStrictEqual(twoStep(codec, { id: 1 }, expiresAt, key));
      }
    }
  });

  it('throws the SerializationError encodeWith throws, with the same message and cause chain', () => {
    const failure = new Error('getter failed');
    const value = {
      get broken(): never {
        throw failure;
      },
    };
    const oneStep = captured(() => encodeSealed(taggedCodec, value, undefined, 'k'));
    const before = captured(() => encodeWith(taggedCodec, value));
    expect(oneStep).toBeInstanceOf(SerializationError);
    expect(oneStep.message).toBe(before.message);
    expect(oneStep.cause).toBeInstanceOf(SerializationError);
    expect((oneStep.cause as Error).message).toBe((before.cause as Error).message);
    expect((oneStep.cause as Error).cause).toBe(failure);
    expect(captured(() => encodeSealed(taggedCodec, () => 1, undefined, undefined))).toBeInstanceOf(SerializationError);
  });
});

function captured(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a throw');
}
