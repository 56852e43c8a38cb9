import {
  BackendClosedError,
  BackendError,
  backoffRetry,
  CallRunner,
  checkExpiresAt,
  checkLease,
  checkStoredEntries,
  checkStoredKey,
  checkStoredKeys,
  checkStoredValue,
  LockWaiters,
  type AcquireLockOptions,
  type Backend,
  type BackendBatchWriteOptions,
  type BackendCapabilities,
  type BackendCompareAndSetOptions,
  type BackendDeleteOptions,
  type BackendWriteOptions,
  type Call,
  type DeleteOutcome,
  type KeyMangler,
  type Lease,
  type StoredValue,
  type WriteOutcome,
} from '@latchkey/core';
import { openChannels, type ServerChannel } from './internal/channel.js';
import { BACKEND_NAME, mapError, statusError } from './internal/errors.js';
import { ALREADY_EXPIRED, exptimeFor } from './internal/expiry.js';
import { Generations } from './internal/generations.js';
import { KeyScheme } from './internal/keys.js';
import { MemcachedLocks } from './internal/locks.js';
import type { MemjsClientInternals } from './internal/memjs-internals.js';
import { encodeRequest, requests, Status, withItemFlags, type Reply, type Request } from './internal/protocol.js';
import { Router, type Route } from './internal/router.js';
import {
  buildClient,
  ITEM_OVERHEAD_BYTES,
  resolveOptions,
  type MemcachedBackendOptions,
  type ResolvedOptions,
} from './memcached-backend-options.js';

/**
 * A latchkey backend on memcached through memjs: one or many servers (keys spread by a
 * ketama consistent-hash ring), pipelined batch calls, whole-second expiry rounded up, and
 * distributed lease locks whose locked writes are fenced by memcached's CAS values.
 *
 * Guarantees and limits (see the README for the details):
 * - memcached is a cache: no durability, and it may evict any item (values, lock items, fence
 *   counters) under memory pressure or lose everything on restart. A locked write after its
 *   lock item was evicted, flushed or lost in a restart is refused (`lease-lost`).
 * - Every key is made valid before it reaches a server (at most 250 bytes of printable ASCII),
 *   and distinct keys stay distinct; values larger than `capabilities.maxValueBytes` fail with
 *   `ValueTooLargeError` before any I/O.
 * - Every call settles within `operationTimeoutMs` with `BackendTimeoutError`, or fails with
 *   `BackendUnavailableError` when a server cannot be reached; after a server comes back the
 *   backend reconnects by itself. After `close()` every call rejects with `BackendClosedError`.
 *
 * @example
 * const backend = new MemcachedBackend({ servers: '127.0.0.1:11211', keyPrefix: 'app:' })
 * await store.configure(backend, { ttlMs: 60_000 })
 */
export class MemcachedBackend implements Backend {
  readonly capabilities: BackendCapabilities;
  /**
   * The backend's preferred key mangler (used by a store configured without one): keeps
   * short keys of printable ASCII (not starting with `#` or `~`) readable and replaces any
   * other key by `#` + its SHA-256; distinct keys never share a mangled key.
   */
  readonly keyMangler: KeyMangler;

  readonly #options: ResolvedOptions;
  readonly #client: MemjsClientInternals;
  readonly #ownsClient: boolean;
  readonly #channels: readonly ServerChannel[];
  readonly #router: Router;
  readonly #calls: CallRunner;
  readonly #protocol: MemcachedLocks;
  readonly #locks: LockWaiters;
  readonly #noExpiry: ReadonlySet<string>;
  readonly #maxValueBytes: number;
  readonly #generations = new Generations();
  #closing: Promise<void> | undefined;

  /** @throws {ValidationError} for invalid options (see {@link MemcachedBackendOptions}). */
  constructor(options: MemcachedBackendOptions) {
    const resolved = resolveOptions(options);
    this.#options = resolved;
    const keys = new KeyScheme(resolved.keyPrefix);
    this.keyMangler = keys.mangler;
    this.#ownsClient = resolved.client === undefined;
    this.#client = (resolved.client ?? buildClient(resolved)) as unknown as MemjsClientInternals;
    this.#channels = openChannels(this.#client, resolved.operationTimeoutMs);
    this.#router = new Router(this.#channels, keys);
    this.#calls = new CallRunner({ name: BACKEND_NAME, timeoutMs: resolved.operationTimeoutMs, mapError });
    this.#protocol = new MemcachedLocks(this.#router, this.#calls, this.#generations);
    // memcached cannot announce releases to other processes: waiters poll.
    this.#locks = new LockWaiters({ name: BACKEND_NAME, protocol: this.#protocol, retry: backoffRetry({ minMs: 5, maxMs: 100 }) });
    this.#noExpiry = new Set(resolved.noExpiryKeys.flatMap((key) => [key, keys.mangler(key)]));
    this.#maxValueBytes = resolved.itemSizeLimit - ITEM_OVERHEAD_BYTES;
    this.capabilities = Object.freeze({
      lockScope: 'distributed',
      atomicLeaseWrites: true,
      fencingTokens: true,
      ttlResolutionMs: 1000,
      minLeaseMs: 2000,
      maxValueBytes: this.#maxValueBytes,
      mayEvict: true,
      callDeadlineMs: resolved.operationTimeoutMs,
    });
  }

