import { deserialize, serialize } from 'node:v8';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeWith, encodeWith, SerializationError, taggedCodec, v8Codec } from '../../src/index.js';

const JSON_TAG = 0x4a;
const V8_TAG = 0xff;

const encode = (value: unknown): Uint8Array => encodeWith(taggedCodec, value);
const decode = (bytes: Uint8Array): unknown => decodeWith(taggedCodec, bytes);
const roundTrip = (value: unknown): unknown => decode(encode(value));
const hex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, 'hex'));

function decodeError(bytes: Uint8Array): unknown {
  try {
    decode(bytes);
  } catch (error) {
    return error;
  }
  return undefined;
}

class Account {
  constructor(readonly id: string) {}
}

/** Every kind of value v8 keeps, with the format the tagged codec must pick for it. */
const KINDS: readonly (readonly [string, () => unknown, 'json' | 'v8'])[] = [
  ['null', () => null, 'json'],
  ['true and false', () => [true, false], 'json'],
  ['a string with non-ASCII and a lone surrogate', () => 'café ☕ 𝄞 日本 \u0000 \ud800', 'json'],
  ['a string holding U+FFFD', () => 'bad \uFFFD byte', 'json'],
  ['the empty string', () => '', 'json'],
  ['2^53 − 1', () => Number.MAX_SAFE_INTEGER, 'json'],
  ['floats and exponents', () => [0.1, -3.25, 1e21, 5e-324, Number.MAX_VALUE], 'json'],
  ['0', () => 0, 'json'],
  ['nested plain objects and arrays', () => ({ a: { b: { c: [1, { d: 'e' }, []] } }, f: {} }), 'json'],
  ['an own "__proto__" key', () => JSON.parse('{"__proto__":{"x":1},"y":2}') as unknown, 'json'],
  ['undefined', () => undefined, 'v8'],
  ['-0', () => -0, 'v8'],
  ['-0 deep inside', () => ({ a: [1, { b: -0 }] }), 'v8'],
  ['NaN, Infinity, -Infinity', () => [Number.NaN, Infinity, -Infinity], 'v8'],
  ['an array with undefined', () => [1, undefined, 3], 'v8'],
  ['an object with an undefined property', () => ({ a: 1, b: undefined }), 'v8'],
  ['a sparse array', () => [1, , 3], 'v8'], // eslint-disable-line no-sparse-arrays
  ['a Date', () => new Date(Date.UTC(2025, 5, 1, 12, 30, 15, 123)), 'v8'],
  ['a Date inside a plain object', () => ({ at: new Date(0) }), 'v8'],
  ['a Uint8Array', () => Uint8Array.from([0, 1, 254, 255]), 'v8'],
  ['a Buffer', () => Buffer.from('bytes'), 'v8'],
  ['a BigInt', () => 12_345_678_901_234_567_890n, 'v8'],
  [
    'a Map with non-string keys',
    () =>
      new Map<unknown, unknown>([
        [1, 'one'],
        [true, { c: 2 }],
      ]),
    'v8',
  ],
  ['a Set', () => new Set([1, 'two', 3]), 'v8'],
  ['a RegExp', () => /^a+b?$/giu, 'v8'],
  ['a RangeError', () => new RangeError('boom'), 'v8'],
  ['a boxed string', () => new String('boxed'), 'v8'],
];

