import { describe, expect, it } from 'vitest';
import * as core from '../../src/index.js';

describe('error classes', () => {
  const cases: [string, core.LatchkeyError, core.LatchkeyErrorCode][] = [
    ['NotFoundError', new core.NotFoundError('k'), 'NOT_FOUND'],
    ['LockTimeoutError', new core.LockTimeoutError('k'), 'LOCK_TIMEOUT'],
    ['LockKeyMismatchError', new core.LockKeyMismatchError('a', 'b'), 'LOCK_KEY_MISMATCH'],
    ['LockNotActiveError', new core.LockNotActiveError('k'), 'LOCK_NOT_ACTIVE'],
    ['LockAcquireTimeoutError', new core.LockAcquireTimeoutError('k', 10), 'LOCK_ACQUIRE_TIMEOUT'],
    ['AlreadyConfiguredError', new core.AlreadyConfiguredError('s'), 'ALREADY_CONFIGURED'],
    ['NotConfiguredError', new core.NotConfiguredError('s'), 'NOT_CONFIGURED'],
    ['ValidationError', new core.ValidationError('bad'), 'VALIDATION'],
    ['InvalidKeyError', new core.InvalidKeyError(1, 'nope'), 'INVALID_KEY'],
    ['ValueTooLargeError', new core.ValueTooLargeError(10, 5), 'VALUE_TOO_LARGE'],
    ['SerializationError', new core.SerializationError('x'), 'SERIALIZATION'],
    ['BackendUnavailableError', new core.BackendUnavailableError('x'), 'BACKEND_UNAVAILABLE'],
    ['BackendTimeoutError', new core.BackendTimeoutError('x', 5), 'BACKEND_TIMEOUT'],
  ];

  it.each(cases)('%s is a LatchkeyError and an Error with its stable code and name', (name, error, code) => {
    expect(error).toBeInstanceOf(core.LatchkeyError);
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe(code);
    expect(error.name).toBe(name);
  });

  it('formats NotFoundError for one key and for a list', () => {
    expect(new core.NotFoundError('k').message).toBe('Could not find: k.');
    expect(new core.NotFoundError(['a', 'b']).message).toBe('Could not find: a, b.');
    expect(new core.NotFoundError(['a', 'b']).target).toStrictEqual(['a', 'b']);
  });

  it("formats LockTimeoutError like Keystone's LockTimeout", () => {
    const error = new core.LockTimeoutError('user:1');
    expect(error.message).toBe('Lock Timeout occurred for key, user:1');
    expect(error.target).toBe('user:1');
  });

  it('keeps the cause', () => {
    const cause = new Error('ECONNREFUSED');
    expect(new core.BackendUnavailableError('down', { cause }).cause).toBe(cause);
  });

  it('records size and limit on ValueTooLargeError', () => {
    const error = new core.ValueTooLargeError(11, 10);
    expect([error.size, error.limit]).toStrictEqual([11, 10]);
  });
});
