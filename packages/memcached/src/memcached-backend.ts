import {
  InvalidKeyError,
  ValidationError,
  ValueTooLargeError,
  type AcquireLockOptions,
  type Backend,
  type BackendBatchWriteOptions,
  type BackendCapabilities,
  type BackendDeleteOptions,
  type BackendWriteOptions,
  type DeleteOutcome,
  type KeyMangler,
  type Lease,
  type StoredValue,
  type WriteOutcome,
} from '@latchkey/core';
import { Client, Server } from 'memjs';
import { ServerChannel } from './internal/channel.js';
import { ALREADY_EXPIRED, exptimeFor } from './internal/expiry.js';
import { KeyScheme } from './internal/keys.js';
import { LeaseLocks, statusError } from './internal/lease-locks.js';
import { LockWaitQueue } from './internal/lock-wait-queue.js';
import type { MemjsClientInternals, MemjsServer } from './internal/memjs-internals.js';
import { OperationRunner, type Operation } from './internal/operation.js';
import { ItemFlags, requests, Status, type Reply, type Request } from './internal/protocol.js';
import { Router, type Route } from './internal/router.js';
import { ITEM_OVERHEAD_BYTES, resolveOptions, type MemcachedBackendOptions, type ResolvedOptions } from './memcached-backend-options.js';

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
 *   backend reconnects by itself.
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
  readonly #ops: OperationRunner;
  readonly #locks = new LeaseLocks();
  readonly #waiters: LockWaitQueue<Lease>;
  readonly #noExpiry: ReadonlySet<string>;
  readonly #maxValueBytes: number;
  #closed = false;

  /** @throws {ValidationError} for invalid options (see {@link MemcachedBackendOptions}). */
  constructor(options: MemcachedBackendOptions) {
    const resolved = resolveOptions(options);
    this.#options = resolved;
    const keys = new KeyScheme(resolved.keyPrefix);
    this.keyMangler = keys.mangler;
    this.#ownsClient = resolved.client === undefined;
    this.#client = (resolved.client ?? buildClient(resolved)) as unknown as MemjsClientInternals;
    const nextOpaque = (): number => {
      this.#client.incrSeq();
      // memjs wraps its sequence into a signed 32-bit number; the protocol's opaque is unsigned.
      return this.#client.seq >>> 0;
    };
    this.#channels = this.#client.servers.map(
      (server: MemjsServer) => new ServerChannel(server, nextOpaque, serverTimeoutMs(server, resolved)),
    );
    const names = new Set(this.#channels.map((channel) => channel.name));
    if (names.size !== this.#channels.length) throw new ValidationError('MemcachedBackend: the client lists a server twice.');
    this.#router = new Router(this.#channels, keys);
    this.#ops = new OperationRunner(resolved.operationTimeoutMs);
    this.#waiters = new LockWaitQueue<Lease>((lease) => this.#abandon(lease));
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
    checkKey(key);
    return this.#router.route(key).channel.name;
  }

  get(key: string): Promise<StoredValue | undefined> {
    return this.#run('get', async () => {
      const route = this.#route(key);
      const [reply] = (await route.channel.send([requests.get(route.dataKey)])) as [Reply];
      return readValue(route, reply);
    });
  }

  getMany(keys: readonly string[]): Promise<(StoredValue | undefined)[]> {
    return this.#run('getMany', async () => {
      const routes = this.#routes(keys);
      if (routes.length === 0) return [];
      const unique = uniqueRoutes(routes);
      const found = new Map<string, StoredValue | undefined>();
      await Promise.all(
        [...Router.byChannel(unique)].map(async ([channel, group]) => {
          const replies = await channel.send(group.map((route) => requests.get(route.dataKey)));
          group.forEach((route, index) => found.set(route.dataKey, readValue(route, replies[index] as Reply)));
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
    return this.#run('set', async (op) => {
      const route = this.#route(key);
      this.#checkValue(key, value);
      const { lease } = options;
      const exptime = this.#exptime(route.key, checkExpiresAt(options.expiresAt));
      if (lease !== undefined) {
        if (!isLease(lease) || lease.key !== key) return 'lease-lost';
        return this.#locks.set(route, value, ItemFlags.value, exptime, lease, op);
      }
      const [reply] = (await route.channel.send([this.#writeRequest(route, value, exptime)])) as [Reply];
      checkWrite(route, reply);
      return 'written';
    });
  }

  setMany(entries: readonly (readonly [string, StoredValue])[], options: BackendBatchWriteOptions = {}): Promise<void> {
    return this.#run('setMany', async () => {
      if (!Array.isArray(entries)) throw new ValidationError('MemcachedBackend.setMany: entries must be an array of [key, value] pairs.');
      const expiresAt = checkExpiresAt(options.expiresAt);
      const latest = new Map<string, { route: Route; value: StoredValue }>();
      for (const [key, value] of entries) {
        const route = this.#route(key);
        this.#checkValue(key, value);
        latest.delete(route.dataKey);
        latest.set(route.dataKey, { route, value });
      }
      const writes = [...latest.values()];
      await Promise.all(
        [...Router.byChannel(writes.map(({ route }) => route))].map(async ([channel, group]) => {
          const batch = group.map((route) =>
            this.#writeRequest(route, (latest.get(route.dataKey) as { value: StoredValue }).value, this.#exptime(route.key, expiresAt)),
          );
          const replies = await channel.send(batch);
          group.forEach((route, index) => checkWrite(route, replies[index] as Reply));
        }),
      );
    });
  }

  delete(key: string, options: BackendDeleteOptions = {}): Promise<DeleteOutcome> {
    return this.#run('delete', async (op) => {
      const route = this.#route(key);
      const { lease } = options;
      if (lease !== undefined) {
        if (!isLease(lease) || lease.key !== key) return 'lease-lost';
        return this.#locks.delete(route, lease, op);
      }
      // Reading first tells a stored value from a lock's placeholder (which counts as missing).
      const [current, deleted] = (await route.channel.send([requests.get(route.dataKey), requests.delete(route.dataKey)])) as [
        Reply,
        Reply,
      ];
      if (deleted.status !== Status.ok && deleted.status !== Status.notFound) throw statusError('delete', route, deleted);
      const existed = current.status === Status.ok && current.flags !== ItemFlags.placeholder;
      return deleted.status === Status.ok && existed ? 'deleted' : 'missing';
    });
  }

  deleteMany(keys: readonly string[]): Promise<void> {
    return this.#run('deleteMany', async () => {
      const routes = uniqueRoutes(this.#routes(keys));
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

  acquireLock(key: string, options: AcquireLockOptions): Promise<Lease | undefined> {
    if (this.#closed) return Promise.reject(closedError());
    let route: Route;
    try {
      route = this.#route(key);
      if (typeof options !== 'object' || options === null)
        throw new ValidationError('MemcachedBackend.acquireLock: options must be an object.');
      checkDuration('leaseMs', options.leaseMs);
      checkDuration('waitMs', options.waitMs);
    } catch (error) {
      return Promise.reject(error);
    }
    const attempt = (): Promise<Lease | undefined> =>
      this.#ops.run(
        'acquireLock',
        (op) => this.#locks.tryAcquire(route, options.leaseMs, op),
        (late) => {
          if (late !== undefined) this.#abandon(late);
        },
      );
    return this.#waiters.acquire(route.dataKey, attempt, options.waitMs, options.signal);
  }

  releaseLock(lease: Lease): Promise<boolean> {
    return this.#run('releaseLock', async (op) => {
      if (!isLease(lease)) return false;
      const route = this.#route(lease.key);
      try {
        return await this.#locks.release(route, lease, op);
      } finally {
        this.#waiters.wake(route.dataKey);
      }
    });
  }

  extendLock(lease: Lease, leaseMs: number): Promise<boolean> {
    return this.#run('extendLock', async (op) => {
      checkDuration('leaseMs', leaseMs);
      if (!isLease(lease)) return false;
      return this.#locks.extend(this.#route(lease.key), lease, leaseMs, op);
    });
  }

  /**
   * Rejects waiting and running calls, and closes the connections when the backend built its
   * own client (a client given in the options stays open). Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const error = closedError();
    this.#waiters.close(error);
    this.#ops.cancelAll(error);
    if (this.#ownsClient) {
      this.#client.close();
      await Promise.all(this.#channels.map((channel) => channel.destroySockets()));
    }
  }

  #run<T>(what: string, work: (op: Operation) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(closedError());
    return this.#ops.run(what, work);
  }

  #route(key: string): Route {
    checkKey(key);
    return this.#router.route(key);
  }

  #routes(keys: readonly string[]): Route[] {
    if (!Array.isArray(keys)) throw new ValidationError('MemcachedBackend: keys must be an array.');
    keys.forEach(checkKey);
    return keys.map((key) => this.#router.route(key));
  }

  #checkValue(key: string, value: unknown): asserts value is Uint8Array {
    if (!(value instanceof Uint8Array)) throw new ValidationError('MemcachedBackend stores Uint8Array values only.');
    if (value.byteLength > this.#maxValueBytes) throw new ValueTooLargeError(value.byteLength, this.#maxValueBytes, key);
  }

  /** The exptime of a write of `key`, applying `defaultTtlMs` unless the key is exempt. */
  #exptime(key: string, expiresAt: number | undefined): number {
    const now = Date.now();
    const { defaultTtlMs } = this.#options;
    const effective = expiresAt ?? (defaultTtlMs === undefined || this.#noExpiry.has(key) ? undefined : now + defaultTtlMs);
    return exptimeFor(effective, now);
  }

  #writeRequest(route: Route, value: Uint8Array, exptime: number): Request {
    // A value that is already expired must not be readable afterwards: remove the key.
    return exptime === ALREADY_EXPIRED ? requests.delete(route.dataKey) : requests.set(route.dataKey, value, ItemFlags.value, exptime);
  }

  /** Gives back a lease that was won after its caller stopped waiting. */
  #abandon(lease: Lease): void {
    if (this.#closed) return;
    // Best effort: if the release fails the lease lapses by itself; the failure is reported.
    this.releaseLock(lease).catch((error: unknown) => {
      process.emitWarning(
        `latchkey: MemcachedBackend could not give back an abandoned lease: ${error instanceof Error ? error.message : String(error)}`,
        {
          code: 'LATCHKEY_MEMCACHED_RELEASE_FAILED',
        },
      );
    });
  }
}

