import { describe, expect, it } from 'vitest';
import { wireValue } from '../../src/internal/wire-value.js';

/** What ioredis puts on the wire for an argument: a string as UTF-8, a Buffer as it is. */
const onWire = (argument: string | Buffer): Buffer => (typeof argument === 'string' ? Buffer.from(argument, 'utf8') : argument);

const everyAsciiByte = Uint8Array.from({ length: 128 }, (_, i) => i);

describe('wireValue', () => {
  it('sends a small all-ASCII value as a string that encodes back to the same bytes', () => {
    const argument = wireValue(Buffer.from(everyAsciiByte), false);
    expect(typeof argument).toBe('string');
    expect(onWire(argument).equals(Buffer.from(everyAsciiByte))).toBe(true);
  });

  it('takes only the viewed bytes of a Uint8Array over a larger buffer', () => {
    const backing = Uint8Array.from([0xff, 0x61, 0x62, 0x63, 0xff]);
    expect(wireValue(backing.subarray(1, 4), false)).toBe('abc');
  });

  it('sends an empty value as an empty string', () => {
    expect(wireValue(new Uint8Array(0), false)).toBe('');
  });

  it('sends bytes that are not ASCII as a Buffer with exactly those bytes (binary, and UTF-8 beyond ASCII)', () => {
    for (const value of [Uint8Array.from([0x6c, 0x01, 0x80, 0xff, 0x00]), new TextEncoder().encode('"é"')]) {
      const argument = wireValue(value, false);
      expect(Buffer.isBuffer(argument)).toBe(true);
      expect(onWire(argument).equals(Buffer.from(value))).toBe(true);
    }
  });

  it('sends ASCII values above 4 KB as a Buffer', () => {
    expect(typeof wireValue(Buffer.alloc(4096, 0x61), false)).toBe('string');
    const large = wireValue(Buffer.alloc(4097, 0x61), false);
    expect(Buffer.isBuffer(large)).toBe(true);
    expect((large as Buffer).length).toBe(4097);
  });

  it('copies a Buffer argument only when asked: a copy does not change when the caller reuses its bytes', () => {
    const value = Uint8Array.from([0x80, 0x81]);
    const shared = wireValue(value, false) as Buffer;
    const copied = wireValue(value, true) as Buffer;
    value[0] = 0x90;
    expect(shared[0]).toBe(0x90);
    expect(copied[0]).toBe(0x80);
  });

  it('makes a snapshot of an ASCII value: the string keeps the bytes the caller later overwrites', () => {
    const value = Buffer.from('abc');
    const argument = wireValue(value, false);
    value[0] = 0x7a;
    expect(argument).toBe('abc');
  });
});
