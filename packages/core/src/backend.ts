/**
 * The backend-author interface: what a storage engine implements so `KeyValueStore` can use
 * it. Backends see stored keys (already mangled) and opaque encoded values (bytes); they
 * never see user values or user keys.
 *
 * @packageDocumentation
 */

import type { KeyMangler } from './key-mangler.js';

/**
 * An encoded value. Backends store and return these bytes unchanged. A backend must not keep
 * a reference to a buffer it was given, nor hand out one it keeps: callers may reuse them.
 */
export type StoredValue = Uint8Array;

/** Options of a single-key write. */
export interface BackendWriteOptions {
  /**
   * Absolute expiry (milliseconds since the Unix epoch). Absent: the value never expires.
   * A backend whose expiry is coarser rounds **up** (never to "no expiry"); the core filters
   * expired values on read whatever the backend does, so rounding up is always safe.
   */
  readonly expiresAt?: number;
  /**
   * Write only if this lease still holds the key, checked atomically with the write (when
   * `capabilities.atomicLeaseWrites` is true). Absent: an unconditional write.
   */
  readonly lease?: Lease;
}

/** Options of a batch write. Batch writes never take a lease. */
export interface BackendBatchWriteOptions {
  /** Absolute expiry for every entry, as in {@link BackendWriteOptions.expiresAt}. */
  readonly expiresAt?: number;
}

/** Options of {@link Backend.compareAndSet}. */
export interface BackendCompareAndSetOptions {
  /** Absolute expiry of the new value, as in {@link BackendWriteOptions.expiresAt}. Absent: it never expires. */
  readonly expiresAt?: number;
}

/** Options of a single-key delete. */
export interface BackendDeleteOptions {
  /** Delete only if this lease still holds the key, as for writes. */
  readonly lease?: Lease;
}

/** Outcome of a single-key write. */
export type WriteOutcome =
  /** The value was stored. */
  | 'written'
  /** A lease was given and no longer holds the key; nothing was written. */
  | 'lease-lost';

/** Outcome of a single-key delete. */
export type DeleteOutcome =
  /** The key existed and is gone. */
  | 'deleted'
  /** The key did not exist (or had expired); nothing changed. */
  | 'missing'
  /** A lease was given and no longer holds the key; nothing was deleted. */
  | 'lease-lost';

/**
 * A held per-key lease. Backends return it from {@link Backend.acquireLock} and receive the
 * same object back in writes, `extendLock` and `releaseLock`; a backend may return a subclass
 * or an object with extra private fields (for example a CAS value) and read them back.
 */
export interface Lease {
  /** The stored (mangled) key the lease is for. */
  readonly key: string;
  /** A unique owner token; only this token's holder may write, extend or release. */
  readonly token: string;
  /**
   * Strictly greater than the token of every earlier lease of this key on this backend
   * (for as long as the backend keeps its fence counter; see `capabilities.fencingTokens`).
   */
  readonly fencingToken: bigint;
  /**
   * Optional: `performance.now()` in this process taken no later than the moment the server
   * started the lease (for example just before sending the request that won it). The core
   * measures the lock's expiry from here; without it, from the start of `acquire`.
   */
  readonly acquiredAt?: number;
}

/** Options of {@link Backend.acquireLock}. */
export interface AcquireLockOptions {
  /**
   * How long the backend keeps the lease before it lapses by itself. `0` means it never
   * lapses. Backends with coarser expiry round **up**.
   */
  readonly leaseMs: number;
  /**
   * How long to wait for a holder to let go. `0` means try exactly once. The backend resolves
   * `undefined` when the time is up without the lease.
   */
  readonly waitMs: number;
  /**
   * Aborts the wait: the backend rejects promptly with `signal.reason` and must leave no
   * lease behind (if it won the lease in the meantime it releases it).
   */
  readonly signal?: AbortSignal;
}

/** Where a backend's locks are visible. */
export type LockScope =
  /** Shared by every process using the same server. */
  | 'distributed'
  /** Only within this process (the memory backend, or the core's fallback lock table). */
  | 'in-process';

