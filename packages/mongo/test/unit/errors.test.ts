import {
  MongoNetworkError,
  MongoNetworkTimeoutError,
  MongoNotConnectedError,
  MongoServerError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
  type TopologyDescription,
} from 'mongodb';
import { describe, expect, it } from 'vitest';
import { BackendError, BackendTimeoutError, BackendUnavailableError, type CallInfo } from '@latchkey/core';
import { isDuplicateKey, isTopologyClosed, toLatchkeyError } from '../../src/internal/errors.js';

function call(what: string, timeoutMs: number): CallInfo {
  return { backend: 'MongoBackend', what, sent: true, timeoutMs };
}

function serverError(code: number): MongoServerError {
  return new MongoServerError({ code, errmsg: `code ${code}`, ok: 0 });
}

describe('toLatchkeyError', () => {
  it.each([
    // The driver's own constructor wants a topology description; an empty one will do.
    ['server selection failed', new MongoServerSelectionError('no server', {} as TopologyDescription)],
    ['a refused connection', new MongoNetworkError('connect ECONNREFUSED')],
    ['a closed client', new MongoTopologyClosedError()],
    ['a primary that stepped down', serverError(189)],
    ['a shutting-down server', serverError(91)],
    ['a node that is not primary', serverError(10107)],
    [
      'a bulk write that lost its connection',
      Object.assign(new MongoServerError({ errmsg: 'read ECONNRESET' }), { errorResponse: new MongoNetworkError('read ECONNRESET') }),
    ],
    ['a raw EPIPE socket error', Object.assign(new Error('This socket has been ended by the other party'), { code: 'EPIPE' })],
    ['a raw ECONNRESET socket error', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })],
  ])('maps %s to BackendUnavailableError', (_name, error) => {
    const mapped = toLatchkeyError(error, call('get', 5000));
    expect(mapped).toBeInstanceOf(BackendUnavailableError);
    expect(mapped.cause).toBe(error);
    expect(mapped.message).toContain('MongoBackend.get');
  });

  it.each([
    ['a socket timeout', new MongoNetworkTimeoutError('timed out')],
    ['maxTimeMS expiry', serverError(50)],
    ['an exceeded time limit', serverError(262)],
    ['a raw ETIMEDOUT socket error', Object.assign(new Error('connect ETIMEDOUT'), { code: 'ETIMEDOUT' })],
  ])('maps %s to BackendTimeoutError with the deadline', (_name, error) => {
    const mapped = toLatchkeyError(error, call('set', 1234));
    expect(mapped).toBeInstanceOf(BackendTimeoutError);
    expect((mapped as BackendTimeoutError).timeoutMs).toBe(1234);
    expect(mapped.cause).toBe(error);
  });

  it('maps other server errors to BackendError', () => {
    const error = serverError(2);
    const mapped = toLatchkeyError(error, call('set', 1));
    expect(mapped).toBeInstanceOf(BackendError);
    expect(mapped.cause).toBe(error);
  });

  it('maps anything else, even a string, to BackendError', () => {
    expect(toLatchkeyError('boom', call('get', 1))).toBeInstanceOf(BackendError);
  });

  it('names the backend and the call in the message', () => {
    expect(toLatchkeyError(serverError(2), call('purgeExpired', 1)).message).toMatch(/^MongoBackend\.purgeExpired failed: code 2/);
  });
});

describe('isTopologyClosed', () => {
  it('is true for the errors of a closed topology only', () => {
    expect(isTopologyClosed(new MongoTopologyClosedError())).toBe(true);
    expect(isTopologyClosed(new MongoNotConnectedError('Client must be connected before running operations'))).toBe(true);
    expect(isTopologyClosed(new MongoServerSelectionError('no server', {} as TopologyDescription))).toBe(false);
    expect(isTopologyClosed(new MongoNetworkError('connect ECONNREFUSED'))).toBe(false);
    expect(isTopologyClosed(undefined)).toBe(false);
  });
});

describe('isDuplicateKey', () => {
  it('is true for E11000, alone or as every write error of a bulk write', () => {
    expect(isDuplicateKey(serverError(11000))).toBe(true);
    expect(isDuplicateKey({ code: 11000, writeErrors: [{ code: 11000 }, { code: 11000 }] })).toBe(true);
  });

  it('is false when any other error is mixed in, or for no error code', () => {
    expect(isDuplicateKey({ writeErrors: [{ code: 11000 }, { code: 2 }] })).toBe(false);
    expect(isDuplicateKey(new Error('x'))).toBe(false);
    expect(isDuplicateKey(undefined)).toBe(false);
  });
});
