// The options types of KeyValueStore's methods, configure's included.
import type { Codec } from './codec.js';
import type { KeyMangler } from './key-mangler.js';
import type { KeyValueStoreLock, LockOptions } from './key-value-store-lock.js';
import type { ProxyBackend } from './proxy-backend.js';

/** A proxy class constructible with no arguments. */
export type ProxyBackendClass = new () => ProxyBackend;

/** Options of {@link KeyValueStore.configure}. */
export interface ConfigureOptions {
  /**
   * Turns user keys into stored keys. `undefined`: the backend's own mangler if it has one,
   * else {@link sha1KeyMangler}. `null`: keys are stored as given.
   */
  readonly keyMangler?: KeyMangler | null;
  /** Proxy wrappers; `proxies[0]` is the outermost. Classes are constructed with no arguments. */
  readonly proxies?: readonly (ProxyBackend | ProxyBackendClass)[];
  /** `false` makes locks purely local bookkeeping that never touches the backend. @default true */
  readonly locking?: boolean;
  /** Lease length of locks; `0` means locks never expire. @default 5000 */
  readonly lockTimeoutMs?: number;
  /** How much earlier than its lease a lock counts as expired on the client. @default 1000 */
  readonly lockSafetyWindowMs?: number;
  /** How long lock acquisition waits by default. @default 10000 */
  readonly lockWaitMs?: number;
  /** Default expiry of written values. Absent: values never expire. */
  readonly ttlMs?: number;
  /** How values become bytes. @default {@link taggedCodec} */
  readonly codec?: Codec;
  /**
   * Backstop deadline of each backend call (adapters have their own, shorter ones).
   * `Infinity` disables it. @default 15000
   */
  readonly operationTimeoutMs?: number;
  /** Passed to a registered factory when `backingStore` is a name. */
  readonly backendOptions?: Record<string, unknown>;
  /**
   * Put user keys into the store's diagnostics-channel messages (`key`; see the README's
   * Observability section). Off by default: keys often hold user ids, e-mail addresses or
   * tokens, and traces travel to other systems. @default false
   */
  readonly traceKeys?: boolean;
}

/** Options of {@link KeyValueStore.set}. */
export interface SetOptions {
  /** Write only while this lock holds the key (checked by the backend with the write). */
  readonly lock?: KeyValueStoreLock;
  /** Expiry of this value; overrides the store's `ttlMs`. */
  readonly ttlMs?: number;
}

/** Options of {@link KeyValueStore.setMany}. */
export interface SetManyOptions {
  /** Expiry of these values; overrides the store's `ttlMs`. An entry's own `ttlMs` overrides this. */
  readonly ttlMs?: number;
}

/** Options of one entry of {@link KeyValueStore.setMany}: the third element of `[key, value, options]`. */
export interface SetManyEntryOptions {
  /** Expiry of this value; overrides the call's and the store's `ttlMs`. */
  readonly ttlMs?: number;
}

/** One entry of {@link KeyValueStore.setMany}: `[key, value]`, or `[key, value, { ttlMs }]` for its own expiry. */
export type SetManyEntry = readonly [key: string, value: unknown] | readonly [key: string, value: unknown, options: SetManyEntryOptions];

/** Options of {@link KeyValueStore.getMany}. */
export interface GetManyOptions {
  /**
   * `true`: resolve `undefined` in the place of each missing or expired key instead of
   * rejecting with `NotFoundError` (a stored `undefined` looks the same; `has` tells them apart).
   * @default false
   */
  readonly allowMissing?: boolean;
}

/** Options of {@link KeyValueStore.delete}. */
export interface DeleteOptions {
  /** Delete only while this lock holds the key. */
  readonly lock?: KeyValueStoreLock;
}

/** Options of {@link KeyValueStore.withLock}. */
export interface WithLockOptions extends LockOptions {
  /** How long to wait for the lock. @default the store's `lockWaitMs` */
  readonly waitMs?: number;
  /** Aborts the wait for the lock. */
  readonly signal?: AbortSignal;
}

/** Options of {@link KeyValueStore.getOrCreate}. */
export interface GetOrCreateOptions {
  /** Expiry of the created value; overrides the store's `ttlMs`. */
  readonly ttlMs?: number;
  /** How long to wait for another caller's creator. @default the store's `lockWaitMs` */
  readonly waitMs?: number;
  /** Aborts the wait. */
  readonly signal?: AbortSignal;
}
