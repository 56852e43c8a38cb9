import { Binary, Long } from 'mongodb';
import { describe, expect, it } from 'vitest';
import { InvalidKeyError, ValidationError, ValueTooLargeError } from '@latchkey/core';
import {
  MAX_KEY_BYTES,
  MAX_VALUE_BYTES,
  checkEntries,
  checkKey,
  checkKeys,
  chunkByBytes,
  fenceOf,
  freeLockFilter,
  idFilter,
  idsFilter,
  isLive,
  leaseFilter,
  valueBytes,
  valueUpdate,
} from '../../src/internal/document.js';

const OPERATOR_LIKE_KEYS = ['$where', '$gt', '$ne', 'a.b', '{"$ne":1}', '__proto__', 'constructor', '$', '.', 'a\0b'];

describe('key filters', () => {
  it.each(OPERATOR_LIKE_KEYS)('matches _id with the key as a plain string, so %j is only ever a value', (key) => {
    const filter = idFilter(key);
    expect(Object.keys(filter)).toEqual(['_id']);
    expect(filter['_id']).toBe(key);
  });

  it('refuses a non-string key before it can reach a filter as an operator object', () => {
    expect(() => idFilter({ $ne: 1 } as never)).toThrow();
  });

  it('keeps __proto__ as an own string value, not a prototype change', () => {
    const filter = idsFilter(['__proto__', 'x']);
    expect(Object.getPrototypeOf(filter)).toBe(Object.prototype);
    expect(filter['_id']).toEqual({ $in: ['__proto__', 'x'] });
  });

  it('copies the key list of $in, so later changes to the caller’s array do not leak in', () => {
    const keys = ['a'];
    const filter = idsFilter(keys);
    keys.push('b');
    expect(filter['_id'].$in).toEqual(['a']);
  });

  it('refuses objects posing as keys', () => {
    expect(() => idFilter({ $ne: 1 } as unknown as string)).toThrow(InvalidKeyError);
    expect(() => idsFilter([{ $gt: '' } as unknown as string])).toThrow(InvalidKeyError);
  });

  it('filters a lease on its owner token and an unexpired lease, both as values', () => {
    const now = new Date(1000);
    expect(leaseFilter('$k', '$tok', now)).toEqual({ _id: '$k', 'lock.token': { $eq: '$tok' }, 'lock.expiresAt': { $gt: now } });
  });

  it('takes a lock only when it is free or lapsed', () => {
    const now = new Date(1000);
    expect(freeLockFilter('k', now)).toEqual({ _id: 'k', $or: [{ lock: null }, { 'lock.expiresAt': { $lte: now } }] });
  });
});

describe('checkKey', () => {
  it('accepts operator-like keys and long keys up to the limit', () => {
    for (const key of [...OPERATOR_LIKE_KEYS, 'k'.repeat(MAX_KEY_BYTES), 'café😀']) expect(() => checkKey(key)).not.toThrow();
  });

  it.each([
    ['an empty key', '', /must be non-empty strings/],
    ['a number', 42, /must be non-empty strings/],
    ['null', null, /must be non-empty strings/],
    ['a lone surrogate', 'a\ud800', /well-formed Unicode/],
    ['a key over the limit', 'é'.repeat(MAX_KEY_BYTES / 2 + 1), new RegExp(`at most ${MAX_KEY_BYTES} UTF-8 bytes`)],
  ])('rejects %s with InvalidKeyError', (_name, key, message) => {
    expect(() => checkKey(key)).toThrow(InvalidKeyError);
    expect(() => checkKey(key)).toThrow(message);
  });
});

