import { BackendError, BackendTimeoutError, BackendUnavailableError, type CallInfo } from '@latchkey/core';
import { describe, expect, it } from 'vitest';
import { mapError, ServerFailure } from '../../src/internal/errors.js';

const CALL: CallInfo = { backend: 'MemcachedBackend', what: 'get', sent: true, timeoutMs: 2000 };

describe('mapping memjs failures to latchkey errors', () => {
  it("maps memjs's response timeout to BackendTimeoutError with memjs's timeout and error as cause", () => {
    const reported = new Error('socket timed out waiting on response.');
    const error = mapError(new ServerFailure('127.0.0.1:11211', 750, reported), CALL);
    expect(error).toBeInstanceOf(BackendTimeoutError);
    expect((error as BackendTimeoutError).timeoutMs).toBe(750);
    expect(error.cause).toBe(reported);
    expect(error.message).toBe('MemcachedBackend: get failed: memcached 127.0.0.1:11211: socket timed out waiting on response.');
  });

  it.each([
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })],
    ['a connect timeout', new Error('socket timed out connecting to server.')],
    ['a closed connection', new Error('connection to 127.0.0.1:11211 closed')],
  ])('maps %s to BackendUnavailableError with the error as cause', (_what, reported) => {
    const error = mapError(new ServerFailure('127.0.0.1:11211', 2000, reported), CALL);
    expect(error).toBeInstanceOf(BackendUnavailableError);
    expect(error.cause).toBe(reported);
  });

  it('maps a refused SASL login (a bare string) and anything else to BackendError, keeping the cause', () => {
    const sasl = mapError(new ServerFailure('127.0.0.1:11211', 2000, 'Auth failure'), CALL);
    expect(sasl.constructor).toBe(BackendError);
    expect(sasl.cause).toBe('Auth failure');
    const other = new TypeError('unexpected');
    const mapped = mapError(other, CALL);
    expect(mapped.constructor).toBe(BackendError);
    expect(mapped.cause).toBe(other);
  });
});