function buildClient(options: ResolvedOptions): Client {
  const seconds = options.operationTimeoutMs / 1000;
  const serverOptions = { timeout: seconds, conntimeout: seconds, keepAlive: true, keepAliveDelay: 30 };
  const servers = (options.servers ?? []).map(
    ({ host, port, username, password }) => new Server(host, port, username, password, { ...serverOptions }),
  );
  // Requests go through ServerChannel, not Client#perform: memjs's retries and failover (which
  // would move a key, and its lock, to another server) never apply.
  return new Client(servers, { retries: 1, failover: false, logger: { log: () => undefined } });
}

function serverTimeoutMs(server: MemjsServer, options: ResolvedOptions): number {
  const timeout = (server as { options?: { timeout?: unknown } }).options?.timeout;
  return typeof timeout === 'number' ? timeout * 1000 : options.operationTimeoutMs;
}

function closedError(): ValidationError {
  return new ValidationError('MemcachedBackend is closed.');
}

function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) throw new InvalidKeyError(key, 'backend keys must be non-empty strings');
}

function checkExpiresAt(expiresAt: unknown): number | undefined {
  if (expiresAt === undefined) return undefined;
  if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt)) {
    throw new ValidationError(`MemcachedBackend: expiresAt must be a finite number of epoch milliseconds, got ${String(expiresAt)}.`);
  }
  return expiresAt;
}

function checkDuration(name: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new ValidationError(`MemcachedBackend: ${name} must be a non-negative finite number, got ${String(value)}.`);
  }
}

function isLease(lease: unknown): lease is Lease {
  const candidate = lease as Partial<Lease> | null;
  return typeof lease === 'object' && typeof candidate?.key === 'string' && typeof candidate.token === 'string';
}

function readValue(route: Route, reply: Reply): StoredValue | undefined {
  if (reply.status === Status.notFound) return undefined;
  if (reply.status !== Status.ok) throw statusError('get', route, reply);
  if (reply.flags === ItemFlags.placeholder) return undefined;
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