  /** The prefix of every stored key. */
  get keyPrefix(): string {
    return this.#options.keyPrefix;
  }

  /** The servers (`host:port`) keys are spread over, in the order configured. */
  get servers(): readonly string[] {
    return this.#channels.map((channel) => channel.name);
  }

  /** The server (`host:port`) that holds backend key `key` and its lock. */
  serverFor(key: string): string {
    checkStoredKey(key);
    return this.#router.route(key).channel.name;
  }

  get(key: string): Promise<StoredValue | undefined> {
    return this.#run('get', async () => {
      const route = this.#route(key);
      const [reply, generation] = (await route.channel.send([requests.get(route.dataKey)], this.#generations.key(route))) as [Reply, Reply];
      return readValue(route, reply, this.#generations.observe(route, generation));
    });
  }

  getMany(keys: readonly string[]): Promise<(StoredValue | undefined)[]> {
    return this.#run('getMany', async () => {
      checkStoredKeys(keys);
      const routes = keys.map((key) => this.#router.route(key));
      if (routes.length === 0) return [];
      const unique = uniqueRoutes(routes);
      const found = new Map<string, StoredValue | undefined>();
      await Promise.all(
        [...Router.byChannel(unique)].map(async ([channel, group]) => {
          const first = group[0] as Route;
          const replies = await channel.send(
            group.map((route) => requests.get(route.dataKey)),
            this.#generations.key(first),
          );
          const current = this.#generations.observe(first, replies[group.length] as Reply);
          group.forEach((route, index) => found.set(route.dataKey, readValue(route, replies[index] as Reply, current)));
        }),
      );
      // A key asked for twice gets two buffers: callers may change what they are given.
      const handedOut = new Set<string>();
      return routes.map((route) => {
        const value = found.get(route.dataKey);
        if (value === undefined || !handedOut.has(route.dataKey)) {
          handedOut.add(route.dataKey);
          return value;
        }
        return value.slice();
      });
    });
  }