describe('taggedCodec round trips', () => {
  it.each(KINDS)('round-trips %s exactly', (_label, make) => {
    const value = make();
    expect(roundTrip(value)).toStrictEqual(value);
  });

  it('keeps the order of object keys and Map entries', () => {
    const object = { z: 1, a: 2, 10: 3, m: 4 };
    expect(Object.keys(roundTrip(object) as object)).toStrictEqual(Object.keys(object));
    const map = new Map([
      ['z', 1],
      ['a', 2],
    ]);
    expect([...(roundTrip(map) as Map<string, number>)]).toStrictEqual([...map]);
  });

  it('keeps a cycle as a cycle', () => {
    const node: Record<string, unknown> = { name: 'self' };
    node['self'] = node;
    const back = roundTrip(node) as Record<string, unknown>;
    expect(back['name']).toBe('self');
    expect(back['self']).toBe(back);
  });

  it('keeps a cycle through a parent link in a wide tree', () => {
    const root: { children: unknown[] } = { children: [] };
    for (let i = 0; i < 20; i++) root.children.push({ parent: root, children: [{ parent: root }, { parent: root }] });
    const back = roundTrip(root) as { children: { parent: unknown }[] };
    expect(back.children).toHaveLength(20);
    expect(back.children[7]?.parent).toBe(back);
  });

  it.each([
    ['class instances', () => new Account('a-1')],
    ['null-prototype objects', () => Object.assign(Object.create(null) as object, { id: 'a-1' })],
  ])('turns %s into plain objects, as v8 does', (_label, make) => {
    const value = make();
    expect(encode(value)[0]).toBe(V8_TAG);
    const back = roundTrip(value);
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(back).toStrictEqual({ id: 'a-1' });
    expect(deserialize(serialize(value))).toStrictEqual(back);
  });

  it('matches v8 on arbitrary values (Map, Set, Date, BigInt, typed arrays, sparse arrays, -0 …)', () => {
    const anything = fc.anything({
      withBigInt: true,
      withBoxedValues: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withNullPrototype: true,
      withSparseArray: true,
      withTypedArray: true,
    });
    fc.assert(
      fc.property(anything, (value) => {
        expect(roundTrip(value)).toStrictEqual(deserialize(serialize(value)));
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips arbitrary JSON values exactly, on the JSON path unless they hold -0', () => {
    const hasNegativeZero = (value: unknown): boolean =>
      Object.is(value, -0) || (typeof value === 'object' && value !== null && Object.values(value).some(hasNegativeZero));
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const bytes = encode(value);
        expect(bytes[0]).toBe(hasNegativeZero(value) ? V8_TAG : JSON_TAG);
        expect(decode(bytes)).toStrictEqual(value);
      }),
      { numRuns: 300 },
    );
  });

  it('reads payloads from a Uint8Array view at an offset, as the store hands them over', () => {
    for (const value of [{ a: 'é', b: [1, 2] }, new Map([[1, 2]])]) {
      const bytes = encode(value);
      const backing = new Uint8Array(bytes.byteLength + 5);
      backing.set(bytes, 3);
      expect(decode(backing.subarray(3, 3 + bytes.byteLength))).toStrictEqual(value);
    }
  });
});

describe('taggedCodec format choice (the first byte)', () => {
  it.each(KINDS)('writes %s in the expected format', (_label, make, format) => {
    expect(encode(make())[0]).toBe(format === 'json' ? JSON_TAG : V8_TAG);
  });

  it('writes JSON-shaped values as the tag followed by exactly JSON.stringify in UTF-8', () => {
    const value = { id: 'tok-1', user: 'ünïcode', roles: ['member'], n: 3, ok: true, none: null };
    const bytes = encode(value);
    expect(bytes[0]).toBe(JSON_TAG);
    expect(Buffer.from(bytes.subarray(1)).toString('utf8')).toBe(JSON.stringify(value));
  });

  it('writes long texts (written in place, not concatenated) the same way', () => {
    const value = { blob: 'x'.repeat(5000), more: 'é'.repeat(700) };
    const bytes = encode(value);
    expect(bytes[0]).toBe(JSON_TAG);
    expect(Buffer.from(bytes.subarray(1)).toString('utf8')).toBe(JSON.stringify(value));
    expect(decode(bytes)).toStrictEqual(value);
  });

  it.each([
    ['an own non-enumerable toJSON', () => Object.defineProperty({ a: 1 }, 'toJSON', { value: () => 'replaced' })],
    ['an object inheriting from Array.prototype that is no array', () => Object.create(Array.prototype) as object],
    [
      'a cycle',
      () => {
        const node: Record<string, unknown> = {};
        node['self'] = node;
        return node;
      },
    ],
  ])('takes the v8 path for %s', (_label, make) => {
    expect(encode(make())[0]).toBe(V8_TAG);
  });

  it('takes the v8 path for a value whose prototype carries a toJSON', () => {
    const prototypes = Object.prototype as { toJSON?: unknown };
    prototypes.toJSON = () => 'polluted';
    try {
      expect(encode({ a: 1 })[0]).toBe(V8_TAG);
      expect(encode([1])[0]).toBe(V8_TAG);
    } finally {
      delete prototypes.toJSON;
    }
    expect(encode({ a: 1 })[0]).toBe(JSON_TAG);
  });

  it('uses JSON up to 64 levels of nesting and v8 beyond', () => {
    const nested = (levels: number): unknown => {
      let value: unknown = 'leaf';
      for (let i = 0; i < levels; i++) value = i % 2 === 0 ? [value] : { v: value };
      return value;
    };
    expect(encode(nested(64))[0]).toBe(JSON_TAG);
    expect(encode(nested(65))[0]).toBe(V8_TAG);
    expect(roundTrip(nested(65))).toStrictEqual(nested(65));
  });

  it('uses JSON up to 2^20 entries and v8 beyond', () => {
    expect(encode(new Array<number>(2 ** 20).fill(0))[0]).toBe(JSON_TAG);
    expect(encode(new Array<number>(2 ** 20 + 1).fill(0))[0]).toBe(V8_TAG);
  });

  it('stops walking a value that shares sub-objects exponentially often, and v8 keeps the sharing', () => {
    // 2^50 paths through 51 objects: a walk without an entry budget would never end.
    let value: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 50; i++) value = { a: value, b: value };
    const bytes = encode(value);
    expect(bytes[0]).toBe(V8_TAG);
    const back = decode(bytes) as Record<string, Record<string, unknown>>;
    expect(back['a']).toBe(back['b']);
  });

  it('copies a sub-object shared by two parents on the JSON path (a documented difference from v8)', () => {
    const shared = { k: 1 };
    const back = roundTrip({ a: shared, b: shared }) as Record<string, unknown>;
    expect(back).toStrictEqual({ a: { k: 1 }, b: { k: 1 } });
    expect(back['a']).not.toBe(back['b']);
  });
});

