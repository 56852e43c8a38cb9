import type { Backend, BackendWriteOptions, StoredValue, WriteOutcome } from './backend.js';
import { decodeAt, encodeSealed } from './codec.js';
import {
  AlreadyConfiguredError,
  BackendError,
  InvalidKeyError,
  LatchkeyError,
  LockTimeoutError,
  NotConfiguredError,
  NotFoundError,
  NotSupportedError,
  ValidationError,
  ValueTooLargeError,
} from './errors.js';
import type { LockHost, ResolvedConfig } from './internal/config.js';
import { noteNextRun, settlesWithin, withDeadline } from './backend-kit/call-runner.js';
import { reportGiveBackFailure } from './backend-kit/warnings.js';
import { carriedKey, expiryOf, open, payloadOffset, reseal } from './internal/envelope.js';
import { forgetStore } from './internal/registry-state.js';
import { resolveConfig } from './internal/resolve-config.js';
import { traceCall, type Writable } from './internal/trace.js';
import { assertKey, describe, optionalBoolean, optionalDuration, optionalObject, optionalSignal } from './internal/validate.js';
import { createLock, KeyValueStoreLock, type LockOptions } from './key-value-store-lock.js';
import type {
  ConfigureOptions,
  DeleteOptions,
  GetManyOptions,
  GetOrCreateOptions,
  SetManyEntry,
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
  GetManyOptions,
  GetOrCreateOptions,
  ProxyBackendClass,
  SetManyEntry,
  SetManyEntryOptions,
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
    let bytes: StoredValue | undefined;
    try {
      noteNextRun();
      bytes = await this.#send(config, 'get', config.chain.get(stored));
    } catch (error) {
      throw this.#callError('get', error);
    }
    const found = this.#decode<T>(config, bytes, Date.now());
    if (trace !== undefined) {
      trace.missCount = found === MISSING ? 1 : 0;
      trace.outcome = found === MISSING ? 'miss' : 'hit';
    }
    if (found === MISSING) throw new NotFoundError(key);
    return found;
  }

  /**
   * The value stored under `key`, or `undefined` when it is missing or expired: {@link get}
   * without the `NotFoundError`. A stored `undefined` looks the same; {@link has} tells them apart.
   */
  find<T = unknown>(key: string): Promise<T | undefined> {
    if (!storeOperationTracing.hasSubscribers) return this.#find<T>(key, undefined);
    return this.#traced('find', key, 1, (trace) => this.#find<T>(key, trace));
  }

  async #find<T>(key: string, trace: StoreTrace | undefined): Promise<T | undefined> {
    const config = this.#resolved();
    const stored = this.#storedKey(config, key);
    let bytes: StoredValue | undefined;
    try {
      noteNextRun();
      bytes = await this.#send(config, 'get', config.chain.get(stored));
    } catch (error) {
      throw this.#callError('get', error);
    }
    const found = this.#decode<T>(config, bytes, Date.now());
    if (trace !== undefined) {
      trace.missCount = found === MISSING ? 1 : 0;
      trace.outcome = found === MISSING ? 'miss' : 'hit';
    }
    return found === MISSING ? undefined : found;
  }

  /**
   * The values of `keys`, in input order (duplicates give duplicates). `[]` for `[]`.
   * With `{ allowMissing: true }`, `undefined` stands in for each missing or expired key.
   * @throws {NotFoundError} when any key is missing (without `allowMissing`); `target` lists all
   * missing keys in input order.
   */
  getMany<T = unknown>(keys: readonly string[], options?: GetManyOptions & { readonly allowMissing?: false }): Promise<T[]>;
  getMany<T = unknown>(keys: readonly string[], options: GetManyOptions & { readonly allowMissing: true }): Promise<(T | undefined)[]>;
  getMany<T = unknown>(keys: readonly string[], options?: GetManyOptions): Promise<(T | undefined)[]>;
  getMany<T = unknown>(keys: readonly string[], options: GetManyOptions = {}): Promise<(T | undefined)[]> {
    if (!storeOperationTracing.hasSubscribers) return this.#getMany<T>(keys, options, undefined);
    return this.#traced('getMany', undefined, Array.isArray(keys) ? keys.length : 0, (trace) => this.#getMany<T>(keys, options, trace));
  }

  async #getMany<T>(keys: readonly string[], options: GetManyOptions, trace: StoreTrace | undefined): Promise<(T | undefined)[]> {
    const config = this.#resolved();
    optionalObject('getMany options', options);
    const allowMissing = optionalBoolean('allowMissing', options.allowMissing) ?? false;
    const stored = this.#storedKeys(config, keys);
    if (stored.length === 0) {
      if (trace !== undefined) {
        trace.missCount = 0;
        trace.outcome = 'hit';
      }
      return [];
    }
    let found: (StoredValue | undefined)[];
    try {
      noteNextRun();
      found = await this.#send(config, 'getMany', config.chain.getMany(stored));
    } catch (error) {
      throw this.#callError('getMany', error);
    }
    if (!Array.isArray(found) || found.length !== stored.length) {
      throw new BackendError(
        `getMany: the backend answered ${Array.isArray(found) ? found.length : describe(found)} values for ${stored.length} keys.`,
      );
    }
    const now = Date.now();
    const values = new Array<T | undefined>(found.length);
    const missing: string[] = [];
    let missCount = 0;
    for (let index = 0; index < found.length; index++) {
      const value = this.#decode<T>(config, found[index], now);
      if (value === MISSING) {
        missCount += 1;
        const key = keys[index] as string;
        if (!allowMissing && !missing.includes(key)) missing.push(key);
        values[index] = undefined;
      } else values[index] = value;
    }
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
    const ttlMs = optionalDuration('ttlMs', options.ttlMs, POSITIVE) ?? config.ttlMs;
    const lease = options.lock === undefined ? undefined : this.#checkLock(options.lock, key);
    // One instant for the envelope and the backend, so that at 1 ms resolution they agree (has()).
    const expiresAt = ttlMs === undefined ? undefined : Date.now() + ttlMs;
    const bytes = this.#encode(config, key, stored, value, expiresAt);
    let outcome: WriteOutcome;
    try {
      noteNextRun();
      outcome = await this.#send(config, 'set', config.chain.set(stored, bytes, writeOptions(expiresAt, lease)));
    } catch (error) {
      throw this.#callError('set', error);
    }
    if (trace !== undefined) trace.outcome = outcome === 'lease-lost' ? 'lease-lost' : 'written';
    if (outcome === 'lease-lost') {
      options.lock?.markLost();
      throw new LockTimeoutError(key);
    }
  }

  /**
   * Stores every entry, without locks (locking many keys at once invites deadlock).
   * Later duplicates win. `{}` and `[]` do nothing. An entry `[key, value, { ttlMs }]` has its
   * own expiry (over the call's `ttlMs`, over the store's); entries are sent in one backend
   * batch per distinct expiry, concurrently, so a failure may leave some batches written.
   */
  setMany(entries: Record<string, unknown> | Iterable<SetManyEntry>, options: SetManyOptions = {}): Promise<void> {
    if (!storeOperationTracing.hasSubscribers) return this.#setMany(entries, options, undefined);
    return this.#traced('setMany', undefined, Array.isArray(entries) ? entries.length : 0, (trace) =>
      this.#setMany(entries, options, trace),
    );
  }

  async #setMany(
    entries: Record<string, unknown> | Iterable<SetManyEntry>,
    options: SetManyOptions,
    trace: StoreTrace | undefined,
  ): Promise<void> {
    const config = this.#resolved();
    optionalObject('setMany options', options);
    const callTtlMs = optionalDuration('ttlMs', options.ttlMs, POSITIVE) ?? config.ttlMs;
    const parsed = toEntries(entries);
    if (trace !== undefined) trace.keyCount = parsed.length;
    const now = Date.now();
    // One backend batch per distinct expiry (the Backend's setMany takes one for all entries).
    const batches = new Map<number | undefined, (readonly [string, StoredValue])[]>();
    const lastExpiry = new Map<string, number | undefined>();
    for (const entry of parsed) {
      const ttlMs = entry.ttlMs ?? callTtlMs;
      const expiresAt = ttlMs === undefined ? undefined : now + ttlMs;
      const stored = this.#storedKey(config, entry.key);
      const batch = batches.get(expiresAt) ?? [];
      batch.push([stored, this.#encode(config, entry.key, stored, entry.value, expiresAt)]);
      batches.set(expiresAt, batch);
      lastExpiry.set(stored, expiresAt);
    }
    // With several batches in flight at once, "later duplicates win" holds only if each key is in one of them.
    if (batches.size > 1) dropOverwritten(batches, lastExpiry);
    await Promise.all(
      [...batches].map(([expiresAt, batch]) =>
        this.#call(config, 'setMany', () => config.chain.setMany(batch, expiresAt === undefined ? {} : { expiresAt })),
      ),
    );
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
   * True when a live value is stored under `key` (a stored `null` or `undefined` counts);
   * false when it is missing or expired. Never decodes the value.
   */
  has(key: string): Promise<boolean> {
    if (!storeOperationTracing.hasSubscribers) return this.#has(key, undefined);
    return this.#traced('has', key, 1, (trace) => this.#has(key, trace));
  }

  async #has(key: string, trace: StoreTrace | undefined): Promise<boolean> {
    const config = this.#resolved();
    const stored = this.#storedKey(config, key);
    let found: boolean;
    if (config.dataMethods.has && config.ttlResolutionMs <= 1) {
      const chain = config.chain as Required<Backend>;
      found = await this.#call(config, 'has', () => chain.has(stored));
      if (typeof found !== 'boolean') throw new BackendError(`has: the backend answered ${describe(found)}, not a boolean.`);
    } else {
      const bytes = await this.#call(config, 'has', () => config.chain.get(stored));
      found = bytes !== undefined && bytes !== null && !isExpired(open(bytes).expiresAt, Date.now());
    }
    if (trace !== undefined) trace.outcome = found ? 'hit' : 'miss';
    return found;
  }

  /**
   * Milliseconds until the value under `key` expires; `undefined` when it never expires. Read
   * from the value's envelope (one `get`), so it agrees with {@link get} whatever the backend's
   * own expiry resolution.
   * @throws {NotFoundError} when the key is missing or expired.
   */
  ttl(key: string): Promise<number | undefined> {
    if (!storeOperationTracing.hasSubscribers) return this.#ttl(key, undefined);
    return this.#traced('ttl', key, 1, (trace) => this.#ttl(key, trace));
  }

  async #ttl(key: string, trace: StoreTrace | undefined): Promise<number | undefined> {
    const config = this.#resolved();
    const stored = this.#storedKey(config, key);
    const bytes = await this.#call(config, 'ttl', () => config.chain.get(stored));
    const now = Date.now();
    const expiresAt = bytes === undefined || bytes === null ? MISSING : open(bytes).expiresAt;
    const missing = expiresAt === MISSING || isExpired(expiresAt, now);
    if (trace !== undefined) trace.outcome = missing ? 'miss' : 'hit';
    if (missing) throw new NotFoundError(key);
    return expiresAt === undefined ? undefined : expiresAt - now;
  }

  /**
   * Gives the value under `key` a new expiry, `ttlMs` from now, leaving the value as it is.
   * Takes no lock: it reads the value and writes it back re-sealed with the new expiry. Over a
   * backend with `compareAndSet` the write-back happens only if nobody wrote in between (a
   * concurrent write, locked or not, wins and keeps its own expiry); over one without it, a
   * write landing between the read and the write-back is lost and a concurrent delete undone.
   *
   * @throws {NotFoundError} when the key is missing or expired (also when it expired or was
   * deleted during the touch).
   * @throws {ValidationError} when `ttlMs` is not a positive duration.
   */
  touch(key: string, ttlMs: number): Promise<void> {
    if (!storeOperationTracing.hasSubscribers) return this.#touch(key, ttlMs, undefined);
    return this.#traced('touch', key, 1, (trace) => this.#touch(key, ttlMs, trace));
  }

  async #touch(key: string, ttlMs: number, trace: StoreTrace | undefined): Promise<void> {
    const config = this.#resolved();
    const stored = this.#storedKey(config, key);
    const duration = optionalDuration('ttlMs', ttlMs, POSITIVE);
    if (duration === undefined) throw new ValidationError('touch: ttlMs is required.');
    const miss = (): never => {
      if (trace !== undefined) trace.outcome = 'miss';
      throw new NotFoundError(key);
    };
    const current = await this.#call(config, 'touch', () => config.chain.get(stored));
    if (current === undefined || current === null || isExpired(open(current).expiresAt, Date.now())) return miss();
    const expiresAt = Date.now() + duration;
    const next = reseal(current, expiresAt);
    if (config.maxValueBytes !== undefined && next.byteLength > config.maxValueBytes) {
      throw new ValueTooLargeError(next.byteLength, config.maxValueBytes, key);
    }
    if (config.dataMethods.compareAndSet) {
      const chain = config.chain as Required<Backend>;
      const swapped = await this.#call(config, 'touch', () => chain.compareAndSet(stored, current, next, { expiresAt }));
      // Not swapped: either someone wrote after the read (their write came after this touch and
      // replaced value and expiry, so the touch is done), or the value is gone (expired or
      // deleted meanwhile: a miss). One more read tells which.
      if (swapped !== true && !(await this.#has(key, undefined))) return miss();
    } else {
      await this.#call(config, 'touch', () => config.chain.set(stored, next, { expiresAt }));
    }
    if (trace !== undefined) trace.outcome = 'written';
  }

  /**
   * Removes every value of this store, without locks. A store's keyspace is its backend's
   * namespace (key prefix, table or collection), so this removes the values of every store
   * configured over the same namespace too, and nothing outside it. Locks survive: a holder
   * keeps its lock, and fencing tokens keep increasing.
   *
   * Over a backend without a `clear` of its own, the store lists the keys and deletes them in
   * batches (a value written meanwhile may survive).
   * @throws {NotSupportedError} when the backend can neither clear nor list its keys.
   */
  clear(): Promise<void> {
    if (!storeOperationTracing.hasSubscribers) return this.#clear(undefined);
    return this.#traced('clear', undefined, 0, (trace) => this.#clear(trace));
  }

  async #clear(trace: StoreTrace | undefined): Promise<void> {
    const config = this.#resolved();
    const chain = config.chain as Required<Backend>;
    if (config.dataMethods.clear) {
      await this.#call(config, 'clear', () => chain.clear());
    } else if (config.dataMethods.keys) {
      let batch: string[] = [];
      for await (const stored of this.#backendKeys(config)) {
        batch.push(stored);
        if (batch.length >= CLEAR_BATCH) {
          const keys = batch;
          batch = [];
          await this.#call(config, 'clear', () => chain.deleteMany(keys));
        }
      }
      if (batch.length > 0) await this.#call(config, 'clear', () => chain.deleteMany(batch));
    } else {
      throw new NotSupportedError('clear', `${config.backendName} can neither clear nor list its keys: clear() is not supported.`);
    }
    if (trace !== undefined) trace.outcome = 'deleted';
  }

  /**
   * This store's user keys, each live value's once (a key may come twice when the backend's
   * listing repeats it, as Redis `SCAN` can). A key stored for the whole iteration is yielded;
   * one written, deleted or expiring meanwhile may or may not be. Takes no lock and holds no
   * snapshot.
   *
   * With a hashing key mangler (the default `sha1KeyMangler`) a stored key cannot be turned
   * back into the user key, so values carry their user key in their envelope; the store reads
   * the values in pages of 100 to learn their keys and expiry. Values it cannot address are
   * left out: those written by earlier releases under a hashing mangler (their key was not
   * kept; they are listed once rewritten), bytes that are not latchkey values, and values of
   * another store over the same namespace whose key this store's mangler maps elsewhere.
   *
   * @throws {NotSupportedError} (from the first `next()`) when the backend cannot list its keys.
   */
  keys(): AsyncIterable<string> {
    return { [Symbol.asyncIterator]: () => this.#tracedKeys() };
  }

  async *#tracedKeys(): AsyncGenerator<string, void, undefined> {
    if (!storeOperationTracing.hasSubscribers) {
      yield* this.#keys();
      return;
    }
    let finish: (error?: unknown) => void = () => undefined;
    let trace: StoreTrace | undefined;
    const ended = this.#traced('keys', undefined, 0, (message) => {
      trace = message;
      return new Promise<void>((resolve, reject) => {
        finish = (error) => (error === undefined ? resolve() : reject(error));
      });
    });
    // The iteration's own error reaches the caller through the generator; this copy only ends the trace.
    ended.catch(() => undefined);
    let count = 0;
    let failed = false;
    try {
      for await (const key of this.#keys()) {
        count += 1;
        yield key;
      }
    } catch (error) {
      failed = true;
      finish(error);
      throw error;
    } finally {
      if (!failed && trace !== undefined) {
        trace.keyCount = count;
        trace.outcome = 'listed';
        finish();
      }
    }
  }

  async *#keys(): AsyncGenerator<string, void, undefined> {
    const config = this.#resolved();
    if (!config.dataMethods.keys) {
      throw new NotSupportedError('keys', `${config.backendName} cannot list its keys: keys() is not supported.`);
    }
    // Keys stored as given, over exact expiry: the stored key is the user key and the backend
    // drops expired values itself, so there is nothing to read.
    if (config.keysAsGiven && config.ttlResolutionMs <= 1) {
      yield* this.#backendKeys(config);
      return;
    }
    let page: string[] = [];
    for await (const stored of this.#backendKeys(config)) {
      page.push(stored);
      if (page.length >= KEYS_PAGE) {
        yield* await this.#userKeysOf(config, page);
        page = [];
      }
    }
    if (page.length > 0) yield* await this.#userKeysOf(config, page);
  }

  /** The backend's stored keys, each step under the store's call deadline. */
  async *#backendKeys(config: ResolvedConfig): AsyncGenerator<string, void, undefined> {
    const iterator = (config.chain as Required<Backend>).keys()[Symbol.asyncIterator]();
    let done = false;
    try {
      while (true) {
        const step = await this.#call(config, 'keys', () => iterator.next());
        if (step.done === true) {
          done = true;
          return;
        }
        if (typeof step.value !== 'string' || step.value.length === 0) {
          throw new BackendError(`keys: the backend yielded ${describe(step.value)}, not a stored key.`);
        }
        yield step.value;
      }
    } finally {
      // Stopped early (the caller broke out, or a step failed): let the backend free its cursor.
      if (!done) await iterator.return?.();
    }
  }

  /** The user keys of the live values among `stored`, read from their envelopes. */
  async #userKeysOf(config: ResolvedConfig, stored: readonly string[]): Promise<string[]> {
    const found = await this.#call(config, 'keys', () => config.chain.getMany(stored));
    if (!Array.isArray(found) || found.length !== stored.length) {
      throw new BackendError(
        `keys: the backend answered ${Array.isArray(found) ? found.length : describe(found)} values for ${stored.length} keys.`,
      );
    }
    const now = Date.now();
    const keys: string[] = [];
    found.forEach((bytes, index) => {
      const storedKey = stored[index] as string;
      const key = userKeyOf(config, storedKey, bytes, now);
      if (key !== undefined) keys.push(key);
    });
    return keys;
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
    const ttlMs = optionalDuration('ttlMs', options.ttlMs, POSITIVE);
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
    // A UTF-16 code unit is at most 3 UTF-8 bytes: short keys (every sha1 key) skip the count.
    if (
      config.maxKeyBytes !== undefined &&
      stored.length * 3 > config.maxKeyBytes &&
      Buffer.byteLength(stored, 'utf8') > config.maxKeyBytes
    ) {
      throw new InvalidKeyError(key, `the stored key is longer than the backend's ${config.maxKeyBytes} bytes`);
    }
    return stored;
  }

  #storedKeys(config: ResolvedConfig, keys: readonly string[]): string[] {
    if (!Array.isArray(keys)) throw new ValidationError(`keys must be an array, got ${describe(keys)}.`);
    const stored = new Array<string>(keys.length);
    for (let index = 0; index < keys.length; index++) stored[index] = this.#storedKey(config, keys[index]);
    return stored;
  }

  #checkLock(lock: unknown, key: string) {
    if (!(lock instanceof KeyValueStoreLock)) throw new ValidationError(`options.lock must be a KeyValueStoreLock, got ${describe(lock)}.`);
    return lock.leaseForWrite(this.#host, key);
  }

  #encode(config: ResolvedConfig, key: string, stored: string, value: unknown, expiresAt: number | undefined): Uint8Array {
    // The user key travels with the value only when the stored key cannot name it (keys()).
    const bytes = encodeSealed(config.codec, value, expiresAt, stored === key ? undefined : key);
    if (config.maxValueBytes !== undefined && bytes.byteLength > config.maxValueBytes) {
      throw new ValueTooLargeError(bytes.byteLength, config.maxValueBytes, key);
    }
    return bytes;
  }

  #decode<T>(config: ResolvedConfig, bytes: StoredValue | undefined, now: number): T | typeof MISSING {
    if (bytes === undefined || bytes === null) return MISSING;
    const expiresAt = expiryOf(bytes);
    const at = payloadOffset(bytes, expiresAt);
    if (isExpired(expiresAt, now)) return MISSING;
    return decodeAt(config.codec, bytes, at) as T;
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

  /**
   * {@link #call} for the hot path, given the promise of a backend call made right after
   * {@link noteNextRun} (the caller maps a synchronous throw with {@link #callError}): when it comes from a
   * `CallRunner` whose deadline is no later than the store's (every adapter of this
   * repository, unless a proxy wraps it), that runner already bounds it and the store's own
   * deadline would never fire first, so the call costs one deadline, not two.
   */
  #send<T>(config: ResolvedConfig, what: string, started: Promise<T>): Promise<T> {
    return settlesWithin(started, config.operationTimeoutMs) ? started : config.calls.bound(what, started);
  }

  /** What a failed {@link #send} rejects with: a latchkey error as it is, anything else as the `cause` of a {@link BackendError} (as the store's runner maps it). */
  #callError(what: string, error: unknown): LatchkeyError {
    if (error instanceof LatchkeyError) return error;
    return new BackendError(`KeyValueStore "${this.name}": ${what} failed: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
}

const MISSING: unique symbol = Symbol('missing');
/** The options of a positive-duration check, made once (not an object per `set`). */
const POSITIVE = { positive: true } as const;
/** How many values `keys()` reads per `getMany` to learn their user keys. */
const KEYS_PAGE = 100;
/** How many keys the listing fallback of `clear()` deletes per `deleteMany`. */
const CLEAR_BATCH = 500;

/** The backend write options of a `set`: one object, no spreads (the hot path of every write). */
function writeOptions(expiresAt: number | undefined, lease: BackendWriteOptions['lease']): BackendWriteOptions {
  if (lease === undefined) return expiresAt === undefined ? {} : { expiresAt };
  return expiresAt === undefined ? { lease } : { expiresAt, lease };
}

function isExpired(expiresAt: number | undefined, now: number): boolean {
  return expiresAt !== undefined && expiresAt <= now;
}

/**
 * The user key of the value stored under `stored`, or `undefined` when the value is gone,
 * expired, not a latchkey value, or not one this store's mangler maps to `stored`.
 */
function userKeyOf(config: ResolvedConfig, stored: string, bytes: StoredValue | undefined, now: number): string | undefined {
  if (bytes === undefined || bytes === null) return undefined;
  let key: string;
  try {
    if (isExpired(open(bytes).expiresAt, now)) return undefined;
    key = carriedKey(bytes) ?? stored;
    if (config.mangle(key) !== stored) return undefined;
  } catch {
    // Not an envelope, or a key the mangler refuses: not a value this store can address.
    return undefined;
  }
  return key;
}

interface ParsedEntry {
  readonly key: string;
  readonly value: unknown;
  readonly ttlMs: number | undefined;
}

function toEntries(entries: Record<string, unknown> | Iterable<SetManyEntry>): ParsedEntry[] {
  if (typeof entries !== 'object' || entries === null)
    throw new ValidationError(`setMany entries must be an object or an iterable of [key, value] pairs, got ${describe(entries)}.`);
  if (Symbol.iterator in entries) {
    return Array.from(entries as Iterable<SetManyEntry>, (entry: unknown) => {
      if (!Array.isArray(entry) || (entry.length !== 2 && entry.length !== 3)) {
        throw new ValidationError('setMany entries must be [key, value] or [key, value, { ttlMs }] tuples.');
      }
      const [key, value, options] = entry as [string, unknown, unknown];
      if (entry.length === 2 || options === undefined) return { key, value, ttlMs: undefined };
      const checked = optionalObject('setMany entry options', options) as { ttlMs?: unknown } | undefined;
      return { key, value, ttlMs: optionalDuration('ttlMs', checked?.ttlMs, POSITIVE) };
    });
  }
  return Object.entries(entries).map(([key, value]) => ({ key, value, ttlMs: undefined }));
}

/** Keeps each stored key only in the batch of its last entry (`lastExpiry`: the expiry of each key's last entry). */
function dropOverwritten(
  batches: Map<number | undefined, (readonly [string, StoredValue])[]>,
  lastExpiry: ReadonlyMap<string, number | undefined>,
): void {
  for (const [expiresAt, batch] of batches) {
    const kept = batch.filter(([stored]) => lastExpiry.get(stored) === expiresAt);
    if (kept.length === 0) batches.delete(expiresAt);
    else batches.set(expiresAt, kept);
  }
}