  set(key: string, value: StoredValue, options: BackendWriteOptions = {}): Promise<WriteOutcome> {
    return this.#run('set', async (call) => {
      const route = this.#route(key);
      checkStoredValue(value, this.#maxValueBytes, key);
      checkExpiresAt(options.expiresAt);
      const exptime = this.#exptime(route.key, options.expiresAt);
      const { lease } = options;
      if (lease !== undefined) {
        checkLease(lease);
        return lease.key === key ? this.#protocol.set(route, value, exptime, lease, call) : 'lease-lost';
      }
      await this.#writeCurrent([route], (_, flags) => this.#writeRequest(route, value, exptime, flags), call);
      return 'written';
    });
  }

  setMany(entries: readonly (readonly [string, StoredValue])[], options: BackendBatchWriteOptions = {}): Promise<void> {
    return this.#run('setMany', async (call) => {
      checkStoredEntries(entries, this.#maxValueBytes);
      const { expiresAt } = options;
      checkExpiresAt(expiresAt);
      const latest = new Map<string, { route: Route; value: StoredValue }>();
      for (const [key, value] of entries) {
        const route = this.#router.route(key);
        latest.delete(route.dataKey);
        latest.set(route.dataKey, { route, value });
      }
      const writes = [...latest.values()];
      await Promise.all(
        [...Router.byChannel(writes.map(({ route }) => route))].map(([, group]) =>
          this.#writeCurrent(
            group,
            (route, flags) =>
              this.#writeRequest(
                route,
                (latest.get(route.dataKey) as { value: StoredValue }).value,
                this.#exptime(route.key, expiresAt),
                flags,
              ),
            call,
          ),
        ),
      );
    });
  }

  delete(key: string, options: BackendDeleteOptions = {}): Promise<DeleteOutcome> {
    return this.#run('delete', async (call) => {
      const route = this.#route(key);
      const { lease } = options;
      if (lease !== undefined) {
        checkLease(lease);
        return lease.key === key ? this.#protocol.delete(route, lease, call) : 'lease-lost';
      }
      // Reading first tells a stored value from a lock's placeholder (which counts as missing).
      const [current, deleted, generation] = (await route.channel.send(
        [requests.get(route.dataKey), requests.delete(route.dataKey)],
        this.#generations.key(route),
      )) as [Reply, Reply, Reply];
      if (deleted.status !== Status.ok && deleted.status !== Status.notFound) throw statusError('delete', route, deleted);
      const existed = readValue(route, current, this.#generations.observe(route, generation)) !== undefined;
      return deleted.status === Status.ok && existed ? 'deleted' : 'missing';
    });
  }

  deleteMany(keys: readonly string[]): Promise<void> {
    return this.#run('deleteMany', async () => {
      checkStoredKeys(keys);
      const routes = uniqueRoutes(keys.map((key) => this.#router.route(key)));
      await Promise.all(
        [...Router.byChannel(routes)].map(async ([channel, group]) => {
          const replies = await channel.send(group.map((route) => requests.delete(route.dataKey)));
          group.forEach((route, index) => {
            const reply = replies[index] as Reply;
            if (reply.status !== Status.ok && reply.status !== Status.notFound) throw statusError('deleteMany', route, reply);
          });
        }),
      );
    });
  }

  /**
   * Stores `value` only if the stored bytes are exactly `expected`, with memcached's CAS: a
   * `get` (which returns the item's CAS value), a byte compare here, then a `set` carrying that
   * CAS, which the server refuses if the item changed since the `get`. Two round trips. A
   * refused `set` reads again: a lock taken on the key bumps the item's CAS without changing
   * its bytes, so only a changed value (or a missing one) answers `false`. The new value's
   * expiry is rounded up to whole seconds, like every write.
   * @throws {BackendError} when the item kept changing under 8 tries in a row.
   */
  compareAndSet(key: string, expected: StoredValue, value: StoredValue, options: BackendCompareAndSetOptions = {}): Promise<boolean> {
    return this.#run('compareAndSet', async (call) => {
      const route = this.#route(key);
      checkStoredValue(expected, undefined, key);
      checkStoredValue(value, this.#maxValueBytes, key);
      checkExpiresAt(options.expiresAt);
      for (let race = 0; race < MAX_CAS_RACES; race++) {
        call.check();
        const [current, generation] = (await route.channel.send([requests.get(route.dataKey)], this.#generations.key(route))) as [
          Reply,
          Reply,
        ];
        const flags = this.#generations.observe(route, generation);
        const stored = readValue(route, current, flags);
        // A value that reads as current was written under `flags`, so the counter exists.
        if (stored === undefined || flags === undefined || !sameBytes(stored, expected)) return false;
        const exptime = this.#exptime(route.key, options.expiresAt);
        const write =
          exptime === ALREADY_EXPIRED
            ? requests.delete(route.dataKey, current.cas)
            : requests.set(route.dataKey, value, flags, exptime, current.cas);
        call.check();
        const [reply] = (await route.channel.send([write])) as [Reply];
        if (reply.status === Status.ok) return true;
        if (reply.status !== Status.exists && reply.status !== Status.notFound) throw statusError('compareAndSet', route, reply);
      }
      throw new BackendError(
        `memcached ${route.channel.name}: compareAndSet of "${route.dataKey}" kept losing races; gave up after ${MAX_CAS_RACES} tries.`,
      );
    });
  }

  /**
   * Removes every value of this key prefix on every server, and nothing else: it starts a new
   * generation (an `incr` of each server's `<prefix>~gen` counter, one round trip to every
   * server in parallel), after which every value written under an older one reads as missing.
   * No `flush_all`: other prefixes, lock items, placeholders and fence counters stay, so leases
   * keep their exclusion and a held lease still writes. The old values stay in memory until
   * they expire or memcached evicts them. A write running while the clear runs may survive it;
   * one that starts after the clear resolved is never hidden by it.
   */
  clear(): Promise<void> {
    return this.#run('clear', async () => {
      await Promise.all(this.#channels.map((channel) => this.#generations.advance(this.#router.serverRoute(channel))));
    });
  }

  acquireLock(key: string, options: AcquireLockOptions): Promise<Lease | undefined> {
    return this.#locks.acquire(key, options);
  }

  releaseLock(lease: Lease): Promise<boolean> {
    return this.#locks.release(lease);
  }

  extendLock(lease: Lease, leaseMs: number): Promise<boolean> {
    return this.#locks.extend(lease, leaseMs);
  }

  /**
   * Ends lock waits (with `BackendClosedError`), gives back every lease this backend still
   * holds, settles running calls, and closes the connections when the backend built its own
   * client (a client given in the options stays open). Every call made after it started
   * rejects with `BackendClosedError`. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    // Gives back held leases first, while the connections still work.
    await this.#locks.close();
    this.#calls.close();
    for (const channel of this.#channels) channel.clock.stop();
    if (this.#ownsClient) {
      this.#client.close();
      await Promise.all(this.#channels.map((channel) => channel.destroySockets()));
    }
  }

  #run<T>(what: string, work: (call: Call) => Promise<T>): Promise<T> {
    if (this.#locks.closed) return Promise.reject(closedError(what));
    return this.#calls.run(what, work);
  }

  #route(key: string): Route {
    checkStoredKey(key);
    return this.#router.route(key);
  }

  /** The exptime of a write of `key`, applying `defaultTtlMs` unless the key is exempt. */
  #exptime(key: string, expiresAt: number | undefined): number {
    const now = Date.now();
    const { defaultTtlMs } = this.#options;
    const effective = expiresAt ?? (defaultTtlMs === undefined || this.#noExpiry.has(key) ? undefined : now + defaultTtlMs);
    return exptimeFor(effective, now);
  }

  #writeRequest(route: Route, value: Uint8Array, exptime: number, flags: number): Request {
    // A value that is already expired must not be readable afterwards: remove the key.
    return exptime === ALREADY_EXPIRED ? requests.delete(route.dataKey) : requests.set(route.dataKey, value, flags, exptime);
  }

  /**
   * Sends the writes of `group` (routes of one server) under the generation last seen on that
   * server with a read of its generation counter right behind them in the same batch. The
   * server runs the batch in order and the counter only grows, so an unchanged counter means
   * the writes landed before any later clear: one round trip. A moved counter (a clear by any
   * process since this backend last looked) sends the writes again under the new generation.
   */
  async #writeCurrent(group: readonly Route[], write: (route: Route, flags: number) => Request, call: Call): Promise<void> {
    const server = group[0] as Route;
    const seen = this.#generations.seen(server);
    // Encoded before this returns to the caller (who may then reuse the value buffers): the
    // frames hold their own copy of the bytes, and a second send is built from them.
    const frames = group.map((route) => encodeRequest(write(route, seen ?? 0), 0));
    let flags = seen ?? (await this.#generations.flags(server));
    let batch = seen === undefined ? frames.map((frame) => withItemFlags(frame, flags)) : frames;
    for (let race = 0; race < MAX_CAS_RACES; race++) {
      call.check();
      const replies = await server.channel.sendFrames(batch, this.#generations.key(server));
      group.forEach((route, index) => checkWrite(route, replies[index] as Reply));
      const now = this.#generations.observe(server, replies[group.length] as Reply) ?? (await this.#generations.flags(server));
      if (now === flags) return;
      flags = now;
      // The channel owns the frames it sent: the next send gets copies.
      batch = frames.map((frame) => withItemFlags(frame, now));
    }
    throw new BackendError(
      `memcached ${server.channel.name}: a write of "${server.dataKey}" kept meeting clears; gave up after ${MAX_CAS_RACES} tries.`,
    );
  }
}

/** How often compareAndSet reads again after its CAS write was refused. */
const MAX_CAS_RACES = 8;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

function closedError(what: string): BackendClosedError {
  return new BackendClosedError(`${BACKEND_NAME} is closed: ${what} was not sent.`);
}

/**
 * The value of a data item's reply; missing when the item is missing, a lock's placeholder, or
 * of another generation than `current` (the server's, `undefined` when its counter is missing).
 */
function readValue(route: Route, reply: Reply, current: number | undefined): StoredValue | undefined {
  if (reply.status === Status.notFound) return undefined;
  if (reply.status !== Status.ok) throw statusError('get', route, reply);
  if (reply.flags !== current) return undefined;
  return new Uint8Array(reply.value);
}

/** A set must succeed; a delete standing in for an already-expired write may find nothing. */
function checkWrite(route: Route, reply: Reply): void {
  if (reply.status === Status.ok || reply.status === Status.notFound) return;
  throw statusError('set', route, reply);
}

function uniqueRoutes(routes: readonly Route[]): Route[] {
  const seen = new Map<string, Route>();
  for (const route of routes) if (!seen.has(route.dataKey)) seen.set(route.dataKey, route);
  return [...seen.values()];
}
