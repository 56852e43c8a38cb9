import { BackendError, BackendTimeoutError, BackendUnavailableError, ValidationError, type CallInfo } from '@latchkey/core';
import { describe, expect, it } from 'vitest';
import { isConnectionFailure, isStatementTimeout, toLatchkeyError } from '../../src/internal/errors.js';

const call: CallInfo = { backend: 'PostgresBackend', what: 'get', sent: true, timeoutMs: 2_000 };

/** An error shaped like pg's DatabaseError (a server error reply) with a SQLSTATE. */
function serverError(code: string, message = `server says ${code}`): Error {
  return Object.assign(new Error(message), { code, severity: 'ERROR' });
}

/** An error shaped like a Node socket error. */
function socketError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:1`), { code, syscall: 'connect' });
}

describe('toLatchkeyError', () => {
  it.each([
    ['a refused connection', socketError('ECONNREFUSED')],
    ['a reset connection', socketError('ECONNRESET')],
    ['an unknown host', socketError('ENOTFOUND')],
    ['every address refused (AggregateError)', new AggregateError([socketError('ECONNREFUSED'), socketError('ECONNREFUSED')], 'x')],
    ['a connection pg saw end', new Error('Connection terminated unexpectedly')],
    ['a connect that timed out', new Error('Connection terminated due to connection timeout')],
    ['a client connect that timed out', new Error('timeout expired')],
    ['a pool that could not get a connection in time', new Error('timeout exceeded when trying to connect')],
    ['a client broken earlier', new Error('Client has encountered a connection error and is not queryable')],
    ['an ended pool', new Error('Cannot use a pool after calling end on the pool')],
    ['a server shutting down (57P01)', serverError('57P01', 'terminating connection due to administrator command')],
    ['a server starting up (57P03)', serverError('57P03', 'the database system is starting up')],
    ['a full server (53300)', serverError('53300', 'sorry, too many clients already')],
    ['a connection failure (08006)', serverError('08006')],
  ])('maps %s to BackendUnavailableError, the driver error as cause', (_, error) => {
    const mapped = toLatchkeyError(error, call);
    expect(mapped).toBeInstanceOf(BackendUnavailableError);
    expect(mapped.cause).toBe(error);
    expect(mapped.message).toMatch(/^PostgresBackend: get failed: /);
  });

  it.each([
    ['statement_timeout (57014)', serverError('57014', 'canceling statement due to statement timeout')],
    ['lock_timeout (55P03)', serverError('55P03', 'canceling statement due to lock timeout')],
  ])('maps %s to BackendTimeoutError with the call deadline', (_, error) => {
    const mapped = toLatchkeyError(error, call);
    expect(mapped).toBeInstanceOf(BackendTimeoutError);
    expect((mapped as BackendTimeoutError).timeoutMs).toBe(2_000);
    expect(mapped.cause).toBe(error);
  });

  it.each([
    ['a missing table (42P01)', serverError('42P01', 'relation "x" does not exist')],
    ['a permission error (42501)', serverError('42501', 'permission denied for table x')],
    ['a failed login (28P01)', serverError('28P01', 'password authentication failed')],
    ['a plain Error', new Error('something else')],
    ['a thrown string', 'not even an Error'],
  ])('maps %s to BackendError, keeping the driver error and SQLSTATE', (_, error) => {
    const mapped = toLatchkeyError(error, call);
    expect(mapped.constructor).toBe(BackendError);
    expect(mapped.cause).toBe(error);
    const code = (error as { code?: string }).code;
    if (code !== undefined) expect(mapped.message).toContain(`(${code})`);
  });

  it('passes latchkey errors through unchanged', () => {
    const error = new ValidationError('already ours');
    expect(toLatchkeyError(error, call)).toBe(error);
  });
});

describe('isConnectionFailure and isStatementTimeout', () => {
  it('look through a latchkey error at its cause', () => {
    const unavailable = toLatchkeyError(socketError('ECONNRESET'), call);
    const timeout = toLatchkeyError(serverError('57014'), call);
    expect([isConnectionFailure(unavailable), isStatementTimeout(unavailable)]).toEqual([true, false]);
    expect([isConnectionFailure(timeout), isStatementTimeout(timeout)]).toEqual([false, true]);
  });

  it('do not take a server error about the statement for either', () => {
    const error = serverError('23505', 'duplicate key value violates unique constraint');
    expect([isConnectionFailure(error), isStatementTimeout(error)]).toEqual([false, false]);
  });
});