/**
 * What a backend declares about itself. `configure` reads it once (it must not change after
 * construction) and the conformance suite adapts its checks to it instead of skipping them.
 *
 * The flags are of two kinds:
 * - **Acted on by the core**: `maxKeyBytes`, `maxValueBytes` and `ttlResolutionMs` (read from
 *   the backend beneath any proxies). Declaring them wrongly changes what the core does.
 * - **Promises**: `lockScope`, `atomicLeaseWrites`, `fencingTokens`, `minLeaseMs`, `mayEvict`
 *   and `callDeadlineMs`. The core never reads them; they tell users what the backend
 *   guarantees, and the conformance suite holds the backend to them.
 *
 * Whether the core gives a backend its in-process lock table depends on the lock methods
 * being present (see {@link hasOwnLocks}), not on any flag; over that table the core reports
 * `lockScope: 'in-process'`, `atomicLeaseWrites: false` and `fencingTokens: true` itself.
 */
export interface BackendCapabilities {
  /**
   * Promise: where locks are visible. `'distributed'`: every process using the same server
   * excludes the others. The conformance suite checks the value, and that a backend without
   * lock methods declares `'in-process'`.
   */
  readonly lockScope: LockScope;
  /**
   * Promise: true when a write or delete with a lease checks the lease in the same atomic step
   * as the write, on the server. False when the check and the write are separate steps (a
   * backend without locks of its own, using the core's lock table over a remote store). The
   * conformance suite checks that a backend without lock methods declares `false`.
   */
  readonly atomicLeaseWrites: boolean;
  /**
   * Promise: true when fencing tokens strictly increase across every acquire of a key,
   * including across lease expiry and holders crashing. (They may restart after the server
   * loses its data, e.g. a memcached restart; the lease check still refuses stale writes then.)
   * The conformance suite checks tokens across a lapse only when this is true.
   */
  readonly fencingTokens: boolean;
  /**
   * Acted on: the granularity of the backend's own expiry, in ms (1 for Redis `PX`, 1000 for
   * memcached). Above 1, `delete` first reads the value, so that a value whose own expiry has
   * passed but which the backend still holds counts as missing, as it does for `get`. The
   * conformance suite paces its expiry checks by it.
   */
  readonly ttlResolutionMs: number;
  /**
   * Promise: the shortest lease the backend keeps, in ms (memcached: 2000). The core does not
   * read it: it asks for leases of exactly the lock's `lockTimeoutMs`, and a backend given a
   * shorter one rounds it **up** to this. The conformance suite uses leases of at least this
   * length and waits multiples of it.
   */
  readonly minLeaseMs: number;
  /**
   * Acted on: the largest stored key in UTF-8 bytes the backend accepts, if bounded. The core
   * refuses a longer stored (mangled) key with `InvalidKeyError` before any I/O.
   */
  readonly maxKeyBytes?: number;
  /**
   * Acted on: the largest encoded value in bytes the backend accepts, if bounded. The core
   * refuses a larger encoded value with `ValueTooLargeError` before any I/O.
   */
  readonly maxValueBytes?: number;
  /**
   * Promise: true when the backend may drop entries on its own before they expire (LRU
   * eviction, `maxEntries`), so a store over it is a cache, not the only copy of a value. The
   * core does not read it; the conformance suite only checks that it is a boolean.
   */
  readonly mayEvict: boolean;
  /**
   * Promise, optional: every data call (`get`, `getMany`, `set`, `setMany`, `delete`,
   * `deleteMany`) settles within this many ms by the backend's own deadline (`0`: at once, as
   * in-process stores do). Informational: the core bounds every call of the chain by its own
   * `operationTimeoutMs` whatever is declared here (one shared timer for all calls in flight,
   * so the backstop costs no timer per call), because any proxy in the chain may stall. Only a
   * promise the chain hands back straight from a `CallRunner` with a timeout no longer than
   * `operationTimeoutMs` gets no second deadline: that runner's fires first anyway.
   */
  readonly callDeadlineMs?: number;
}

