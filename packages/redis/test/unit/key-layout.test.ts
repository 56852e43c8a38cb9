import { ValidationError } from '@latchkey/core';
import { describe, expect, it } from 'vitest';
import { clusterSlot } from '../../src/internal/cluster-slot.js';
import { fenceKeyOf, KeyLayout, lockKeyOf } from '../../src/internal/key-layout.js';

const layout = new KeyLayout('app:');

describe('KeyLayout', () => {
  it('stores a plain key as the hash tag after the prefix', () => {
    expect(layout.dataKey('user:42')).toBe('app:{user:42}');
    expect(lockKeyOf(layout.dataKey('user:42'))).toBe('app:{user:42}:lock');
    expect(fenceKeyOf(layout.dataKey('user:42'))).toBe('app:{user:42}:fence');
  });

  it('puts data, lock and fence of a key in one cluster slot', () => {
    for (const key of ['a', 'user:42', 'x{y}z', '}{', '\ud800', 'café']) {
      const data = layout.dataKey(key);
      expect(clusterSlot(lockKeyOf(data))).toBe(clusterSlot(data));
      expect(clusterSlot(fenceKeyOf(data))).toBe(clusterSlot(data));
    }
  });

  it('replaces a key containing braces by a digest so the tag stays intact', () => {
    const data = layout.dataKey('a{b}c');
    expect(data).toMatch(/^app:#\{[0-9a-f]{40}\}$/);
    expect(clusterSlot(data)).toBe(clusterSlot(data.slice(data.indexOf('{') + 1, -1)));
  });

  it('replaces a key that is not well-formed UTF-16 (it would not survive UTF-8)', () => {
    expect(layout.dataKey('\ud800x')).toMatch(/^app:#\{[0-9a-f]{40}\}$/);
    expect(layout.dataKey('\ud800x')).not.toBe(layout.dataKey('\udc00x'));
  });

  it('keeps distinct keys distinct, digested or not', () => {
    const braced = 'k{1}';
    const digestOfBraced = layout.dataKey(braced).slice('app:#{'.length, -1);
    const keys = [braced, digestOfBraced, `#${digestOfBraced}`, 'k{2}', '\ud800', '&#55296;', '\ud800{', '&#55296;{', 'k', 'k:lock'];
    const dataKeys = keys.map((key) => layout.dataKey(key));
    expect(new Set(dataKeys).size).toBe(keys.length);
    const all = dataKeys.flatMap((data) => [data, lockKeyOf(data), fenceKeyOf(data)]);
    expect(new Set(all).size).toBe(all.length);
  });

  it('tells the stored key back from a plain data key, and only from one', () => {
    for (const key of ['a', 'user:42', '#x', 'café', 'k:lock']) expect(layout.storedKeyOf(layout.dataKey(key))).toBe(key);
    expect(layout.storedKeyOf(layout.dataKey('a{b}c'))).toBeUndefined();
    expect(layout.storedKeyOf('other:{a}')).toBeUndefined();
    expect(layout.storedKeyOf('app:{a}:lock')).toBeUndefined();
    expect(layout.storedKeyOf('app:{}')).toBeUndefined();
    expect(layout.storedKeyOf('app:{a}b}')).toBeUndefined();
  });

  it('names the release channel after the prefix', () => {
    expect(layout.channel).toBe('app:latchkey:released');
    expect(new KeyLayout('').channel).toBe('latchkey:released');
  });

  it('rejects a prefix that would change the hash tag', () => {
    expect(() => new KeyLayout('a{b')).toThrow(ValidationError);
    expect(() => new KeyLayout('a}')).toThrow(ValidationError);
    expect(() => new KeyLayout('\udc00')).toThrow(ValidationError);
  });
});
