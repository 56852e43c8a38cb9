import { describe, expect, it } from 'vitest';
import { clusterSlot, crc16, hashTagOf } from '../../src/internal/cluster-slot.js';

describe('crc16', () => {
  it('matches the check value of the cluster specification ("123456789" → 0x31C3)', () => {
    expect(crc16(Buffer.from('123456789'))).toBe(0x31c3);
  });

  it('is 0 for no bytes', () => {
    expect(crc16(new Uint8Array())).toBe(0);
  });
});

describe('clusterSlot', () => {
  it('gives the slots Redis documents for CLUSTER KEYSLOT', () => {
    expect(clusterSlot('123456789')).toBe(12_739);
    expect(clusterSlot('somekey')).toBe(11_058);
    expect(clusterSlot('foo{hash_tag}')).toBe(2_515);
  });

  it('puts keys with the same hash tag in the same slot', () => {
    expect(clusterSlot('{user1000}.following')).toBe(clusterSlot('{user1000}.followers'));
    expect(clusterSlot('{user1000}.following')).toBe(clusterSlot('user1000'));
  });

  it('hashes UTF-8 bytes', () => {
    expect(clusterSlot('café')).toBe(crc16(Buffer.from('café', 'utf8')) % 16_384);
  });

  it('always lies in 0..16383', () => {
    for (let i = 0; i < 2_000; i++) {
      const slot = clusterSlot(`key:${i}:${Math.random()}`);
      expect(slot).toBeGreaterThanOrEqual(0);
      expect(slot).toBeLessThan(16_384);
    }
  });
});

describe('hashTagOf', () => {
  it('uses the content of the first {…}', () => {
    expect(hashTagOf('foo{bar}{zap}')).toBe('bar');
    expect(hashTagOf('foo{{bar}}zap')).toBe('{bar');
  });

  it('uses the whole key when there is no tag or the tag is empty', () => {
    expect(hashTagOf('plain')).toBe('plain');
    expect(hashTagOf('foo{}{bar}')).toBe('foo{}{bar}');
    expect(hashTagOf('foo{bar')).toBe('foo{bar');
    expect(hashTagOf('foo}bar{')).toBe('foo}bar{');
  });
});