/**
 * A storage engine for `KeyValueStore`.
 *
 * Contract, in short (the conformance suite checks every line):
 * - Keys are non-empty strings already passed through the store's key mangler; values are
 *   bytes. `get` of a missing or expired key resolves `undefined`, never rejects.
 * - Batch calls (`getMany`, `setMany`, `deleteMany`) use one round trip (or one per server /
 *   cluster slot) where the server allows it; `getMany` answers in input order, duplicates
 *   included. Empty batches resolve without I/O.
 * - A write or delete with a `lease` is conditional: when the lease no longer holds the key
 *   (lapsed, released, taken over, or lost with the server's data) it resolves `'lease-lost'`
 *   and changes nothing.
 * - Every call settles: with the server down or stalled, calls reject within the backend's
 *   deadline with `BackendUnavailableError` or `BackendTimeoutError`, the driver error as
 *   `cause`. Bad input the backend cannot store rejects with `InvalidKeyError` /
 *   `ValueTooLargeError` before any I/O (a key over `maxKeyBytes`: the message names the
 *   limit). A malformed argument (a lease, a duration, lock options, a non-array batch)
 *   rejects with `ValidationError` before any I/O, its message naming the option and
 *   describing the value given (a number as given, `null`, an array, an object's class).
 * - Lock methods are optional **as a group**: a backend without them gets an in-process
 *   per-key lock table from the core (and must then declare `lockScope: 'in-process'` and
 *   `atomicLeaseWrites` honestly).
 * - `clear`, `keys`, `has` and `compareAndSet` are optional **one by one**; the store falls
 *   back to the required methods where it can (see each) and rejects with `NotSupportedError`
 *   where it cannot. The store reads their presence on the backend beneath the proxies, as it
 *   does for locks. None of them takes a lease.
 */
export interface Backend {
  /** What this backend can promise. Must not change after construction. */
  readonly capabilities: BackendCapabilities;

  /**
   * The backend's preferred key mangler, used when the store is configured without an
   * explicit `keyMangler` (the `key_mangler` property of dogpile.cache backends).
   */
  readonly keyMangler?: KeyMangler | undefined;

  /** The stored bytes of `key`, or `undefined` when missing or expired. */
  get(key: string): Promise<StoredValue | undefined>;

  /** The stored bytes of each key, in input order, `undefined` for missing ones. */
  getMany(keys: readonly string[]): Promise<(StoredValue | undefined)[]>;

  /** Stores `value` under `key`, conditionally when `options.lease` is given. */
  set(key: string, value: StoredValue, options?: BackendWriteOptions): Promise<WriteOutcome>;

  /** Stores every entry unconditionally. Later duplicates win. */
  setMany(entries: readonly (readonly [string, StoredValue])[], options?: BackendBatchWriteOptions): Promise<void>;

  /** Deletes `key`, conditionally when `options.lease` is given. */
  delete(key: string, options?: BackendDeleteOptions): Promise<DeleteOutcome>;

  /** Deletes every key unconditionally; missing keys are ignored. */
  deleteMany(keys: readonly string[]): Promise<void>;

  /**
   * Takes the per-key lease, waiting up to `options.waitMs` for the holder to let go.
   * Resolves the lease, or `undefined` when the wait ran out. Waiters should be served in
   * arrival order where the backend can, and woken by releases rather than by polling.
   */
  acquireLock?(key: string, options: AcquireLockOptions): Promise<Lease | undefined>;

  /**
   * Lets go of `lease`. Resolves `true` when it was still held (and is now free), `false` when
   * it had already lapsed or been taken over — in which case the current holder's lease is
   * left untouched.
   */
  releaseLock?(lease: Lease): Promise<boolean>;

  /**
   * Renews `lease` for `leaseMs` from now (`0`: never lapses). Resolves `true` when renewed,
   * `false` when the lease no longer holds the key.
   */
  extendLock?(lease: Lease, leaseMs: number): Promise<boolean>;

