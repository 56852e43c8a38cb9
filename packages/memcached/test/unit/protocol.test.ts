import { Header } from 'memjs';
import { describe, expect, it } from 'vitest';
import { encodeRequest, ItemFlags, Opcode, requests, stampOpaque, withItemFlags } from '../../src/internal/protocol.js';

function decode(buffer: Buffer) {
  const header = Header.fromBuffer(buffer);
  const extras = buffer.subarray(24, 24 + header.extrasLength);
  const key = buffer.subarray(24 + header.extrasLength, 24 + header.extrasLength + header.keyLength);
  const value = buffer.subarray(24 + header.extrasLength + header.keyLength);
  return { header, extras, key: key.toString('latin1'), value, cas: buffer.readBigUInt64BE(16) };
}

describe('request building', () => {
  it('builds a set with flags, expiry, value, opaque and CAS in the header', () => {
    const frame = decode(
      encodeRequest(requests.set('k1', new Uint8Array([1, 2, 3]), ItemFlags.placeholder, 42, 0x0102030405060708n), 0xfffffff0),
    );
    expect(frame.header.magic).toBe(0x80);
    expect(frame.header.opcode).toBe(Opcode.set);
    expect(frame.header.opaque).toBe(0xfffffff0);
    expect(frame.header.totalBodyLength).toBe(8 + 2 + 3);
    expect(frame.extras.readUInt32BE(0)).toBe(ItemFlags.placeholder);
    expect(frame.extras.readUInt32BE(4)).toBe(42);
    expect(frame.key).toBe('k1');
    expect([...frame.value]).toStrictEqual([1, 2, 3]);
    expect(frame.cas).toBe(0x0102030405060708n);
  });

  it('leaves the CAS zero (unconditional) when none is given', () => {
    expect(decode(encodeRequest(requests.delete('k'), 1)).cas).toBe(0n);
    expect(decode(encodeRequest(requests.delete('k', 7n), 1)).cas).toBe(7n);
  });

  it('writes the 64-bit initial value of an increment', () => {
    const initial = 1_795_000_000_000_000n;
    const frame = decode(encodeRequest(requests.increment('fence', initial), 3));
    expect(frame.header.opcode).toBe(Opcode.increment);
    expect(frame.extras.readBigUInt64BE(0)).toBe(1n);
    expect(frame.extras.readBigUInt64BE(8)).toBe(initial);
    expect(frame.extras.readUInt32BE(16)).toBe(0);
  });

  it('bumps the CAS with an empty append', () => {
    const frame = decode(encodeRequest(requests.touchCas('k'), 9));
    expect(frame.header.opcode).toBe(Opcode.append);
    expect(frame.header.totalBodyLength).toBe(1);
  });

  it('encodes a value given as a view into a larger buffer without its neighbours', () => {
    const backing = new Uint8Array([9, 1, 2, 9]);
    const frame = decode(encodeRequest(requests.add('k', backing.subarray(1, 3), 0, 0), 1));
    expect([...frame.value]).toStrictEqual([1, 2]);
  });

  it('encodes a request without key, extras or value as a bare header', () => {
    const buffer = encodeRequest(requests.stats(), 5);
    expect(buffer).toHaveLength(24);
    const frame = decode(buffer);
    expect(frame.header).toMatchObject({ magic: 0x80, opcode: Opcode.stat, keyLength: 0, extrasLength: 0, totalBodyLength: 0, opaque: 5 });
    expect(buffer.subarray(5, 8).every((byte) => byte === 0)).toBe(true);
  });

  it('writes a new opaque id into a frame', () => {
    const buffer = encodeRequest(requests.get('k'), 1);
    stampOpaque(buffer, 0xabcdef01);
    expect(decode(buffer).header.opaque).toBe(0xabcdef01);
  });

  it('copies a set or add with new item flags, leaving the original, expiry and value as they were', () => {
    for (const request of [requests.set('k', new Uint8Array([7, 8]), 11, 60, 3n), requests.add('k', new Uint8Array([7, 8]), 11, 60)]) {
      const original = encodeRequest(request, 2);
      const copy = withItemFlags(original, 0x3fff_ffff);
      expect(copy).not.toBe(original);
      expect(decode(original).extras.readUInt32BE(0)).toBe(11);
      const frame = decode(copy);
      expect(frame.extras.readUInt32BE(0)).toBe(0x3fff_ffff);
      expect(frame.extras.readUInt32BE(4)).toBe(60);
      expect([...frame.value]).toStrictEqual([7, 8]);
      expect(frame.cas).toBe(decode(original).cas);
    }
  });

  it('copies any other frame unchanged', () => {
    for (const request of [requests.delete('k', 9n), requests.increment('fence', 1n), requests.get('k')]) {
      const original = encodeRequest(request, 4);
      const copy = withItemFlags(original, 0x1234);
      expect(copy).not.toBe(original);
      expect(copy.equals(original)).toBe(true);
    }
  });
});
