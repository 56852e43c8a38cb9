import type { Backend } from '@latchkey/core';
import type { FaultOptions, ServerAddress } from '../conformance-options.js';

/** `KeyValueStore`'s default `operationTimeoutMs`: the deadline of a backend that declares none. */
export const STORE_BACKSTOP_MS = 15_000;

/** How long a check lets a call run past its bound before calling it hung. */
export const HANG_GRACE_MS = 2000;

/** What the `faults` group's checks share, resolved from {@link FaultOptions}. */
export interface FaultEnvironment {
  readonly server: ServerAddress;
  readonly createThrough: (address: ServerAddress) => Promise<Backend>;
  /** The deadline every call is held to: the backend's `callDeadlineMs`, or the store backstop. */
  readonly deadlineMs: number;
  /** Where {@link deadlineMs} comes from, for check names and failure messages. */
  readonly deadlineSource: 'callDeadlineMs' | 'the KeyValueStore backstop';
  readonly slackMs: number;
  /** The recovery bound the options give; undefined: derived per check from its round trips. */
  readonly recoveryMs: number | undefined;
  /** Time limit a fault check needs (setup, the fault, recovery, cleanup). */
  readonly checkTimeLimitMs: number;
}

/**
 * Validates the `faults` option and reads the deadline of a backend built by `createThrough`
 * pointed straight at the server (no proxy yet), so a wrong address fails while collecting.
 * `destroy` cleans up after that backend.
 * @throws {TypeError} for a malformed option, or when `createThrough` returns no backend.
 */
export async function resolveFaultEnvironment(
  options: FaultOptions<Backend>,
  destroy: (backend: Backend) => Promise<void>,
): Promise<FaultEnvironment> {
  if (typeof options !== 'object' || options === null || typeof options.createThrough !== 'function') {
    throw new TypeError(
      'describeBackendConformance: options.faults.createThrough must be a function that builds a backend for an address.',
    );
  }
  const server = parseServerAddress(options.server);
  const createThrough = async (address: ServerAddress): Promise<Backend> => {
    const backend = await options.createThrough(address);
    if (typeof backend !== 'object' || backend === null) {
      throw new TypeError(`faults.createThrough() returned ${String(backend)}, not a backend.`);
    }
    return backend;
  };
  const probe = await createThrough(server);
  let declared: number | undefined;
  try {
    declared = probe.capabilities.callDeadlineMs;
  } finally {
    await destroy(probe);
    await probe.close();
  }
  const hasDeadline = typeof declared === 'number' && Number.isFinite(declared) && declared >= 0;
  const deadlineMs = hasDeadline ? (declared as number) : STORE_BACKSTOP_MS;
  const slackMs = nonNegative(options.slackMs, 'slackMs') ?? 250;
  const recoveryMs = nonNegative(options.recoveryMs, 'recoveryMs');
  // Round trips are measured per check; the time limit assumes up to a second of them.
  const assumedRoundTrips = 1000;
  const worstRecoveryMs = recoveryMs ?? defaultRecoveryMs(deadlineMs, assumedRoundTrips / 4);
  return {
    server,
    createThrough,
    deadlineMs,
    deadlineSource: hasDeadline ? 'callDeadlineMs' : 'the KeyValueStore backstop',
    slackMs,
    recoveryMs,
    checkTimeLimitMs: 10_000 + deadlineMs + assumedRoundTrips + slackMs + HANG_GRACE_MS + worstRecoveryMs,
  };
}

/**
 * How long recovery may take by default: a reconnect may have to wait out one connect attempt
 * begun during the fault (up to a deadline) and then the driver's next backoff step, so two
 * deadlines, two seconds of backoff, and the round trips of the set and get themselves.
 */
export function defaultRecoveryMs(deadlineMs: number, roundTripMs: number): number {
  return 2 * deadlineMs + 2000 + 4 * roundTripMs;
}

/**
 * `{ host, port }` or `'host:port'` (`'[::1]:6379'`) as a {@link ServerAddress}.
 * @throws {TypeError} when it is neither.
 */
export function parseServerAddress(server: ServerAddress | string): ServerAddress {
  let host: unknown;
  let port: unknown;
  if (typeof server === 'string') {
    const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(server.trim());
    host = match?.[1] ?? match?.[2];
    port = match === null ? undefined : Number(match[3]);
  } else if (typeof server === 'object' && server !== null) {
    ({ host, port } = server);
  }
  if (typeof host !== 'string' || host === '' || typeof port !== 'number' || !Number.isInteger(port) || port <= 0 || port > 65_535) {
    throw new TypeError(`options.faults.server must be { host, port } or 'host:port', got ${JSON.stringify(server)}.`);
  }
  return { host, port };
}

function nonNegative(value: number | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`options.faults.${name} must be a non-negative number of ms, got ${String(value)}.`);
  }
  return value;
}