  /**
   * Optional: removes every value of this backend instance's namespace (its key prefix, table
   * or collection: whatever separates it from other users of the same server) and nothing
   * outside it. Leases and fencing counters are **not** values and must survive, so a lock
   * holder keeps its exclusion across a clear and fencing tokens stay strictly increasing; a
   * write under a lease still held after the clear succeeds.
   *
   * Absent: the store's `clear()` lists the keys with {@link keys} and deletes them in batches
   * with {@link deleteMany} (not atomic: a value written meanwhile may survive); with neither
   * method, `clear()` rejects with `NotSupportedError`.
   */
  clear?(): Promise<void>;

  /**
   * Optional: the stored keys of the values in this backend's namespace, never a lock's or
   * fence counter's key. A key stored for the whole iteration is yielded at least once; one
   * written, deleted or expiring meanwhile may or may not be. A key may be yielded twice when
   * the server's own listing does so (Redis `SCAN` while rehashing); the store passes that on.
   * Yielding a key whose value has expired is allowed: the store reads each value's envelope
   * (unless keys are stored as given and expiry is exact) and drops expired ones. Errors reject
   * the iteration's `next()` like any call (`BackendUnavailableError`, `BackendTimeoutError`).
   *
   * Absent: the backend cannot list (memcached), and the store's `keys()` rejects with
   * `NotSupportedError`. Presence of the method is the declaration; there is no flag.
   */
  keys?(): AsyncIterable<string>;

  /**
   * Optional: whether a value is stored under `key`, without transferring it. Used by the
   * store's `has()` only when `capabilities.ttlResolutionMs` is 1: the store gives the backend
   * the same `expiresAt` it puts in the value's envelope, so at 1 ms resolution the backend's
   * expiry and the envelope's agree. Coarser backends (and backends without the method) answer
   * `has()` through {@link get} and the envelope's expiry.
   */
  has?(key: string): Promise<boolean>;

  /**
   * Optional: stores `value` under `key` only if the bytes stored there now are exactly
   * `expected` (and not expired), in one atomic step on the server. Resolves `true` when
   * written, `false` when the key is missing or holds other bytes (nothing written). Never
   * takes or checks a lease.
   *
   * The store's `touch()` uses it: it reads the value, re-seals its envelope with the new
   * expiry and writes it back only if nobody wrote in between, so a concurrent (locked) write
   * is never undone. Absent: `touch()` writes back unconditionally, and a write landing
   * between its read and its write is lost (the old value comes back with the new expiry).
   */
  compareAndSet?(key: string, expected: StoredValue, value: StoredValue, options?: BackendCompareAndSetOptions): Promise<boolean>;

  /** Releases connections and timers. Idempotent. Calls after close reject. */
  close(): Promise<void>;
}

/** A {@link Backend} that implements its own locks. */
export type LockingBackend = Backend & Required<Pick<Backend, 'acquireLock' | 'releaseLock' | 'extendLock'>>;

/** The optional data methods a backend may implement (see {@link Backend.clear} and after). */
export type OptionalDataMethod = 'clear' | 'keys' | 'has' | 'compareAndSet';

/**
 * True when `backend` can serve the optional data method `method`: it has the method, and
 * when it is a proxy that passes the method on (a `ProxyBackend` has every method), the
 * backend beneath it has it too.
 */
export function hasDataMethod<M extends OptionalDataMethod>(backend: Backend, method: M): backend is Backend & Required<Pick<Backend, M>> {
  if (typeof backend[method] !== 'function') return false;
  const proxy = backend as Partial<DataMethodProxy>;
  return typeof proxy.servesDataMethod === 'function' ? proxy.servesDataMethod(method) : true;
}

/** What a proxy that passes optional methods on tells {@link hasDataMethod} (`ProxyBackend` is one). */
export interface DataMethodProxy {
  /** True when the proxy overrides `method` itself, or the backend it wraps can serve it. */
  servesDataMethod(method: OptionalDataMethod): boolean;
}

/** True when `backend` implements the lock methods itself. */
export function hasOwnLocks(backend: Backend): backend is LockingBackend {
  return typeof backend.acquireLock === 'function' && typeof backend.releaseLock === 'function' && typeof backend.extendLock === 'function';
}
