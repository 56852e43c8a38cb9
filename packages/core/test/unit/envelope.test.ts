import { describe, expect, it } from 'vitest';
import { SerializationError } from '../../src/index.js';
import { carriedKey, open, reseal, seal } from '../../src/internal/envelope.js';

const payload = Uint8Array.from([1, 2, 3]);
const expiresAt = 1_800_000_000_123;

/** What releases before the key-carrying envelope wrote: [MAGIC, 1, flags, (f64 BE expiry), payload]. */
function versionOne(expiry: number | undefined): Uint8Array {
  const header = expiry === undefined ? Buffer.from([0x6c, 1, 0]) : Buffer.concat([Buffer.from([0x6c, 1, 1]), f64(expiry)]);
  return Buffer.concat([header, payload]);
}

function f64(value: number): Buffer {
  const out = Buffer.alloc(8);
  out.writeDoubleBE(value);
  return out;
}

describe('envelope', () => {
  it('writes a value without a carried key as version 1, byte for byte as before', () => {
    expect(Buffer.from(seal(payload, undefined))).toStrictEqual(Buffer.from(versionOne(undefined)));
    expect(Buffer.from(seal(payload, expiresAt))).toStrictEqual(Buffer.from(versionOne(expiresAt)));
  });

  it('reads version-1 values written by earlier releases', () => {
    for (const expiry of [undefined, expiresAt]) {
      const opened = open(versionOne(expiry));
      expect(Array.from(opened.payload)).toStrictEqual([1, 2, 3]);
      expect(opened.expiresAt).toBe(expiry);
      expect(carriedKey(versionOne(expiry))).toBeUndefined();
    }
  });

  it('carries a key as version 2: u32 length and UTF-8 after the expiry', () => {
    const key = 'user:ü🔑';
    const sealed = seal(payload, expiresAt, key);
    const keyBytes = Buffer.from(key, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32BE(keyBytes.byteLength);
    expect(Buffer.from(sealed)).toStrictEqual(Buffer.concat([Buffer.from([0x6c, 2, 1]), f64(expiresAt), length, keyBytes, payload]));
    expect(carriedKey(sealed)).toBe(key);
    const opened = open(sealed);
    expect(Array.from(opened.payload)).toStrictEqual([1, 2, 3]);
    expect(opened.expiresAt).toBe(expiresAt);
  });

  it('carries short and long keys, ASCII or not, exactly', () => {
    for (const key of ['k', 'a'.repeat(64), 'a'.repeat(65), 'é'.repeat(64), `${'a'.repeat(63)}é`, '🔑'.repeat(300), 'x'.repeat(10_000)]) {
      const sealed = seal(payload, expiresAt, key);
      expect(carriedKey(sealed)).toBe(key);
      expect(Array.from(open(sealed).payload)).toStrictEqual([1, 2, 3]);
      expect(sealed.byteLength).toBe(3 + 8 + 4 + Buffer.byteLength(key, 'utf8') + payload.byteLength);
    }
  });

  it('carries a key without an expiry, and an empty payload', () => {
    const sealed = seal(new Uint8Array(0), undefined, 'k');
    expect(carriedKey(sealed)).toBe('k');
    expect(open(sealed)).toMatchObject({ expiresAt: undefined });
    expect(open(sealed).payload.byteLength).toBe(0);
  });

  it('reads a value inside a larger buffer (a pooled or sliced one)', () => {
    const sealed = seal(payload, expiresAt, 'pooled');
    const inside = new Uint8Array(sealed.byteLength + 10);
    inside.set(sealed, 5);
    const view = inside.subarray(5, 5 + sealed.byteLength);
    expect(carriedKey(view)).toBe('pooled');
    expect(Array.from(open(view).payload)).toStrictEqual([1, 2, 3]);
  });

  it('reseals with a new expiry and keeps payload and carried key', () => {
    const touched = reseal(seal(payload, undefined, 'k'), expiresAt);
    expect(open(touched).expiresAt).toBe(expiresAt);
    expect(carriedKey(touched)).toBe('k');
    expect(Array.from(open(touched).payload)).toStrictEqual([1, 2, 3]);
    const plain = reseal(versionOne(expiresAt), expiresAt + 1);
    expect(plain[1]).toBe(1);
    expect(open(plain).expiresAt).toBe(expiresAt + 1);
  });

  it('refuses unknown versions and truncated version-2 values with SerializationError', () => {
    const sealed = Buffer.from(seal(payload, undefined, 'abc'));
    const future = Buffer.from(sealed);
    future[1] = 3;
    expect(() => open(future)).toThrow(SerializationError);
    expect(() => open(sealed.subarray(0, 5))).toThrow(SerializationError);
    expect(() => carriedKey(sealed.subarray(0, 3 + 4 + 2))).toThrow(SerializationError);
    expect(() => open(Uint8Array.from([0x6c, 2, 1, 0]))).toThrow(SerializationError);
  });
});
