import { describe, expect, it } from 'vitest';
import {
  checkAcquireOptions,
  checkDuration,
  checkExpiresAt,
  checkLease,
  checkStoredEntries,
  checkStoredKey,
  checkStoredKeys,
  checkStoredValue,
  InvalidKeyError,
  ValidationError,
  ValueTooLargeError,
} from '../../../src/index.js';

const bytes = (n: number) => new Uint8Array(n);

describe('checkStoredKey', () => {
  it('accepts non-empty strings, up to maxKeyBytes UTF-8 bytes when bounded', () => {
    expect(() => checkStoredKey('k')).not.toThrow();
    expect(() => checkStoredKey('x'.repeat(100_000))).not.toThrow();
    expect(() => checkStoredKey('aaa', 3)).not.toThrow();
    expect(() => checkStoredKey('é', 2)).not.toThrow();
  });

  it.each([[''], [undefined], [null], [42], [['k']], [{ key: 'k' }]])('rejects %j with InvalidKeyError', (key) => {
    expect(() => checkStoredKey(key)).toThrow(InvalidKeyError);
    expect(() => checkStoredKey(key)).toThrow(/non-empty string/);
  });

  it('counts UTF-8 bytes, not characters, against maxKeyBytes, and says the bound', () => {
    expect(() => checkStoredKey('aaaa', 3)).toThrow(InvalidKeyError);
    // 'é' is 2 bytes and '😀' 4: short in characters, too long in bytes.
    expect(() => checkStoredKey('éé', 3)).toThrow(/at most 3 UTF-8 bytes/);
    expect(() => checkStoredKey('😀', 3)).toThrow(InvalidKeyError);
    expect(() => checkStoredKey('😀', 4)).not.toThrow();
  });

  it('keeps the offending key on the error', () => {
    const error = (() => {
      try {
        checkStoredKey('', 10);
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(InvalidKeyError);
    expect((error as InvalidKeyError).key).toBe('');
  });
});

describe('checkStoredKeys', () => {
  it('accepts an array of good keys, empty included', () => {
    expect(() => checkStoredKeys(['a', 'b'])).not.toThrow();
    expect(() => checkStoredKeys([])).not.toThrow();
  });

  it('rejects a non-array with ValidationError that says what it got', () => {
    expect(() => checkStoredKeys('a')).toThrow(ValidationError);
    expect(() => checkStoredKeys('a')).toThrow(/keys must be an array, got string/);
    expect(() => checkStoredKeys(null)).toThrow(/got null/);
  });

  it('rejects a bad key inside with InvalidKeyError, bound included', () => {
    expect(() => checkStoredKeys(['a', ''])).toThrow(InvalidKeyError);
    expect(() => checkStoredKeys(['a', 'bbbb'], 3)).toThrow(/at most 3 UTF-8 bytes/);
  });
});

describe('checkStoredValue', () => {
  it('accepts Uint8Array values (Buffer included) up to maxValueBytes, any size when unbounded', () => {
    expect(() => checkStoredValue(bytes(10), 10)).not.toThrow();
    expect(() => checkStoredValue(Buffer.from('abc'), 3)).not.toThrow();
    expect(() => checkStoredValue(bytes(1_000_000), undefined)).not.toThrow();
  });

  it.each([['text'], [new ArrayBuffer(1)], [[1, 2]], [null], [undefined], [new Uint16Array(1)]])(
    'rejects %o with ValidationError naming its type',
    (value) => {
      expect(() => checkStoredValue(value, undefined)).toThrow(ValidationError);
      expect(() => checkStoredValue(value, undefined)).toThrow(/Uint8Array values only, got/);
    },
  );

  it('rejects a value over maxValueBytes with ValueTooLargeError giving size, limit and key', () => {
    const error = (() => {
      try {
        checkStoredValue(bytes(11), 10, 'big');
      } catch (caught) {
        return caught;
      }
    })() as ValueTooLargeError;
    expect(error).toBeInstanceOf(ValueTooLargeError);
    expect(error.size).toBe(11);
    expect(error.limit).toBe(10);
    expect(error.message).toContain('"big"');
  });
});

describe('checkStoredEntries', () => {
  it('accepts [key, value] pairs', () => {
    expect(() => checkStoredEntries([['a', bytes(1)]], 10)).not.toThrow();
    expect(() => checkStoredEntries([], 10)).not.toThrow();
  });

  it('rejects a non-array, and an entry that is not a pair, with ValidationError', () => {
    expect(() => checkStoredEntries({}, 10)).toThrow(/entries must be an array of \[key, value\] pairs, got Object/);
    expect(() => checkStoredEntries(['a'], 10)).toThrow(ValidationError);
    expect(() => checkStoredEntries(['a'], 10)).toThrow(/entries must be \[key, value\] pairs, got string/);
  });

  it('checks each key and value like checkStoredKey and checkStoredValue', () => {
    expect(() => checkStoredEntries([['', bytes(1)]], 10)).toThrow(InvalidKeyError);
    expect(() => checkStoredEntries([['abcd', bytes(1)]], 10, 3)).toThrow(InvalidKeyError);
    expect(() => checkStoredEntries([['a', 'text']], 10)).toThrow(ValidationError);
    expect(() => checkStoredEntries([['a', bytes(11)]], 10)).toThrow(ValueTooLargeError);
    expect(() => checkStoredEntries([['a', bytes(11)]], 10)).toThrow(/"a"/);
  });
});

describe('checkLease', () => {
  it('accepts the shape acquireLock returns, acquiredAt or not', () => {
    expect(() => checkLease({ key: 'k', token: 't', fencingToken: 0n })).not.toThrow();
    expect(() => checkLease({ key: 'k', token: 't', fencingToken: 7n, acquiredAt: 12.5 })).not.toThrow();
  });

  it.each([
    ['undefined', undefined],
    ['null', null],
    ['a string', 'k'],
    ['an empty object', {}],
    ['an array', []],
    ['an empty key', { key: '', token: 't', fencingToken: 1n }],
    ['a key that is not a string', { key: 1, token: 't', fencingToken: 1n }],
    ['an empty token', { key: 'k', token: '', fencingToken: 1n }],
    ['no token', { key: 'k', fencingToken: 1n }],
    ['a numeric fencingToken', { key: 'k', token: 't', fencingToken: 1 }],
    ['no fencingToken', { key: 'k', token: 't' }],
  ])('rejects %s with ValidationError saying it is not a lease', (_, lease) => {
    expect(() => checkLease(lease)).toThrow(ValidationError);
    expect(() => checkLease(lease)).toThrow(/not a lease: expected \{ key, token, fencingToken \}/);
  });
});

describe('checkDuration', () => {
  it('accepts finite numbers >= 0', () => {
    for (const ms of [0, 0.5, 1, 86_400_000, Number.MAX_SAFE_INTEGER]) expect(() => checkDuration('leaseMs', ms)).not.toThrow();
  });

  it.each([[-1], [-0.001], [NaN], [Infinity], ['5'], [undefined], [null], [5n]])(
    'rejects %o with ValidationError naming the option',
    (ms) => {
      expect(() => checkDuration('leaseMs', ms)).toThrow(ValidationError);
      expect(() => checkDuration('leaseMs', ms)).toThrow(/^leaseMs must be a finite number >= 0, got /);
    },
  );

  it('accepts Infinity only when allowed, and then does not say "finite"', () => {
    expect(() => checkDuration('waitMs', Infinity, { allowInfinity: true })).not.toThrow();
    expect(() => checkDuration('waitMs', -1, { allowInfinity: true })).toThrow(/^waitMs must be a number >= 0, got -1/);
    expect(() => checkDuration('waitMs', NaN, { allowInfinity: true })).toThrow(ValidationError);
    expect(() => checkDuration('waitMs', -Infinity, { allowInfinity: true })).toThrow(ValidationError);
  });
});

describe('checkExpiresAt', () => {
  it('accepts no expiry, epoch ms (past ones too) and Infinity', () => {
    for (const expiresAt of [undefined, Date.now() + 1000, 0, -5, Infinity]) expect(() => checkExpiresAt(expiresAt)).not.toThrow();
  });

  it.each([[NaN], ['2030-01-01'], [null], [new Date()]])('rejects %o with ValidationError', (expiresAt) => {
    expect(() => checkExpiresAt(expiresAt)).toThrow(ValidationError);
    expect(() => checkExpiresAt(expiresAt)).toThrow(/^expiresAt must be epoch milliseconds, got /);
  });
});

describe('checkAcquireOptions', () => {
  it('accepts leaseMs and waitMs >= 0, waitMs Infinity, and an AbortSignal', () => {
    expect(() => checkAcquireOptions({ leaseMs: 0, waitMs: 0 })).not.toThrow();
    expect(() => checkAcquireOptions({ leaseMs: 1000, waitMs: Infinity })).not.toThrow();
    expect(() => checkAcquireOptions({ leaseMs: 1000, waitMs: 2_592_000_000, signal: new AbortController().signal })).not.toThrow();
  });

  it.each([[null], [undefined], ['options'], [7]])('rejects %o as options with ValidationError', (options) => {
    expect(() => checkAcquireOptions(options)).toThrow(ValidationError);
    expect(() => checkAcquireOptions(options)).toThrow(/^acquireLock options must be an object, got /);
  });

  it('names the bad option: leaseMs, waitMs or signal', () => {
    expect(() => checkAcquireOptions({ leaseMs: Infinity, waitMs: 0 })).toThrow(/^leaseMs must be a finite number/);
    expect(() => checkAcquireOptions({ leaseMs: -1, waitMs: 0 })).toThrow(/^leaseMs/);
    expect(() => checkAcquireOptions({ waitMs: 0 })).toThrow(/^leaseMs/);
    expect(() => checkAcquireOptions({ leaseMs: 0, waitMs: -1 })).toThrow(/^waitMs must be a number >= 0/);
    expect(() => checkAcquireOptions({ leaseMs: 0 })).toThrow(/^waitMs/);
    expect(() => checkAcquireOptions({ leaseMs: 0, waitMs: 0, signal: { aborted: false } })).toThrow(
      /^signal must be an AbortSignal, got Object/,
    );
  });
});
