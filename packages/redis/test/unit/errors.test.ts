import { BackendError, BackendTimeoutError, BackendUnavailableError, NotFoundError, type CallInfo } from '@latchkey/core';
import { describe, expect, it } from 'vitest';
import { neverWritten, toLatchkeyError } from '../../src/internal/errors.js';

function call(what: string, timeoutMs: number): CallInfo {
  return { backend: 'RedisBackend', what, sent: true, timeoutMs };
}

function named(name: string, message: string, code?: string): Error {
  const error = new Error(message);
  error.name = name;
  if (code !== undefined) Object.assign(error, { code });
  return error;
}

describe('toLatchkeyError', () => {
  it.each([
    ["Stream isn't writeable and enableOfflineQueue options is false"],
    ['Connection is closed.'],
    ["Cluster isn't ready and enableOfflineQueue options is false"],
    ['Command aborted due to connection close'],
    ['LOADING Redis is loading the dataset in memory'],
    ['CLUSTERDOWN The cluster is down'],
    ["READONLY You can't write against a read only replica."],
    ['MOVED 866 127.0.0.1:7001'],
    ['ASK 866 127.0.0.1:7001'],
    ['Too many Cluster redirections. Last error: ReplyError: MOVED 690 127.0.0.1:7001'],
  ])('maps "%s" to BackendUnavailableError', (message) => {
    const cause = new Error(message);
    const mapped = toLatchkeyError(cause, call('get', 1000));
    expect(mapped).toBeInstanceOf(BackendUnavailableError);
    expect(mapped.cause).toBe(cause);
    expect(mapped.message).toContain('RedisBackend: get failed');
  });

  it('maps connection errors by name and code', () => {
    expect(toLatchkeyError(named('MaxRetriesPerRequestError', 'Reached the max retries per request limit'), call('x', 1))).toBeInstanceOf(
      BackendUnavailableError,
    );
    expect(toLatchkeyError(named('Error', 'connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED'), call('x', 1))).toBeInstanceOf(
      BackendUnavailableError,
    );
  });

  it("maps ioredis' command timeout to BackendTimeoutError", () => {
    const mapped = toLatchkeyError(new Error('Command timed out'), call('set', 250));
    expect(mapped).toBeInstanceOf(BackendTimeoutError);
    expect((mapped as BackendTimeoutError).timeoutMs).toBe(250);
  });

  it('maps other server replies to BackendError', () => {
    const cause = named('ReplyError', 'WRONGTYPE Operation against a key holding the wrong kind of value');
    const mapped = toLatchkeyError(cause, call('get', 1));
    expect(mapped).toBeInstanceOf(BackendError);
    expect(mapped).not.toBeInstanceOf(BackendUnavailableError);
    expect(mapped.cause).toBe(cause);
  });

  it('passes latchkey errors through', () => {
    const error = new NotFoundError('k');
    expect(toLatchkeyError(error, call('get', 1))).toBe(error);
  });
});

describe('neverWritten', () => {
  it("recognises ioredis' refusals to queue a command offline, wrapped or not", () => {
    const refused = new Error("Stream isn't writeable and enableOfflineQueue options is false");
    expect(neverWritten(refused)).toBe(true);
    expect(neverWritten(toLatchkeyError(refused, call('acquireLock', 1)))).toBe(true);
    expect(neverWritten(new Error("Cluster isn't ready and enableOfflineQueue options is false"))).toBe(true);
  });

  it('recognises error replies of the server: the script did not take the lock', () => {
    for (const message of [
      "READONLY You can't write against a read only replica.",
      'NOSCRIPT No matching script.',
      'MOVED 866 127.0.0.1:7001',
    ]) {
      const reply = named('ReplyError', message);
      expect(neverWritten(reply)).toBe(true);
      expect(neverWritten(toLatchkeyError(reply, call('acquireLock', 1)))).toBe(true);
    }
  });

  it('leaves every other failure as possibly run', () => {
    expect(neverWritten(new BackendTimeoutError('no answer', 1))).toBe(false);
    expect(neverWritten(toLatchkeyError(new Error('Connection is closed.'), call('acquireLock', 1)))).toBe(false);
    expect(neverWritten(named('MaxRetriesPerRequestError', 'Reached the max retries per request limit'))).toBe(false);
  });
});
