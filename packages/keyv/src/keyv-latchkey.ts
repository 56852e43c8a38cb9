import { EventEmitter } from 'node:events';
import { NotSupportedError, ValidationError, type KeyValueStore } from '@latchkey/core';

/** What keyv's `setMany` hands a storage adapter: one entry per key, with its TTL in ms. */
export interface KeyvLatchkeyEntry {
  /** The key as keyv prefixes it (`namespace:key`). */
  readonly key: string;
  /** What keyv stores: its serialized string, or a `{ value, expires }` object without a serializer. */
  readonly value: unknown;
  /** Time to live in milliseconds; absent: the store's `ttlMs` applies. */
  readonly ttl?: number | undefined;
}

/**
 * What keyv reads from `adapter.opts`. keyv 5 turns `keyv.iterator()` on only for adapters whose
 * `dialect` is on its list of iterable adapters (`sqlite`, `postgres`, `mysql`, `mongo`, `redis`,
 * `valkey`, `etcd`) and reads the dialect for nothing else, so the adapter names one of them.
 */
export interface KeyvLatchkeyOpts {
  /** `'redis'`: only so that keyv 5 exposes `keyv.iterator()`; the store may be over any backend. */
  dialect: string;
  /** The name of the store the adapter writes to. */
  store: string;
  /** keyv's test suite and some callers put further fields here; the adapter reads none of them. */
  [field: string]: unknown;
}

/** How many keys {@link KeyvLatchkey.iterator} reads at once, and {@link KeyvLatchkey.clear} deletes at once. */
const PAGE = 100;

/**
 * A keyv storage adapter over a configured latchkey {@link KeyValueStore}, so that keyv,
 * cacheable and cache-manager store through latchkey's backends, key mangler, proxies and codec.
 *
 * keyv prefixes every key with its namespace (`keyv:` by default) and hands the adapter its
 * serialized `{ value, expires }` string, or the object itself when keyv has no serializer; the
 * adapter stores either as a store value, with keyv's TTL as the value's `ttlMs` (absent: the
 * store's `ttlMs`). Reads never reject for a missing key: `get` resolves `undefined`.
 *
 * Every failed call rejects with the store's `LatchkeyError` (`BackendUnavailableError`,
 * `NotSupportedError`, …) and, when anything listens, emits it as `'error'` first (keyv listens and
 * re-emits it; for a failed `set`, `delete` or `clear` keyv emits the error once more itself).
 *
 * @example
 * const store = getKeyValueStore('cache')
 * await store.configure(new RedisBackend({ url }))
 * const keyv = new Keyv({ store: new KeyvLatchkey(store) })
 */
export class KeyvLatchkey extends EventEmitter {
  /** The store every call goes to (for its locks, `ttl()`, `touch()` and the rest). */
  readonly store: KeyValueStore;
  /** keyv's view of the adapter: see {@link KeyvLatchkeyOpts}. */
  readonly opts: KeyvLatchkeyOpts;
  /**
   * The keyv namespace (keyv sets it). Only {@link clear} and {@link iterator} read it: keyv has
   * already put it in front of every key it passes.
   */
  namespace: string | undefined;

  /**
   * @param store - A `KeyValueStore`, configured now or before the first call (calls before
   * `configure` reject with `NotConfiguredError`).
   * @throws {ValidationError} when `store` is not a `KeyValueStore`.
   */
  constructor(store: KeyValueStore) {
    super();
    if (!isStore(store)) throw new ValidationError('KeyvLatchkey needs a KeyValueStore (from getKeyValueStore()).');
    this.store = store;
    this.opts = { dialect: 'redis', store: store.name };
  }

  /** The value stored under `key`, or `undefined` when it is missing or expired. */
  get<Value = unknown>(key: string): Promise<Value | undefined> {
    return this.#run(() => this.store.find<Value>(key));
  }

  /** The values of `keys` in order, `undefined` for each missing or expired one. */
  getMany<Value = unknown>(keys: string[]): Promise<(Value | undefined)[]> {
    return this.#run(() => this.store.getMany<Value>(keys, { allowMissing: true }));
  }

