import type { Backend, StoredValue } from './backend.js';
import { decodeWith, encodeWith } from './codec.js';
import {
  AlreadyConfiguredError,
  BackendError,
  InvalidKeyError,
  LatchkeyError,
  LockTimeoutError,
  NotConfiguredError,
  NotFoundError,
  ValidationError,
  ValueTooLargeError,
} from './errors.js';
import type { LockHost, ResolvedConfig } from './internal/config.js';
import { withDeadline } from './backend-kit/call-runner.js';
import { reportGiveBackFailure } from './backend-kit/warnings.js';
import { open, seal } from './internal/envelope.js';
import { forgetStore } from './internal/registry-state.js';
import { resolveConfig } from './internal/resolve-config.js';
import { traceCall, type Writable } from './internal/trace.js';
import { assertKey, describe, optionalDuration, optionalObject, optionalSignal } from './internal/validate.js';
import { createLock, KeyValueStoreLock, type LockOptions } from './key-value-store-lock.js';
import type {
  ConfigureOptions,
  DeleteOptions,
  GetOrCreateOptions,
  SetManyOptions,
  SetOptions,
  WithLockOptions,
} from './key-value-store-options.js';
import { storeOperationTracing, type StoreOperation, type StoreOperationMessage } from './tracing.js';

/** The message of one store call while it runs. */
type StoreTrace = Writable<StoreOperationMessage>;

export type {
  ConfigureOptions,
  DeleteOptions,
  GetOrCreateOptions,
  ProxyBackendClass,
  SetManyOptions,
  SetOptions,
  WithLockOptions,
} from './key-value-store-options.js';

/**
 * A named key-value store over a pluggable backend (Keystone's `KeyValueStore`): a key
 * mangler, a chain of proxies, TTLs, and per-key write locks that make "read, change, write"
 * one transaction across every process sharing the backend.
 *
 * @example
 * const store = getKeyValueStore('tokens')
 * await store.configure(new MemoryBackend(), { ttlMs: 60_000 })
 * await store.withLock('user:42', async (lock) => {
 *   const tokens = await store.get<string[]>('user:42').catch(() => [])
 *   await store.set('user:42', [...tokens, 'abc'], { lock })
 * })
 */
export class KeyValueStore implements AsyncDisposable {
  /** The store's name (its registry key). */
  readonly name: string;

  #config: ResolvedConfig | undefined;
  #configuring = false;
  #closed = false;
  readonly #host: LockHost;
  /** Active locks of this store: given back at close, so other processes need not wait out their leases. */
  readonly #activeLocks = new Set<{ giveBackAtClose(): Promise<void> }>();

