/**
 * The pg → latchkey error table: the call runner's `ErrorMapper`, and the questions the
 * backend asks of a driver error (did the connection go, may the statement have run).
 */

import { BackendError, BackendTimeoutError, BackendUnavailableError, LatchkeyError, type CallInfo } from '@latchkey/core';

/** Socket errors: the server cannot be reached, or the connection broke. */
const UNREACHABLE_SYSTEM_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ENOTCONN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** SQLSTATEs of a server that is not serving right now (rather than a statement that is wrong). */
const UNAVAILABLE_SQLSTATES = new Set([
  '57P01', // admin_shutdown: the server is stopping and ended the session
  '57P02', // crash_shutdown: another backend crashed, every session is reset
  '57P03', // cannot_connect_now: starting up, or in recovery
  '53300', // too_many_connections
  '08000', // connection_exception
  '08001', // sqlclient_unable_to_establish_sqlconnection
  '08003', // connection_does_not_exist
  '08004', // sqlserver_rejected_establishment_of_sqlconnection
  '08006', // connection_failure
]);

/** SQLSTATEs of a statement the server stopped because time ran out. */
const TIMEOUT_SQLSTATES = new Set([
  '57014', // query_canceled: statement_timeout, or a cancel request
  '55P03', // lock_not_available: lock_timeout
]);

/** pg's own messages for a connection that failed or went away. */
const UNREACHABLE_MESSAGES = [
  'Connection terminated',
  'timeout expired',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable',
  'Cannot use a pool after calling end on the pool',
];

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The error itself, and those an `AggregateError` holds (Node's connect tries each address). */
function causes(error: unknown): unknown[] {
  return error instanceof AggregateError ? [error, ...(error.errors as unknown[])] : [error];
}

/** True when `error` (a driver error, or a latchkey error wrapping one) says the connection failed or went away. */
export function isConnectionFailure(error: unknown): boolean {
  const driverError = error instanceof LatchkeyError ? error.cause : error;
  return causes(driverError).some((candidate) => {
    const code = codeOf(candidate);
    if (code !== undefined && (UNREACHABLE_SYSTEM_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code))) return true;
    const message = messageOf(candidate);
    return UNREACHABLE_MESSAGES.some((fragment) => message.startsWith(fragment));
  });
}

/** True when `error` is the server stopping a statement for time (it did not commit). */
export function isStatementTimeout(error: unknown): boolean {
  const code = codeOf(error instanceof LatchkeyError ? error.cause : error);
  return code !== undefined && TIMEOUT_SQLSTATES.has(code);
}

/**
 * Turns whatever pg rejected with into a latchkey error, the original as `cause`:
 * connection refused, broken or ended, and a server shutting down or full →
 * {@link BackendUnavailableError}; `statement_timeout`, a cancel or `lock_timeout` →
 * {@link BackendTimeoutError}; anything else (a wrong statement, a missing table,
 * permissions) → {@link BackendError}. The `ErrorMapper` of the backend's call runner.
 */
export function toLatchkeyError(error: unknown, call: CallInfo): LatchkeyError {
  if (error instanceof LatchkeyError) return error;
  const code = codeOf(error);
  const text = `${call.backend}: ${call.what} failed: ${messageOf(error)}${code === undefined ? '' : ` (${code})`}`;
  if (isStatementTimeout(error)) return new BackendTimeoutError(text, call.timeoutMs, { cause: error });
  if (isConnectionFailure(error)) return new BackendUnavailableError(text, { cause: error });
  return new BackendError(text, { cause: error });
}
