import {
  BackendError,
  BackendTimeoutError,
  BackendUnavailableError,
  type CallInfo,
  type ErrorMapper,
  type LatchkeyError,
} from '@latchkey/core';

/** Server error codes meaning "the deadline passed". */
const TIMEOUT_CODES = new Set([
  50, // MaxTimeMSExpired
  89, // NetworkTimeout
  202, // NetworkInterfaceExceededTimeLimit
  262, // ExceededTimeLimit
]);

/** Server error codes meaning "no usable server right now". */
const UNAVAILABLE_CODES = new Set([
  6, // HostUnreachable
  7, // HostNotFound
  91, // ShutdownInProgress
  189, // PrimarySteppedDown
  9001, // SocketException
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
]);

/** Driver error classes meaning "the deadline passed". */
const TIMEOUT_NAMES = ['MongoNetworkTimeoutError', 'MongoOperationTimeoutError'];
/** Driver error classes of a client whose topology is closed. */
const CLOSED_NAMES = ['MongoTopologyClosedError', 'MongoNotConnectedError'];
/** Driver error classes meaning "the server cannot be reached" (or the client is closed). */
const UNAVAILABLE_NAMES = [
  'MongoServerSelectionError',
  'MongoNetworkError',
  'MongoTopologyClosedError',
  'MongoNotConnectedError',
  'MongoPoolClosedError',
  'MongoClientClosedError',
];

/**
 * Socket errors the driver sometimes lets through unwrapped (for example EPIPE when the
 * server went away between two writes on one connection).
 */
const UNAVAILABLE_SYSTEM_CODES = new Set([
  'EPIPE',
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ENOTCONN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
const TIMEOUT_SYSTEM_CODES = new Set(['ETIMEDOUT']);

/** E11000: an upsert lost the race to insert the same `_id`. */
export const DUPLICATE_KEY = 11000;
/** FerretDB's answer to a feature it lacks (for example TTL or partial indexes). */
export const NOT_IMPLEMENTED = 238;

/**
 * Names of the classes in `error`'s prototype chain. Matching by name rather than
 * `instanceof` keeps working when the application's client comes from another copy of the
 * driver than the one this package resolves.
 */
function classNames(error: object): string[] {
  const names: string[] = [];
  for (
    let proto: unknown = Object.getPrototypeOf(error);
    proto !== null && proto !== Object.prototype;
    proto = Object.getPrototypeOf(proto)
  ) {
    const ctor = (proto as { constructor?: { name?: unknown } }).constructor;
    if (typeof ctor?.name === 'string') names.push(ctor.name);
  }
  return names;
}

/** The server error code of a driver error (including each write error of a bulk write). */
export function errorCodes(error: unknown): number[] {
  if (typeof error !== 'object' || error === null) return [];
  const codes: number[] = [];
  const { code, writeErrors } = error as { code?: unknown; writeErrors?: unknown };
  if (typeof code === 'number') codes.push(code);
  const list: unknown[] = Array.isArray(writeErrors) ? writeErrors : writeErrors === undefined ? [] : [writeErrors];
  for (const writeError of list) {
    const inner = (writeError as { code?: unknown } | null)?.code;
    if (typeof inner === 'number') codes.push(inner);
  }
  return codes;
}

/** True when every server error in `error` is a duplicate-key error (an upsert race). */
export function isDuplicateKey(error: unknown): boolean {
  const codes = errorCodes(error);
  return codes.length > 0 && codes.every((code) => code === DUPLICATE_KEY);
}

/**
 * The {@link ErrorMapper} of MongoBackend's call runner: turns what a driver call rejected
 * with into a latchkey error, keeping it as `cause`: unreachable server (a failed server
 * selection included) → {@link BackendUnavailableError}, deadline → {@link BackendTimeoutError},
 * anything else → {@link BackendError}. (The runner passes latchkey errors through itself.)
 */
export const toLatchkeyError: ErrorMapper = (error: unknown, call: CallInfo): LatchkeyError => {
  const what = `${call.backend}.${call.what}`;
  const detail = error instanceof Error ? error.message : String(error);
  const layers = unwrap(error);
  const names = layers.flatMap(classNames);
  const codes = layers.flatMap(errorCodes);
  const systemCodes = layers.map((layer) => (layer as { code?: unknown }).code).filter((code): code is string => typeof code === 'string');
  if (
    names.some((name) => TIMEOUT_NAMES.includes(name)) ||
    codes.some((code) => TIMEOUT_CODES.has(code)) ||
    systemCodes.some((code) => TIMEOUT_SYSTEM_CODES.has(code))
  ) {
    return new BackendTimeoutError(`${what} timed out: ${detail}`, call.timeoutMs, { cause: error });
  }
  if (
    names.some((name) => UNAVAILABLE_NAMES.includes(name)) ||
    codes.some((code) => UNAVAILABLE_CODES.has(code)) ||
    systemCodes.some((code) => UNAVAILABLE_SYSTEM_CODES.has(code))
  ) {
    return new BackendUnavailableError(`${what}: the MongoDB server is unavailable: ${detail}`, { cause: error });
  }
  return new BackendError(`${what} failed: ${detail}`, { cause: error });
};

/**
 * True when the driver refused `error`'s call because its topology is closed, which it never
 * reopens by itself (see ClientConnection).
 */
export function isTopologyClosed(error: unknown): boolean {
  return typeof error === 'object' && error !== null && classNames(error).some((name) => CLOSED_NAMES.includes(name));
}

/**
 * `error` and the errors it wraps: a bulk write reports a network failure as a
 * `MongoBulkWriteError` whose `errorResponse` is the `MongoNetworkError`.
 */
function unwrap(error: unknown): object[] {
  const layers: object[] = [];
  let current: unknown = error;
  while (typeof current === 'object' && current !== null && layers.length < 4 && !layers.includes(current)) {
    layers.push(current);
    const { errorResponse, cause } = current as { errorResponse?: unknown; cause?: unknown };
    current = errorResponse instanceof Error ? errorResponse : cause;
  }
  return layers;
}