describe('checkKeys and checkEntries', () => {
  it('accept batches of keys checkKey accepts', () => {
    expect(() => checkKeys(['a', '$gt', 'café😀'])).not.toThrow();
    expect(() => checkEntries([['a', new Uint8Array(MAX_VALUE_BYTES)]])).not.toThrow();
  });

  it('refuse a lone surrogate anywhere in the batch with InvalidKeyError', () => {
    expect(() => checkKeys(['a', 'b\udc00'])).toThrow(/well-formed Unicode/);
    expect(() =>
      checkEntries([
        ['a', new Uint8Array(1)],
        ['b\udc00', new Uint8Array(1)],
      ]),
    ).toThrow(InvalidKeyError);
  });

  it('refuse what is not an array, or a pair that is not one, with ValidationError', () => {
    expect(() => checkKeys('a')).toThrow(ValidationError);
    expect(() => checkEntries([['a', 'text']])).toThrow(ValidationError);
    expect(() => checkEntries(['a'])).toThrow(ValidationError);
  });

  it('refuse a value over the limit with ValueTooLargeError carrying size and limit', () => {
    let thrown: unknown;
    try {
      checkEntries([['k', new Uint8Array(MAX_VALUE_BYTES + 1)]]);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ValueTooLargeError);
    expect(thrown).toMatchObject({ size: MAX_VALUE_BYTES + 1, limit: MAX_VALUE_BYTES });
  });

  it('leave room for the rest of a 16 MiB document', () => {
    expect(MAX_VALUE_BYTES).toBeLessThan(16 * 1024 * 1024 - 2 * MAX_KEY_BYTES);
  });
});

describe('value documents', () => {
  it('stores the bytes as Binary and the expiry as a Date', () => {
    const update = valueUpdate(new Uint8Array([1, 2]), 5000);
    expect(update['$set'].v).toBeInstanceOf(Binary);
    expect(update['$set'].exp).toEqual(new Date(5000));
    expect(update['$unset']).toBeUndefined();
  });

  it('holds a copy of the bytes, so the caller may reuse its buffer at once', () => {
    const value = Buffer.from([1, 2, 3]);
    const update = valueUpdate(value, undefined);
    value.fill(0);
    expect([...(valueBytes(update['$set'].v) ?? [])]).toEqual([1, 2, 3]);
  });

  it('removes an old expiry when the new value has none', () => {
    expect(valueUpdate(new Uint8Array([1]), undefined)['$unset']).toEqual({ exp: '' });
  });

  it('reads back the bytes of a Binary, however large its buffer', () => {
    const binary = new Binary(new Uint8Array([7, 8, 9]));
    expect([...(valueBytes(binary) ?? [])]).toEqual([7, 8, 9]);
    expect(valueBytes(Buffer.from([1]))).toEqual(Buffer.from([1]));
    expect(valueBytes('nope')).toBeUndefined();
  });

  it('calls a value live until its expiry, and a document without a value never', () => {
    expect(isLive({ v: new Binary(new Uint8Array(1)) }, 10)).toBe(true);
    expect(isLive({ v: new Binary(new Uint8Array(1)), exp: new Date(11) }, 10)).toBe(true);
    expect(isLive({ v: new Binary(new Uint8Array(1)), exp: new Date(10) }, 10)).toBe(false);
    expect(isLive({ fence: 3 }, 10)).toBe(false);
  });

  it('reads the fence whether it arrives as bigint, Long or number', () => {
    expect(fenceOf({ fence: 5n })).toBe(5n);
    expect(fenceOf({ fence: Long.fromString('9007199254740993') })).toBe(9007199254740993n);
    expect(fenceOf({ fence: 7 })).toBe(7n);
    expect(() => fenceOf({})).toThrow(TypeError);
  });
});

describe('chunkByBytes', () => {
  it('keeps a small batch in one chunk', () => {
    expect(chunkByBytes(['a', 'b', 'c'], 1000)).toEqual([['a', 'b', 'c']]);
  });

  it('splits a batch whose keys exceed the budget, keeping order and every key', () => {
    const keys = Array.from({ length: 10 }, (_, i) => `key-${i}`.padEnd(50, 'x'));
    const chunks = chunkByBytes(keys, 200);
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.flat()).toEqual(keys);
    for (const chunk of chunks) expect(chunk.reduce((sum, key) => sum + key.length + 16, 0)).toBeLessThanOrEqual(200);
  });

  it('gives an oversized single key a chunk of its own', () => {
    expect(chunkByBytes(['x'.repeat(500), 'y'], 100)).toEqual([['x'.repeat(500)], ['y']]);
  });

  it('returns no chunks for no keys', () => {
    expect(chunkByBytes([], 100)).toEqual([]);
  });
});
