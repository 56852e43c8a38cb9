import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isValidPrefix, isValidStoredKey, KeyScheme, MANGLED_MARK, MAX_KEY_BYTES } from '../../src/internal/keys.js';

/** Any JavaScript string, lone surrogates and control characters included. */
const anyKey = fc.string({
  unit: fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code)),
  minLength: 1,
  maxLength: 300,
});
/** Keys that sit on the scheme's edges: marks, printable ASCII, lengths around the limits. */
const edgyKey = fc.oneof(
  anyKey,
  fc.string({ unit: fc.constantFrom('#', '~', 'h', 'l', 'a', ' ', '\n', 'é'), minLength: 1, maxLength: 6 }),
  fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((code) => String.fromCharCode(code)), minLength: 200, maxLength: 260 }),
);
const prefixes = ['', 'app:', 'x'.repeat(128)];

describe('KeyScheme', () => {
  describe.each(prefixes.map((prefix) => [prefix.length, prefix] as const))('with a %i-byte prefix', (_length, prefix) => {
    const scheme = new KeyScheme(prefix);

    it('stores every key under a valid memcached key with the prefix', () => {
      fc.assert(
        fc.property(edgyKey, (key) => {
          for (const stored of [scheme.dataKey(key), scheme.lockKey(key), scheme.dataKey(scheme.mangler(key))]) {
            expect(isValidStoredKey(stored)).toBe(true);
            expect(stored.startsWith(prefix)).toBe(true);
          }
        }),
      );
    });

    it('never stores two distinct keys under the same data or lock key', () => {
      fc.assert(
        fc.property(edgyKey, edgyKey, (a, b) => {
          fc.pre(a !== b);
          expect(scheme.dataKey(a)).not.toBe(scheme.dataKey(b));
          expect(scheme.lockKey(a)).not.toBe(scheme.lockKey(b));
        }),
      );
    });

    it('never gives a data key the name of a lock item or the fence counter', () => {
      fc.assert(
        fc.property(edgyKey, edgyKey, (a, b) => {
          expect(scheme.dataKey(a)).not.toBe(scheme.lockKey(b));
          expect(scheme.dataKey(a)).not.toBe(scheme.fenceKey());
          expect(scheme.lockKey(a)).not.toBe(scheme.fenceKey());
        }),
      );
    });

    it('has a mangler that keeps distinct keys distinct and whose output is stored unchanged', () => {
      fc.assert(
        fc.property(edgyKey, edgyKey, (a, b) => {
          fc.pre(a !== b);
          expect(scheme.mangler(a)).not.toBe(scheme.mangler(b));
          expect(scheme.dataKey(scheme.mangler(a))).toBe(prefix + scheme.mangler(a));
        }),
      );
    });

    it('keeps a key stored as given from colliding with the hashed form of another key', () => {
      const hashed = scheme.mangler('needs hashing');
      expect(hashed.startsWith(MANGLED_MARK)).toBe(true);
      expect(scheme.mangler(hashed)).not.toBe(hashed);
      const escaped = scheme.dataKey('needs escaping').slice(prefix.length);
      expect(scheme.dataKey(escaped)).not.toBe(scheme.dataKey('needs escaping'));
    });
  });

  describe('readability', () => {
    const scheme = new KeyScheme('app:');

    it.each(['user:42', 'token/abc-DEF_1.2', 'a'.repeat(MAX_KEY_BYTES - 'app:'.length - 2)])(
      'keeps the short printable key %s as it is',
      (key) => {
        expect(scheme.mangler(key)).toBe(key);
        expect(scheme.dataKey(key)).toBe(`app:${key}`);
      },
    );

    const unstorable: readonly (readonly [string, string])[] = [
      ['a space', 'a b'],
      ['a control character', 'a\u0001b'],
      ['a newline', 'a\nb'],
      ['non-ASCII', 'café'],
      ['a lone surrogate', '\ud800x'],
      ['the internal mark', '~labc'],
      ['one byte too many', 'a'.repeat(MAX_KEY_BYTES - 'app:'.length - 1)],
    ];

    it.each([...unstorable, ['the mangler mark', '#abc'] as const])('mangles a key with %s into # and a hash', (_why, key) => {
      expect(scheme.mangler(key)).toMatch(/^#[A-Za-z0-9_-]{43}$/);
    });

    it.each(unstorable)('stores a key with %s under ~h and a hash even without the mangler', (_why, key) => {
      expect(scheme.dataKey(key)).toMatch(/^app:~h[A-Za-z0-9_-]{43}$/);
      expect(scheme.lockKey(key)).toMatch(/^app:~l~h[A-Za-z0-9_-]{43}$/);
    });

    it('stores a key starting with the mangler mark as given when no mangler ran', () => {
      expect(scheme.dataKey('#abc')).toBe('app:#abc');
    });

    it('tells apart keys that UTF-8 would turn into the same bytes', () => {
      expect(scheme.mangler('\ud800')).not.toBe(scheme.mangler('\udc00'));
      expect(scheme.dataKey('\ud800')).not.toBe(scheme.dataKey('\ufffd'));
    });
  });

  describe('prefixes', () => {
    it.each(['', 'app:', 'a'.repeat(128)])('accepts %j', (prefix) => {
      expect(isValidPrefix(prefix)).toBe(true);
    });

    it.each(['a b', 'tab\t', 'é', 'a'.repeat(129)])('refuses %j', (prefix) => {
      expect(isValidPrefix(prefix)).toBe(false);
    });
  });
});
