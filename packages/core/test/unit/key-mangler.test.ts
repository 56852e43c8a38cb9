import { describe, expect, it } from 'vitest';
import { lengthConditionalMangler, sha1KeyMangler, ValidationError } from '../../src/index.js';

describe('sha1KeyMangler', () => {
  it.each([
    ['k', '13fbd79c3d390e5d6585a21e11ff5ec1970cff0c'],
    ['abc', 'a9993e364706816aba3e25717850c26c9cd0d89d'],
    ['café', 'f424452a9673918c6f09b0cdd35b20be8e6ae7d7'],
    ['\ud800x', '61e6772308779371a01fe125e821b439e27cdc4a'],
  ])('hashes %j to the golden value', (key, expected) => {
    expect(sha1KeyMangler(key)).toBe(expected);
  });

  it('gives the same answer from its cache as from a cold hash, beyond the cache bound too', () => {
    const keys = Array.from({ length: 10_050 }, (_, i) => `cache-${i}`);
    const cold = keys.map((key) => sha1KeyMangler(key));
    expect(keys.map((key) => sha1KeyMangler(key))).toStrictEqual(cold);
    expect(sha1KeyMangler('abc')).toBe('a9993e364706816aba3e25717850c26c9cd0d89d');
    const long = 'x'.repeat(300);
    expect(sha1KeyMangler(long)).toBe(sha1KeyMangler(long));
    expect(sha1KeyMangler(long)).toMatch(/^[0-9a-f]{40}$/);
  });

  it('keeps apart ill-formed keys that spell each other’s escapes', () => {
    expect(sha1KeyMangler('\ud800&#55296;')).not.toBe(sha1KeyMangler('&#55296;\ud800'));
    expect(sha1KeyMangler('a&\udc00')).not.toBe(sha1KeyMangler('a&#38;\udc00'));
  });

  it('keeps keys that differ only in a lone surrogate distinct', () => {
    expect(sha1KeyMangler('\ud800')).not.toBe(sha1KeyMangler('\udfff'));
    expect(sha1KeyMangler('\ud800')).not.toBe(sha1KeyMangler('\ufffd'));
  });

  it('hashes a well-formed surrogate pair as its UTF-8 bytes', () => {
    // SHA-1 of the bytes F0 9F 98 80, computed independently with Python's hashlib.
    expect(sha1KeyMangler('\ud83d\ude00')).toBe('9c533688a979a858cbd6a43c9f91aba624651f18');
  });
});

describe('lengthConditionalMangler', () => {
  const mangler = lengthConditionalMangler(4, sha1KeyMangler);

  it('leaves keys shorter than minLength as given', () => {
    expect(mangler('abc')).toBe('abc');
  });

  it('mangles keys whose length is at least minLength', () => {
    expect(mangler('abcd')).toBe(sha1KeyMangler('abcd'));
    expect(mangler('abcde')).toBe(sha1KeyMangler('abcde'));
  });

  it('rejects a bad minLength or mangler with ValidationError', () => {
    expect(() => lengthConditionalMangler(-1, sha1KeyMangler)).toThrow(ValidationError);
    expect(() => lengthConditionalMangler(1.5, sha1KeyMangler)).toThrow(ValidationError);
    expect(() => lengthConditionalMangler(2, 'nope' as never)).toThrow(ValidationError);
  });
});
