import { describe, expect, it } from 'vitest';
import { decodeWith, encodeWith, jsonCodec, SerializationError, v8Codec } from '../../src/index.js';

const roundTrip = (value: unknown): unknown => decodeWith(v8Codec, encodeWith(v8Codec, value));

describe('v8Codec fidelity', () => {
  it.each([
    ['null', null],
    ['undefined', undefined],
    ['true', true],
    ['false', false],
    ['zero', 0],
    ['a float', 3.25],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['-Infinity', -Infinity],
    ['the empty string', ''],
    ['a non-ASCII string', 'café 🎉 \u0000 \ud800'],
    ['a BigInt', 12345678901234567890123n],
  ])('round-trips %s exactly', (_name, value) => {
    expect(Object.is(roundTrip(value), value)).toBe(true);
  });

  it('round-trips -0 as -0', () => {
    expect(Object.is(roundTrip(-0), -0)).toBe(true);
  });

  it('round-trips arrays, nested objects and sparse holes', () => {
    const value = { a: [1, 'two', [3, { four: 4 }]], b: { c: { d: null, e: undefined } } };
    expect(roundTrip(value)).toStrictEqual(value);
  });

  it('round-trips Date, Map and Set with their types', () => {
    const value = {
      when: new Date(1_700_000_000_123),
      map: new Map<unknown, unknown>([
        [1, 'a'],
        ['k', { x: 1 }],
      ]),
      set: new Set([1, 'b']),
    };
    const back = roundTrip(value) as typeof value;
    expect(back.when).toBeInstanceOf(Date);
    expect(back.when.getTime()).toBe(1_700_000_000_123);
    expect(back.map).toBeInstanceOf(Map);
    expect([...back.map]).toStrictEqual([
      [1, 'a'],
      ['k', { x: 1 }],
    ]);
    expect(back.set).toBeInstanceOf(Set);
    expect([...back.set]).toStrictEqual([1, 'b']);
  });

  it('keeps Uint8Array and Buffer apart', () => {
    const u8 = roundTrip(new Uint8Array([1, 2, 3]));
    const buf = roundTrip(Buffer.from('hi'));
    expect(u8).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(u8)).toBe(false);
    expect([...(u8 as Uint8Array)]).toStrictEqual([1, 2, 3]);
    expect(Buffer.isBuffer(buf)).toBe(true);
    expect((buf as Buffer).toString()).toBe('hi');
  });

  it.each([
    ['a function', () => 1],
    ['a symbol', Symbol('s')],
    ['an object holding a function', { f() {} }],
  ])('refuses %s with SerializationError', (_name, value) => {
    expect(() => encodeWith(v8Codec, value)).toThrow(SerializationError);
  });

  it('turns corrupt bytes into SerializationError with the cause kept', () => {
    let caught: unknown;
    try {
      decodeWith(v8Codec, new Uint8Array([0xff, 0x0f, 0x99, 0x01, 0x02]));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(SerializationError);
    expect((caught as SerializationError).cause).toBeInstanceOf(Error);
  });
});

describe('jsonCodec', () => {
  it('round-trips JSON values', () => {
    const value = { a: [1, 'x', null], b: true };
    expect(decodeWith(jsonCodec, encodeWith(jsonCodec, value))).toStrictEqual(value);
  });

  it('refuses values without a JSON form', () => {
    expect(() => encodeWith(jsonCodec, undefined)).toThrow(SerializationError);
    expect(() => encodeWith(jsonCodec, 1n)).toThrow(SerializationError);
  });
});
