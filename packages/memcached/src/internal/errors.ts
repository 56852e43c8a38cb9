import { BackendError, BackendTimeoutError, BackendUnavailableError, type ErrorMapper } from '@latchkey/core';
import { statusText, type Reply } from './protocol.js';
import type { Route } from './router.js';

/** Names the backend in errors and warnings. */
export const BACKEND_NAME = 'MemcachedBackend';

/** memjs's message when its own response timeout fires. */
const RESPONSE_TIMEOUT = 'socket timed out waiting on response.';

/**
 * What memjs reported for a request to one server (the connection failed, or its own
 * response timeout fired), with the server it was for. {@link mapError} turns it into a
 * latchkey error; it never reaches a caller as it is.
 */
export class ServerFailure extends Error {
  /**
   * @param server - `host:port` of the server.
   * @param responseTimeoutMs - memjs's response timeout for that server.
   * @param reported - What memjs reported (an `Error`, or a bare string for a refused SASL login).
   */
  constructor(
    readonly server: string,
    readonly responseTimeoutMs: number,
    readonly reported: unknown,
  ) {
    super(`memcached ${server}: ${reported instanceof Error ? reported.message : String(reported)}`, { cause: reported });
    this.name = 'ServerFailure';
  }
}

/**
 * The runner's error table, memjs's error as `cause`: memjs's response timeout →
 * {@link BackendTimeoutError}; any other `Error` memjs reports is about the connection
 * (refused, reset, closed, not made in time) → {@link BackendUnavailableError}; a refused SASL
 * login (a bare string) and anything else → {@link BackendError}.
 */
export const mapError: ErrorMapper = (error, call) => {
  const message = `${call.backend}: ${call.what} failed: ${error instanceof Error ? error.message : String(error)}`;
  if (!(error instanceof ServerFailure)) return new BackendError(message, { cause: error });
  const cause = error.reported;
  if (cause instanceof Error && cause.message === RESPONSE_TIMEOUT) {
    return new BackendTimeoutError(message, error.responseTimeoutMs, { cause });
  }
  if (cause instanceof Error) return new BackendUnavailableError(message, { cause });
  return new BackendError(message, { cause });
};

/** A typed error for an unexpected response status. */
export function statusError(what: string, route: Route, reply: Reply): BackendError {
  const detail = reply.value.length > 0 && reply.value.length < 200 ? ` (${reply.value.toString('latin1')})` : '';
  return new BackendError(`memcached ${route.channel.name}: ${what} of "${route.dataKey}" failed: ${statusText(reply.status)}${detail}.`);
}