describe('taggedCodec refusals', () => {
  it.each([
    ['a function', () => 1],
    ['a symbol', Symbol('s')],
    ['an object holding a function', { f() {} }],
    ['an object holding a symbol', { tag: Symbol('x') }],
    ['an array holding a function', [1, () => 2]],
    ['an object with a toJSON method', { a: 1, toJSON: () => 'replaced' }],
    ['a Map holding a function', new Map([['f', () => 1]])],
    ['a Set holding a symbol', new Set([Symbol('x')])],
  ])('refuses %s with SerializationError', (_label, value) => {
    expect(() => encodeWith(taggedCodec, value)).toThrow(SerializationError);
    expect(() => taggedCodec.encode(value)).toThrow(SerializationError);
  });

  it('names the codec and keeps the cause when it refuses', () => {
    let caught: unknown;
    try {
      encodeWith(taggedCodec, { run: () => 1 });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(SerializationError);
    expect((caught as Error).message).toMatch(/^The tagged codec cannot encode this value: /);
    expect((caught as Error).cause).toBeInstanceOf(Error);
  });
});

describe('taggedCodec reads what v8Codec wrote', () => {
  it('decodes v8 bytes written by Node 20 (fixed fixtures)', () => {
    // v8.serialize of { id, at: Date, n: -0, big: BigInt, tags: Set, m: Map, bytes: Uint8Array,
    // list: [1, undefined, 3], re: /a+/gi, e: RangeError } under Node 20.
    const rich = decode(
      hex(
        'ff0f6f220269642205746f6b2d31220261744400e008864f42794222016e4e000000000000008022036269675a10d20a1feb8ca954ab22047461677327' +
          '2201612c0122016d3b490222036f6e653a02220562797465735c01030102ff22046c697374410349025f490624000322027265522202612b03220165' +
          '72526d2204626f6f6d73221052616e67654572726f723a20626f6f6d2e7b0a',
      ),
    ) as Record<string, unknown>;
    expect(rich).toMatchObject({ id: 'tok-1', big: 12_345_678_901_234_567_890n, list: [1, undefined, 3] });
    expect(Object.is(rich['n'], -0)).toBe(true);
    expect(rich['at']).toStrictEqual(new Date(Date.UTC(2025, 0, 2, 3, 4, 5, 6)));
    expect(rich['tags']).toStrictEqual(new Set(['a']));
    expect(rich['m']).toStrictEqual(new Map([[1, 'one']]));
    expect(rich['bytes']).toStrictEqual(Uint8Array.from([1, 2, 255]));
    expect(rich['re']).toStrictEqual(/a+/gi);
    expect(rich['e']).toBeInstanceOf(RangeError);
    expect((rich['e'] as Error).message).toBe('boom');
    expect(decode(hex('ff0f5c0a026869'))).toStrictEqual(Buffer.from('hi'));
    const cycle = decode(hex('ff0f6f22046e616d65220473656c66220473656c665e007b02')) as Record<string, unknown>;
    expect(cycle['self']).toBe(cycle);
    // A JSON-shaped value v8Codec wrote stays readable though taggedCodec now writes it as JSON.
    expect(decode(hex('ff0f6f2204757365722203752d312205726f6c6573410122066d656d62657224000122016e49067b03'))).toStrictEqual({
      user: 'u-1',
      roles: ['member'],
      n: 3,
    });
  });

  it.each(KINDS)('decodes v8Codec bytes of %s', (_label, make) => {
    const value = make();
    expect(decode(v8Codec.encode(value))).toStrictEqual(value);
  });
});

describe('taggedCodec rejects corrupt bytes', () => {
  it('rejects empty bytes and the tag alone', () => {
    expect(decodeError(new Uint8Array(0))).toBeInstanceOf(SerializationError);
    expect(decodeError(Uint8Array.of(JSON_TAG))).toBeInstanceOf(SerializationError);
    expect(decodeError(Uint8Array.of(V8_TAG))).toBeInstanceOf(SerializationError);
  });

  it('rejects every first byte other than the two tags', () => {
    const body = Buffer.from('{"a":1}');
    for (let first = 0; first < 256; first++) {
      if (first === JSON_TAG || first === V8_TAG) continue;
      expect(decodeError(Uint8Array.from([first, ...body]))).toBeInstanceOf(SerializationError);
    }
  });

  it.each([
    ['an unfinished object', 'J{"a":'],
    ['a trailing comma', 'J[1,2,]'],
    ['two values', 'J{"a":1}{"b":2}'],
    ['a single-quoted string', "J'text'"],
    ['NaN', 'JNaN'],
    ['a byte-order mark', 'J\ufeff{}'],
  ])('rejects the tag followed by %s', (_label, text) => {
    const error = decodeError(Buffer.from(text, 'utf8'));
    expect(error).toBeInstanceOf(SerializationError);
    expect((error as Error).cause).toBeInstanceOf(SerializationError);
  });

  it('rejects invalid UTF-8 inside a JSON string, which JSON.parse alone would take as U+FFFD', () => {
    const good = encode({ name: 'abcdef' });
    for (const invalid of [[0xff], [0xc0, 0xaf], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]]) {
      const bytes = Buffer.concat([good.subarray(0, 10), Uint8Array.from(invalid), good.subarray(10)]);
      expect(Buffer.from(bytes.subarray(1)).toString('utf8')).toContain('\uFFFD');
      expect(decodeError(bytes)).toBeInstanceOf(SerializationError);
    }
  });

  it('rejects every truncation of a JSON object payload', () => {
    const bytes = encode({ id: 'tok-1', roles: ['a', 'b'], at: 1_735_000_000_000, ok: false });
    expect(bytes[0]).toBe(JSON_TAG);
    for (let length = 0; length < bytes.length; length++) {
      expect(decodeError(bytes.subarray(0, length))).toBeInstanceOf(SerializationError);
    }
  });

  it('accepts none of 200 random byte strings (fixed seed)', () => {
    let state = 0x2545f491;
    const nextByte = (): number => {
      // xorshift32: deterministic, so the count below is the same on every run.
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) & 0xff;
    };
    let accepted = 0;
    for (let i = 0; i < 200; i++) {
      const bytes = Uint8Array.from({ length: 1 + (nextByte() % 64) }, nextByte);
      if (!(decodeError(bytes) instanceof SerializationError)) accepted++;
    }
    expect(accepted).toBe(0);
  });

  it('returns a value only for well-formed payloads, and otherwise throws SerializationError', () => {
    const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
    const parsesAsJson = (body: Uint8Array): boolean => {
      try {
        JSON.parse(strictUtf8.decode(body));
        return true;
      } catch {
        return false;
      }
    };
    const deserializes = (bytes: Uint8Array): boolean => {
      try {
        deserialize(bytes);
        return true;
      } catch {
        return false;
      }
    };
    const tagged = fc.tuple(fc.constantFrom(JSON_TAG, V8_TAG, 0x00, 0x7b, 0x22), fc.uint8Array({ maxLength: 48 }));
    fc.assert(
      fc.property(
        fc.oneof(
          tagged.map(([first, rest]) => Uint8Array.from([first, ...rest])),
          fc.uint8Array({ maxLength: 48 }),
        ),
        (bytes) => {
          const error = decodeError(bytes);
          const wellFormed = bytes[0] === JSON_TAG ? parsesAsJson(bytes.subarray(1)) : bytes[0] === V8_TAG ? deserializes(bytes) : false;
          if (wellFormed) expect(error).toBeUndefined();
          else expect(error).toBeInstanceOf(SerializationError);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