  constructor(name: string) {
    if (typeof name !== 'string' || name.length === 0) {
      throw new ValidationError(`A KeyValueStore name must be a non-empty string, got ${describe(name)}.`);
    }
    this.name = name;
    this.#host = {
      name,
      resolved: () => this.#resolved(),
      isClosed: () => this.#closed,
      storedKey: (key) => this.#storedKey(this.#resolved(), key),
      track: (lock, active) => {
        if (active) this.#activeLocks.add(lock);
        else this.#activeLocks.delete(lock);
      },
    };
  }

  /** True once `configure` has succeeded (and until `close`). */
  get isConfigured(): boolean {
    return this.#config !== undefined;
  }

  /**
   * Configures the store over `backingStore`: a backend instance, or the name given to
   * `registerBackend`. On any failure the store stays unconfigured and can be configured again.
   *
   * @throws {AlreadyConfiguredError} when already configured (or a configure is under way).
   * @throws {ValidationError} for an unknown backend name, a bad option, or a failing factory.
   */
  async configure(backingStore: Backend | string, options: ConfigureOptions = {}): Promise<void> {
    if (this.#closed) throw new NotConfiguredError(this.name, 'is closed; get a new one from getKeyValueStore()');
    if (this.#config !== undefined || this.#configuring) throw new AlreadyConfiguredError(this.name);
    this.#configuring = true;
    try {
      this.#config = await resolveConfig(this.name, backingStore, options);
    } finally {
      this.#configuring = false;
    }
  }

  /**
   * The value stored under `key`, exactly as stored (`null`, `undefined`, `0`, `''` and `false`
   * included).
   * @throws {NotFoundError} when the key is missing or expired (`target` is the key).
   */
  get<T = unknown>(key: string): Promise<T> {
    if (!storeOperationTracing.hasSubscribers) return this.#get<T>(key, undefined);
    return this.#traced('get', key, 1, (trace) => this.#get<T>(key, trace));
  }

  async #get<T>(key: string, trace: StoreTrace | undefined): Promise<T> {
    const config = this.#resolved();
    const stored = this.#storedKey(config, key);
    const bytes = await this.#call(config, 'get', () => config.chain.get(stored));
    const found = this.#decode<T>(config, bytes, Date.now());
    if (trace !== undefined) {
      trace.missCount = found === MISSING ? 1 : 0;
      trace.outcome = found === MISSING ? 'miss' : 'hit';
    }
    if (found === MISSING) throw new NotFoundError(key);
    return found;
  }

  /**
   * The values of `keys`, in input order (duplicates give duplicates). `[]` for `[]`.
   * @throws {NotFoundError} when any key is missing; `target` lists all missing keys in input order.
   */
  getMany<T = unknown>(keys: readonly string[]): Promise<T[]> {
    if (!storeOperationTracing.hasSubscribers) return this.#getMany<T>(keys, undefined);
    return this.#traced('getMany', undefined, Array.isArray(keys) ? keys.length : 0, (trace) => this.#getMany<T>(keys, trace));
  }

  async #getMany<T>(keys: readonly string[], trace: StoreTrace | undefined): Promise<T[]> {
    const config = this.#resolved();
    const stored = this.#storedKeys(config, keys);
    if (stored.length === 0) {
      if (trace !== undefined) {
        trace.missCount = 0;
        trace.outcome = 'hit';
      }
      return [];
    }
    const found = await this.#call(config, 'getMany', () => config.chain.getMany(stored));
    if (!Array.isArray(found) || found.length !== stored.length) {
      throw new BackendError(
        `getMany: the backend answered ${Array.isArray(found) ? found.length : describe(found)} values for ${stored.length} keys.`,
      );
    }
    const now = Date.now();
    const values: T[] = [];
    const missing: string[] = [];
    let missCount = 0;
    found.forEach((bytes, index) => {
      const value = this.#decode<T>(config, bytes, now);
      const key = keys[index] as string;
      if (value === MISSING) {
        missCount += 1;
        if (!missing.includes(key)) missing.push(key);
      } else values.push(value);
    });
    if (trace !== undefined) {
      trace.missCount = missCount;
      trace.outcome = missCount > 0 ? 'miss' : 'hit';
    }
    if (missing.length > 0) throw new NotFoundError(missing);
    return values;
  }

  /**
   * Stores `value` under `key`. With `options.lock`, checks in order: the lock's key
   * ({@link LockKeyMismatchError}), that it is active ({@link LockNotActiveError}), that it has
   * not expired ({@link LockTimeoutError}), and then the backend confirms with the write that
   * the lock still holds the key ({@link LockTimeoutError}, nothing written).
   *
   * @throws {SerializationError} when the value cannot be encoded.
   * @throws {ValueTooLargeError} when the encoded value exceeds the backend's limit.
   */
  set(key: string, value: unknown, options: SetOptions = {}): Promise<void> {
    if (!storeOperationTracing.hasSubscribers) return this.#set(key, value, options, undefined);
    return this.#traced('set', key, 1, (trace) => this.#set(key, value, options, trace));
  }

  async #set(key: string, value: unknown, options: SetOptions, trace: StoreTrace | undefined): Promise<void> {
    const config = this.#resolved();
    const stored = this.#storedKey(config, key);
    optionalObject('set options', options);
    const ttlMs = optionalDuration('ttlMs', options.ttlMs, { positive: true }) ?? config.ttlMs;
    const lease = options.lock === undefined ? undefined : this.#checkLock(options.lock, key);
    const bytes = this.#encode(config, key, value, ttlMs);
    const outcome = await this.#call(config, 'set', () =>
      config.chain.set(stored, bytes, {
        ...(ttlMs === undefined ? {} : { expiresAt: Date.now() + ttlMs }),
        ...(lease === undefined ? {} : { lease }),
      }),
    );
    if (trace !== undefined) trace.outcome = outcome === 'lease-lost' ? 'lease-lost' : 'written';
    if (outcome === 'lease-lost') {
      options.lock?.markLost();
      throw new LockTimeoutError(key);
    }
  }

  /**
   * Stores every entry, without locks (locking many keys at once invites deadlock).
   * Later duplicates win. `{}` and `[]` do nothing.
   */
  setMany(entries: Record<string, unknown> | Iterable<readonly [string, unknown]>, options: SetManyOptions = {}): Promise<void> {
    if (!storeOperationTracing.hasSubscribers) return this.#setMany(entries, options, undefined);
    return this.#traced('setMany', undefined, Array.isArray(entries) ? entries.length : 0, (trace) =>
      this.#setMany(entries, options, trace),
    );
  }

  async #setMany(
    entries: Record<string, unknown> | Iterable<readonly [string, unknown]>,
    options: SetManyOptions,
    trace: StoreTrace | undefined,
  ): Promise<void> {
    const config = this.#resolved();
    optionalObject('setMany options', options);
    const ttlMs = optionalDuration('ttlMs', options.ttlMs, { positive: true }) ?? config.ttlMs;
    const pairs = toPairs(entries);
    if (trace !== undefined) trace.keyCount = pairs.length;
    const encoded = pairs.map(([key, value]) => [this.#storedKey(config, key), this.#encode(config, key, value, ttlMs)] as const);
    if (encoded.length > 0) {
      await this.#call(config, 'setMany', () =>
        config.chain.setMany(encoded, ttlMs === undefined ? {} : { expiresAt: Date.now() + ttlMs }),
      );
    }
    if (trace !== undefined) trace.outcome = 'written';
  }

  /**
   * Deletes `key`, with the same lock checks as {@link set}.
   * @throws {NotFoundError} when the key does not exist.
   */
  delete(key: string, options: DeleteOptions = {}): Promise<void> {
    if (!storeOperationTracing.hasSubscribers) return this.#delete(key, options, undefined);
    return this.#traced('delete', key, 1, (trace) => this.#delete(key, options, trace));
  }

  async #delete(key: string, options: DeleteOptions, trace: StoreTrace | undefined): Promise<void> {
    const config = this.#resolved();
    const stored = this.#storedKey(config, key);
    optionalObject('delete options', options);
    const lease = options.lock === undefined ? undefined : this.#checkLock(options.lock, key);
    // A backend with coarse expiry (memcached: whole seconds) may still hold a value the
    // envelope says has expired; that key is missing, as it is for get. One extra read, only there.
    const expiredBeforeDelete = config.ttlResolutionMs > 1 && (await this.#isExpiredOnBackend(config, stored));
    const outcome = await this.#call(config, 'delete', () => config.chain.delete(stored, lease === undefined ? {} : { lease }));
    if (trace !== undefined) {
      trace.outcome = outcome === 'lease-lost' ? 'lease-lost' : outcome === 'missing' || expiredBeforeDelete ? 'miss' : 'deleted';
    }
    if (outcome === 'lease-lost') {
      options.lock?.markLost();
      throw new LockTimeoutError(key);
    }
    if (outcome === 'missing' || expiredBeforeDelete) throw new NotFoundError(key);
  }

  /** Deletes every key, without locks; missing keys are ignored and `[]` does nothing. */
  deleteMany(keys: readonly string[]): Promise<void> {
    if (!storeOperationTracing.hasSubscribers) return this.#deleteMany(keys, undefined);
    return this.#traced('deleteMany', undefined, Array.isArray(keys) ? keys.length : 0, (trace) => this.#deleteMany(keys, trace));
  }

  async #deleteMany(keys: readonly string[], trace: StoreTrace | undefined): Promise<void> {
    const config = this.#resolved();
    const stored = this.#storedKeys(config, keys);
    if (stored.length > 0) await this.#call(config, 'deleteMany', () => config.chain.deleteMany(stored));
    if (trace !== undefined) trace.outcome = 'deleted';
  }

  /**
   * A write lock for `key` (not yet acquired).
   * @throws {NotConfiguredError} before `configure`. @throws {InvalidKeyError} for a bad key.
   */
  getLock(key: string, options: LockOptions = {}): KeyValueStoreLock {
    return createLock(this.#host, key, options);
  }

  /**
   * Runs `fn` holding the lock for `key`, and releases it afterwards even when `fn` throws
   * (`fn`'s error propagates unchanged).
   * @throws {LockAcquireTimeoutError} when the lock could not be taken within `waitMs`.
   */
  async withLock<R>(key: string, fn: (lock: KeyValueStoreLock) => R | Promise<R>, options: WithLockOptions = {}): Promise<R> {
    if (typeof fn !== 'function') throw new ValidationError('withLock: fn must be a function.');
    optionalObject('withLock options', options);
    const { waitMs, signal, ...lockOptions } = options;
    const lock = this.getLock(key, lockOptions);
    await lock.acquire({ ...(waitMs === undefined ? {} : { waitMs }), ...(signal === undefined ? {} : { signal }) });
    let result: R;
    try {
      result = await fn(lock);
    } catch (error) {
      // fn's own error is what the caller gets; the release failure is reported, not swallowed.
      await lock.release().catch((releaseError: unknown) => reportGiveBackFailure(`KeyValueStore "${this.name}"`, { key }, releaseError));
      throw error;
    }
    await lock.release();
    return result;
  }

  /**
   * The value under `key`; when missing, one caller across every process sharing the backend
   * runs `creator` under the key's lock and stores its result, and the others wait for it and
   * return the stored value. The lock is kept alive while `creator` runs.
   */
  getOrCreate<T>(key: string, creator: () => T | Promise<T>, options: GetOrCreateOptions = {}): Promise<T> {
    if (!storeOperationTracing.hasSubscribers) return this.#getOrCreate(key, creator, options, undefined);
    return this.#traced('getOrCreate', key, 1, (trace) => this.#getOrCreate(key, creator, options, trace));
  }

  async #getOrCreate<T>(
    key: string,
    creator: () => T | Promise<T>,
    options: GetOrCreateOptions,
    trace: StoreTrace | undefined,
  ): Promise<T> {
    if (typeof creator !== 'function') throw new ValidationError('getOrCreate: creator must be a function.');
    optionalObject('getOrCreate options', options);
    const ttlMs = optionalDuration('ttlMs', options.ttlMs, { positive: true });
    const waitMs = optionalDuration('waitMs', options.waitMs);
    const signal = optionalSignal('signal', options.signal);
    try {
      const found = await this.get<T>(key);
      if (trace !== undefined) trace.outcome = 'hit';
      return found;
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
    }
    const lockOptions: WithLockOptions = {
      autoExtend: true,
      ...(waitMs === undefined ? {} : { waitMs }),
      ...(signal === undefined ? {} : { signal }),
    };
    let outcome: 'waited' | 'created' = 'waited';
    const value = await this.withLock(
      key,
      async (lock) => {
        try {
          return await this.get<T>(key);
        } catch (error) {
          if (!(error instanceof NotFoundError)) throw error;
        }
        const created = await creator();
        await this.set(key, created, { lock, ...(ttlMs === undefined ? {} : { ttlMs }) });
        outcome = 'created';
        return created;
      },
      lockOptions,
    );
    // Only now: a failed release after the callback is a failure, not this outcome.
    if (trace !== undefined) trace.outcome = outcome;
    return value;
  }

  /**
   * Closes the backend chain and removes the store from the registry. Idempotent; later
   * calls reject with {@link NotConfiguredError}.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    forgetStore(this);
    const config = this.#config;
    this.#config = undefined;
    if (config === undefined) return;
    const held = [...this.#activeLocks];
    this.#activeLocks.clear();
    try {
      // Give the leases back before the chain goes, so other processes need not wait them out.
      await Promise.all(held.map((lock) => lock.giveBackAtClose()));
      await withDeadline('close', config.operationTimeoutMs, () => config.chain.close(), { name: `KeyValueStore "${this.name}"` });
    } finally {
      config.calls.close();
    }
  }

  /** Same as {@link close}; lets `await using` close the store. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Runs one data call under the store tracing channel (callers check `hasSubscribers` first). */
  #traced<R>(operation: StoreOperation, key: unknown, keyCount: number, run: (trace: StoreTrace) => Promise<R>): Promise<R> {
    const config = this.#config;
    const trace: StoreTrace = {
      store: this.name,
      operation,
      backend: config?.backendName,
      key: config?.traceKeys === true && typeof key === 'string' ? key : undefined,
      keyCount,
      outcome: undefined,
      missCount: undefined,
      durationMs: undefined,
    };
    return traceCall(storeOperationTracing, trace, () => run(trace));
  }

  #resolved(): ResolvedConfig {
    if (this.#config === undefined) {
      throw new NotConfiguredError(this.name, this.#closed ? 'is closed' : undefined);
    }
    return this.#config;
  }

  #storedKey(config: ResolvedConfig, key: unknown): string {
    assertKey(key);
    let stored: unknown;
    try {
      stored = config.mangle(key);
    } catch (error) {
      if (error instanceof LatchkeyError) throw error;
      throw new InvalidKeyError(key, `the key mangler threw: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    if (typeof stored !== 'string' || stored.length === 0) {
      throw new InvalidKeyError(key, `the key mangler returned ${describe(stored)}, not a non-empty string`);
    }
    if (config.maxKeyBytes !== undefined && Buffer.byteLength(stored, 'utf8') > config.maxKeyBytes) {
      throw new InvalidKeyError(key, `the stored key is longer than the backend's ${config.maxKeyBytes} bytes`);
    }
    return stored;
  }

  #storedKeys(config: ResolvedConfig, keys: readonly string[]): string[] {
    if (!Array.isArray(keys)) throw new ValidationError(`keys must be an array, got ${describe(keys)}.`);
    return keys.map((key) => this.#storedKey(config, key));
  }

  #checkLock(lock: unknown, key: string) {
    if (!(lock instanceof KeyValueStoreLock)) throw new ValidationError(`options.lock must be a KeyValueStoreLock, got ${describe(lock)}.`);
    return lock.leaseForWrite(this.#host, key);
  }

  #encode(config: ResolvedConfig, key: string, value: unknown, ttlMs: number | undefined): Uint8Array {
    const bytes = seal(encodeWith(config.codec, value), ttlMs === undefined ? undefined : Date.now() + ttlMs);
    if (config.maxValueBytes !== undefined && bytes.byteLength > config.maxValueBytes) {
      throw new ValueTooLargeError(bytes.byteLength, config.maxValueBytes, key);
    }
    return bytes;
  }

  #decode<T>(config: ResolvedConfig, bytes: StoredValue | undefined, now: number): T | typeof MISSING {
    if (bytes === undefined || bytes === null) return MISSING;
    const { payload, expiresAt } = open(bytes);
    if (expiresAt !== undefined && expiresAt <= now) return MISSING;
    return decodeWith(config.codec, payload) as T;
  }

  async #isExpiredOnBackend(config: ResolvedConfig, stored: string): Promise<boolean> {
    const bytes = await this.#call(config, 'delete', () => config.chain.get(stored));
    if (bytes === undefined) return false;
    try {
      const { expiresAt } = open(bytes);
      return expiresAt !== undefined && expiresAt <= Date.now();
    } catch {
      // Bytes that are not an envelope are not expired: delete removes them like any value.
      return false;
    }
  }

  #call<T>(config: ResolvedConfig, what: string, work: () => Promise<T>): Promise<T> {
    return config.calls.run(what, work);
  }
}

const MISSING: unique symbol = Symbol('missing');

function toPairs(entries: Record<string, unknown> | Iterable<readonly [string, unknown]>): (readonly [string, unknown])[] {
  if (typeof entries !== 'object' || entries === null)
    throw new ValidationError(`setMany entries must be an object or an iterable of [key, value] pairs, got ${describe(entries)}.`);
  if (Symbol.iterator in entries) {
    return Array.from(entries as Iterable<readonly [string, unknown]>, (pair) => {
      if (!Array.isArray(pair) || pair.length !== 2) throw new ValidationError('setMany entries must be [key, value] pairs.');
      return pair as unknown as readonly [string, unknown];
    });
  }
  return Object.entries(entries);
}
