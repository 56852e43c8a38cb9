import type { Backend } from '@latchkey/core';

/**
 * The behaviour groups of the suite; pass some of them as {@link ConformanceOptions.only} to
 * run just those.
 *
 * - `data` — the backend's data calls, called directly (values, batches, delete outcomes,
 *   capabilities, close).
 * - `ttl` — expiry, directly and through `KeyValueStore`, paced by `capabilities.ttlResolutionMs`.
 * - `locks` — the backend's own lease locks, called directly (applies when the backend
 *   implements `acquireLock`/`releaseLock`/`extendLock`).
 * - `store` — every `KeyValueStore` behaviour of the API contract over the backend
 *   (configure, values, batches, delete, locked writes, `locking: false`, proxies, key
 *   manglers, `getOrCreate`, close, the registry).
 * - `store-locks` — `KeyValueStoreLock` over the backend (exclusion, try/wait/abort, lease
 *   expiry, release, extend, fencing, `expired`, `autoExtend`, `signal`).
 * - `bad-input` — invalid keys, oversized values, unencodable values, corrupt stored bytes and
 *   bad options, all rejected with typed errors before any I/O.
 * - `faults` — network faults between the backend and its server (pause, black hole, reset,
 *   refused connections) through the suite's own TCP proxy: every call settles within the
 *   declared deadline with a typed error, and the backend works again once the fault is lifted
 *   (applies when {@link ConformanceOptions.faults} is given).
 */
export type ConformanceGroup = 'data' | 'ttl' | 'locks' | 'store' | 'store-locks' | 'bad-input' | 'faults';

/** Every group, in the order the suite registers them. */
export const CONFORMANCE_GROUPS: readonly ConformanceGroup[] = Object.freeze([
  'data',
  'ttl',
  'locks',
  'store',
  'store-locks',
  'bad-input',
  'faults',
]);

/** A TCP server address: `{ host, port }`. */
export interface ServerAddress {
  /** A host name or IP address (IPv6 without brackets). */
  readonly host: string;
  /** The TCP port. */
  readonly port: number;
}

/**
 * What the `faults` group needs to put its own TCP proxy between a networked backend and its
 * server: where the server is, and how to build a backend that connects somewhere else.
 */
export interface FaultOptions<B extends Backend = Backend> {
  /**
   * The server the backend under test talks to: `{ host, port }`, or `'host:port'`
   * (`'[::1]:6379'` for IPv6). The suite starts a proxy in front of it for each check.
   */
  readonly server: ServerAddress | string;
  /**
   * Builds a fresh, isolated backend (as {@link ConformanceOptions.create} does) that connects
   * to `address` — the proxy's loopback address — instead of the server. Its declared
   * `capabilities.callDeadlineMs` is the deadline the checks hold it to (without one, the
   * `KeyValueStore` backstop, 15 s). {@link ConformanceOptions.destroy} cleans up after it.
   */
  readonly createThrough: (address: ServerAddress) => B | Promise<B>;
  /**
   * Extra time, in ms, a call may take to settle beyond its deadline plus two measured round
   * trips through the proxy (timers firing late on a loaded machine; event-loop lag of the test
   * process is allowed on top).
   * @default 250
   */
  readonly slackMs?: number;
  /**
   * How long after a fault is lifted a set/get round trip must succeed, in ms.
   * @default 2 × the deadline + 2000 + 4 measured round trips
   */
  readonly recoveryMs?: number;
}

/** Options of {@link describeBackendConformance} and the per-group `describe…Conformance` functions. */
export interface ConformanceOptions<B extends Backend = Backend> {
  /**
   * Builds a fresh, **isolated** backend: every call must give a backend that sees none of the
   * keys or locks of backends from earlier calls (for a server: a unique key prefix,
   * database or collection per call). Called once while collecting (to read the declared
   * capabilities) and then for every check. Every backend it returns must declare the same
   * capabilities.
   */
  readonly create: () => B | Promise<B>;
  /**
   * Cleans up after a backend from {@link create} when its check ends (e.g. drops its key
   * prefix). Called before the suite closes the backend; a check may already have closed it
   * (the close checks do), so do cleanup that needs a connection with a client of your own.
   */
  readonly destroy?: (backend: B) => void | Promise<void>;
  /**
   * A second handle on the **same** data and locks as `backend` (for a server: a new client
   * with the same prefix), used by the cross-instance checks (mutual exclusion and
   * `getOrCreate` across store instances) and by "close gives back the leases it holds",
   * which is reported not applicable without it. The suite closes it after the check.
   * @default the same backend instance (two stores then share one backend object)
   */
  readonly createPeer?: (backend: B) => Backend | Promise<Backend>;
  /** Run only these behaviour groups. @default every group */
  readonly only?: readonly ConformanceGroup[];
  /**
   * The short lease used by lock checks, in ms. It must be at least the backend's
   * `capabilities.minLeaseMs`; lock checks wait a few multiples of it.
   * @default max(capabilities.minLeaseMs, 300)
   */
  readonly leaseMs?: number;
  /**
   * Extra time, in ms, timing checks allow on top of the backend's measured round trip (for
   * example "an aborted wait settles within ~50 ms plus a round trip").
   * @default 50
   */
  readonly slackMs?: number;
  /**
   * How many checks may run at once. Every check has its own backend, so they are independent;
   * running several at once shortens runs dominated by waits (short leases, coarse expiry),
   * at the cost of less precise timing. Above 1, checks are registered with `it.concurrent`
   * and vitest's `maxConcurrency` (default 5) caps this too.
   * @default 1
   */
  readonly concurrency?: number;
  /**
   * Time limit of each check, in ms.
   * @default 20 000 plus 20 leases plus 10 × `capabilities.ttlResolutionMs`
   */
  readonly testTimeoutMs?: number;
  /**
   * For a backend that keeps at most this many entries and drops the least recently used one
   * (read or written) first — `MemoryBackend` created with `maxEntries` — that bound: the
   * `data` group then checks that it declares `mayEvict`, keeps every entry up to the bound, and
   * which entry a write beyond it drops. Each eviction check writes `maxEntries` + 2 entries, so
   * keep it small (the `data` group also stores 1,000 keys at once: at least 1,100 for it).
   * An integer >= 3. Absent: eviction is not checked (the checks are reported not applicable).
   */
  readonly maxEntries?: number;
  /**
   * Runs the `faults` group: the suite puts its own TCP proxy in front of this server and
   * pauses, black-holes, resets and refuses it under every call. Without it the group is
   * reported not applicable.
   */
  readonly faults?: FaultOptions<B>;
}
