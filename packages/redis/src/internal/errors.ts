import { BackendError, BackendTimeoutError, BackendUnavailableError, LatchkeyError, type CallInfo } from '@latchkey/core';

const UNREACHABLE_MESSAGES = [
  "Stream isn't writeable",
  'Connection is closed',
  "Cluster isn't ready",
  'Cluster is ended',
  'None of startup nodes is available',
  'Failed to refresh slots cache',
  'Command aborted due to connection close',
  'No subscriber for the cluster',
  'Connection in subscriber mode',
  // A Cluster command redirected more often than ioredis allows: the slot is moving (a failover).
  'Too many Cluster redirections',
];

const UNREACHABLE_NAMES = new Set(['MaxRetriesPerRequestError', 'ClusterAllFailedError']);

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNABORTED',
]);

/**
 * Server replies that mean "not serving right now" rather than "your command is wrong". A
 * redirection reaches the caller only when it was not followed (the slot is moving).
 */
const UNAVAILABLE_REPLIES = ['LOADING', 'CLUSTERDOWN', 'MASTERDOWN', 'TRYAGAIN', 'READONLY', 'BUSY', 'MOVED', 'ASK'];

/**
 * Turns whatever ioredis rejected with into a latchkey error, the original as `cause`:
 * connection trouble → {@link BackendUnavailableError}, ioredis' own command timeout →
 * {@link BackendTimeoutError}, anything else (a server error reply) → {@link BackendError}.
 * The `ErrorMapper` of the backend's call runner.
 */
export function toLatchkeyError(error: unknown, call: CallInfo): LatchkeyError {
  if (error instanceof LatchkeyError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const text = `${call.backend}: ${call.what} failed: ${message}`;
  if (message === 'Command timed out') return new BackendTimeoutError(text, call.timeoutMs, { cause: error });
  if (isUnreachable(error, message)) return new BackendUnavailableError(text, { cause: error });
  return new BackendError(text, { cause: error });
}

function isUnreachable(error: unknown, message: string): boolean {
  if (error instanceof Error) {
    if (UNREACHABLE_NAMES.has(error.name)) return true;
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) return true;
  }
  if (UNREACHABLE_MESSAGES.some((fragment) => message.includes(fragment))) return true;
  const word = message.split(' ', 1)[0] ?? '';
  return UNAVAILABLE_REPLIES.includes(word);
}

/** ioredis' refusals of a command it did not write (no offline queue): the command never reached Redis. */
const NOT_WRITTEN_MESSAGES = ["Stream isn't writeable", "Cluster isn't ready"];

/**
 * True when `error` (or the driver error it wraps) proves the acquire script took nothing, so
 * nothing needs undoing: ioredis never wrote the command, or the server answered it with an
 * error reply (ioredis' `ReplyError`: refused before it ran — `READONLY`, `NOSCRIPT`, `MOVED`,
 * `LOADING`… — or failed before its last write, the one that takes the lock).
 */
export function neverWritten(error: unknown): boolean {
  const driverError = error instanceof LatchkeyError ? error.cause : error;
  if (!(driverError instanceof Error)) return false;
  if (driverError.name === 'ReplyError') return true;
  return NOT_WRITTEN_MESSAGES.some((fragment) => driverError.message.startsWith(fragment));
}