  /**
   * Stores `value` under `key` for `ttl` ms; without a `ttl` (or `0`) the store's `ttlMs` applies.
   * @returns `true` once written.
   */
  set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    return this.#run(async () => {
      await this.store.set(key, value, ttlOption(ttl));
      return true;
    });
  }

  /**
   * Stores every entry, each with its own TTL, without locks, in one backend batch per distinct
   * expiry (see the store's `setMany`). Resolves nothing, as keyv's adapter type asks: keyv 5's
   * `setMany` then resolves `undefined` rather than one `true` per entry, as over keyv's own
   * batching adapters (`@keyv/redis`); a rejection still reaches its caller.
   */
  setMany(entries: readonly KeyvLatchkeyEntry[]): Promise<void> {
    return this.#run(() => this.store.setMany(entries.map(({ key, value, ttl }) => [key, value, ttlOption(ttl)] as const)));
  }

  /** Whether a live value is stored under `key`. */
  has(key: string): Promise<boolean> {
    return this.#run(() => this.store.has(key));
  }

  /** Whether a live value is stored under each of `keys`. */
  hasMany(keys: string[]): Promise<boolean[]> {
    return this.#run(() => Promise.all(keys.map((key) => this.store.has(key))));
  }

  /**
   * Deletes `key`.
   * @returns `true` when a value was there, `false` when the key was missing or expired.
   */
  delete(key: string): Promise<boolean> {
    return this.#run(() => this.#deleteOne(key));
  }

  /**
   * Deletes every key of `keys`. One delete per key, so that the answer says what was there.
   * @returns `true` when at least one of them held a value.
   */
  deleteMany(keys: string[]): Promise<boolean> {
    return this.#run(async () => {
      const deleted = await Promise.all(keys.map((key) => this.#deleteOne(key)));
      return deleted.includes(true);
    });
  }

  /**
   * Removes the values of this keyv namespace: every key starting `namespace:`, listed with the
   * store's `keys()` and deleted in batches. Without a namespace it clears the whole store
   * (`store.clear()`), which is the backend's namespace (prefix, collection or table).
   *
   * Over a backend that cannot list its keys but can clear (memcached), a namespace cannot be
   * told apart, so the whole store is cleared — every keyv namespace on it. Give each keyv
   * namespace a store of its own there (its own `keyPrefix`).
   * @throws {NotSupportedError} (from the store) when the backend can neither list nor clear.
   */
  clear(): Promise<void> {
    return this.#run(async () => {
      const prefix = this.#prefix(this.namespace);
      if (prefix === undefined) {
        await this.store.clear();
        return;
      }
      const listed = this.store.keys()[Symbol.asyncIterator]();
      let first: IteratorResult<string>;
      try {
        first = await listed.next();
      } catch (error) {
        if (!(error instanceof NotSupportedError)) throw error;
        await this.store.clear();
        return;
      }
      const keys = (async function* () {
        for (let step = first; step.done !== true; step = await listed.next()) yield step.value;
      })();
      let batch: string[] = [];
      for await (const key of keys) {
        if (!key.startsWith(prefix)) continue;
        batch.push(key);
        if (batch.length >= PAGE) {
          await this.store.deleteMany(batch);
          batch = [];
        }
      }
      if (batch.length > 0) await this.store.deleteMany(batch);
    });
  }

  /**
   * Every `[key, value]` of `namespace` (every key of the store without one), read in pages of
   * {@link PAGE} keys; keyv removes the prefix and decodes the value. A key whose value expires or
   * is deleted while the iteration runs is left out.
   * @throws {NotSupportedError} (from the store, at the first `next()`) when the backend cannot
   * list its keys.
   */
  async *iterator<Value = unknown>(namespace?: string): AsyncGenerator<[string, Value], void> {
    const prefix = this.#prefix(namespace);
    let page: string[] = [];
    try {
      for await (const key of this.store.keys()) {
        if (prefix !== undefined && !key.startsWith(prefix)) continue;
        page.push(key);
        if (page.length >= PAGE) {
          yield* await this.#entries<Value>(page);
          page = [];
        }
      }
      if (page.length > 0) yield* await this.#entries<Value>(page);
    } catch (error) {
      throw this.#report(error);
    }
  }

  /**
   * Closes the store (`store.close()`: its backend chain, and its locks given back). keyv's and
   * cache-manager's `disconnect()` call it. A store shared by several adapters is closed for all.
   */
  disconnect(): Promise<void> {
    return this.#run(() => this.store.close());
  }

  async #deleteOne(key: string): Promise<boolean> {
    try {
      await this.store.delete(key);
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  /** The entries of the live values among `keys`, in order. */
  async #entries<Value>(keys: string[]): Promise<[string, Value][]> {
    const values = await this.store.getMany<Value>(keys, { allowMissing: true });
    const entries: [string, Value][] = [];
    values.forEach((value, index) => {
      // keyv never stores `undefined` itself (it stores `{ value, expires }`), so `undefined` is a miss.
      if (value !== undefined) entries.push([keys[index] as string, value]);
    });
    return entries;
  }

  #prefix(namespace: string | undefined): string | undefined {
    return namespace === undefined || namespace === '' ? undefined : `${namespace}:`;
  }

  async #run<R>(work: () => Promise<R>): Promise<R> {
    try {
      return await work();
    } catch (error) {
      throw this.#report(error);
    }
  }

  /** Emits `error` when anyone listens (an unheard `'error'` event would throw), and returns it. */
  #report(error: unknown): unknown {
    if (this.listenerCount('error') > 0) this.emit('error', error);
    return error;
  }
}

function ttlOption(ttl: number | undefined): { ttlMs?: number } {
  // keyv passes no TTL (or 0, which it means as none) for "no expiry of its own": the store's default applies.
  return ttl === undefined || ttl === 0 ? {} : { ttlMs: ttl };
}

function isNotFound(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'NOT_FOUND';
}

function isStore(value: unknown): value is KeyValueStore {
  if (typeof value !== 'object' || value === null) return false;
  const store = value as Record<string, unknown>;
  return (
    typeof store['name'] === 'string' &&
    ['find', 'getMany', 'set', 'setMany', 'delete', 'has', 'keys', 'clear', 'close'].every((name) => typeof store[name] === 'function')
  );
}
