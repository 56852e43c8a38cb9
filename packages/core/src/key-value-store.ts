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
  async get<T = unknown>(key: string): Promise<T> {
    const config = this.#resolved();
    const stored = this.#storedKey(config, key);
    const bytes = await this.#call(config, 'get', () => config.chain.get(stored));
    const found = this.#decode<T>(config, bytes, Date.now());
    if (found === MISSING) throw new NotFoundError(key);
    return found;
  }

  /**
   * The values of `keys`, in input order (duplicates give duplicates). `[]` for `[]`.
   * @throws {NotFoundError} when any key is missing; `target` lists all missing keys in input order.
   */
  async getMany<T = unknown>(keys: readonly string[]): Promise<T[]> {
    const config = this.#resolved();
    const stored = this.#storedKeys(config, keys);
    if (stored.length === 0) return [];
    const found = await this.#call(config, 'getMany', () => config.chain.getMany(stored));
    if (!Array.isArray(found) || found.length !== stored.length) {
      throw new BackendError(
        `getMany: the backend answered ${Array.isArray(found) ? found.length : describe(found)} values for ${stored.length} keys.`,
      );
    }
    const now = Date.now();
    const values: T[] = [];
    const missing: string[] = [];
    found.forEach((bytes, index) => {
      const value = this.#decode<T>(config, bytes, now);
      const key = keys[index] as string;
      if (value === MISSING) {
        if (!missing.includes(key)) missing.push(key);
      } else values.push(value);
    });
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
  async set(key: string, value: unknown, options: SetOptions = {}): Promise<void> {
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
    if (outcome === 'lease-lost') {
      options.lock?.markLost();
      throw new LockTimeoutError(key);
    }
  }

  /**
   * Stores every entry, without locks (locking many keys at once invites deadlock).
   * Later duplicates win. `{}` and `[]` do nothing.
   */
  async setMany(entries: Record<string, unknown> | Iterable<readonly [string, unknown]>, options: SetManyOptions = {}): Promise<void> {
    const config = this.#resolved();
    optionalObject('setMany options', options);
    const ttlMs = optionalDuration('ttlMs', options.ttlMs, { positive: true }) ?? config.ttlMs;
    const pairs = toPairs(entries);
    const encoded = pairs.map(([key, value]) => [this.#storedKey(config, key), this.#encode(config, key, value, ttlMs)] as const);
    if (encoded.length === 0) return;
    await this.#call(config, 'setMany', () => config.chain.setMany(encoded, ttlMs === undefined ? {} : { expiresAt: Date.now() + ttlMs }));
  }

  /**
   * Deletes `key`, with the same lock checks as {@link set}.
   * @throws {NotFoundError} when the key does not exist.
   */
  async delete(key: string, options: DeleteOptions = {}): Promise<void> {
    const config = this.#resolved();
    const stored = this.#storedKey(config, key);
    optionalObject('delete options', options);
    const lease = options.lock === undefined ? undefined : this.#checkLock(options.lock, key);
    // A backend with coarse expiry (memcached: whole seconds) may still hold a value the
    // envelope says has expired; that key is missing, as it is for get. One extra read, only there.
    const expiredBeforeDelete = config.ttlResolutionMs > 1 && (await this.#isExpiredOnBackend(config, stored));
    const outcome = await this.#call(config, 'delete', () => config.chain.delete(stored, lease === undefined ? {} : { lease }));
    if (outcome === 'lease-lost') {
      options.lock?.markLost();
      throw new LockTimeoutError(key);
    }
    if (outcome === 'missing' || expiredBeforeDelete) throw new NotFoundError(key);
  }

  /** Deletes every key, without locks; missing keys are ignored and `[]` does nothing. */
  async deleteMany(keys: readonly string[]): Promise<void> {
    const config = this.#resolved();
    const stored = this.#storedKeys(config, keys);
    if (stored.length === 0) return;
    await this.#call(config, 'deleteMany', () => config.chain.deleteMany(stored));
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
  async getOrCreate<T>(key: string, creator: () => T | Promise<T>, options: GetOrCreateOptions = {}): Promise<T> {
    if (typeof creator !== 'function') throw new ValidationError('getOrCreate: creator must be a function.');
    optionalObject('getOrCreate options', options);
    const ttlMs = optionalDuration('ttlMs', options.ttlMs, { positive: true });
    const waitMs = optionalDuration('waitMs', options.waitMs);
    const signal = optionalSignal('signal', options.signal);
    try {
      return await this.get<T>(key);
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
    }
    const lockOptions: WithLockOptions = {
      autoExtend: true,
      ...(waitMs === undefined ? {} : { waitMs }),
      ...(signal === undefined ? {} : { signal }),
    };
    return this.withLock(
      key,
      async (lock) => {
        try {
          return await this.get<T>(key);
        } catch (error) {
          if (!(error instanceof NotFoundError)) throw error;
        }
        const value = await creator();
        await this.set(key, value, { lock, ...(ttlMs === undefined ? {} : { ttlMs }) });
        return value;
      },
      lockOptions,
    );
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
