import {
  BackendClosedError,
  checkAcquireOptions,
  checkDuration,
  checkExpiresAt,
  checkLease,
  checkStoredEntries,
  checkStoredKey,
  checkStoredKeys,
  checkStoredValue,
  LocalLockTable,
  ValidationError,
  type AcquireLockOptions,
  type Backend,
  type BackendBatchWriteOptions,
  type BackendCapabilities,
  type BackendCompareAndSetOptions,
  type BackendDeleteOptions,
  type BackendWriteOptions,
  type DeleteOutcome,
  type Lease,
  type StoredValue,
  type WriteOutcome,
} from '@latchkey/core';

/** Options of {@link MemoryBackend}. */
export interface MemoryBackendOptions {
  /**
   * Upper bound on stored entries; when a write would exceed it, the least recently used
   * entry (read or written) is dropped first. Absent: unbounded.
   */
  readonly maxEntries?: number;
}

interface Entry {
  readonly value: Uint8Array;
  /** Absolute expiry (epoch ms), or `Infinity`. */
  readonly expiresAt: number;
}

const CAPABILITIES: BackendCapabilities = Object.freeze({
  lockScope: 'in-process',
  // Stryker disable next-line BooleanLiteral: a weaker declaration is still true, and the suite adapts to it (skips or relaxes the checks that need the promise), so no conformance check can fail on it.
  atomicLeaseWrites: true,
  // Stryker disable next-line BooleanLiteral: a weaker declaration is still true, and the suite adapts to it (skips or relaxes the checks that need the promise), so no conformance check can fail on it.
  fencingTokens: true,
  ttlResolutionMs: 1,
  minLeaseMs: 1,
  // Stryker disable next-line BooleanLiteral: a weaker declaration is still true, and the suite adapts to it (skips or relaxes the checks that need the promise), so no conformance check can fail on it.
  mayEvict: false,
  // Every call settles at once: the core needs no backstop timer.
  callDeadlineMs: 0,
});

/**
 * The in-process reference backend: values are copied in and out (mutating a buffer after
 * `set`, or a returned one, never changes what is stored), TTLs are exact to the millisecond,
 * `maxEntries` evicts least recently used entries, and per-key lease locks have FIFO waiters,
 * fencing tokens and lapse on a monotonic clock. Lease-conditional writes are atomic: the
 * lease check and the write happen in the same synchronous step.
 *
 * It implements every optional data method natively: `clear` (values only: held leases and
 * fencing counters survive), `keys` (a snapshot of the live keys taken at the first step),
 * `has`, and an atomic `compareAndSet`, so the store's `touch` never undoes a concurrent write.
 *
 * Locks and data are visible within this process only.
 */
export class MemoryBackend implements Backend {
  readonly capabilities: BackendCapabilities;
  readonly #entries = new Map<string, Entry>();
  readonly #locks = new LocalLockTable();
  readonly #maxEntries: number;
  #closed = false;

  constructor(options: MemoryBackendOptions = {}) {
    // Stryker disable next-line ConditionalExpression,LogicalOperator,EqualityOperator,StringLiteral: constructor options are MemoryBackend's own API, not the Backend contract: the suite gets backends from create() and only calls Backend methods (the memory unit tests check it).
    if (typeof options !== 'object' || options === null) throw new ValidationError('MemoryBackend options must be an object.');
    const { maxEntries } = options;
    // Stryker disable next-line ConditionalExpression,LogicalOperator,EqualityOperator,BooleanLiteral,BlockStatement: constructor options are MemoryBackend's own API, not the Backend contract: the suite gets backends from create() and only calls Backend methods (the memory unit tests check it).
    if (maxEntries !== undefined && (!Number.isInteger(maxEntries) || maxEntries < 1)) {
      // Stryker disable next-line StringLiteral: constructor options are MemoryBackend's own API, not the Backend contract: the suite gets backends from create() and only calls Backend methods (the memory unit tests check it).
      throw new ValidationError(`MemoryBackend: maxEntries must be a positive integer, got ${String(maxEntries)}.`);
    }
    this.#maxEntries = maxEntries ?? Infinity;
    this.capabilities = maxEntries === undefined ? CAPABILITIES : Object.freeze({ ...CAPABILITIES, mayEvict: true });
  }

  /** Number of stored entries, expired ones not yet swept included. */
  // Stryker disable next-line BlockStatement: size is MemoryBackend's own API, not the Backend contract: the suite gets backends from create() and only calls Backend methods (the memory unit tests check it).
  get size(): number {
    return this.#entries.size;
  }

  get(key: string): Promise<StoredValue | undefined> {
    return this.#run(() => {
      checkStoredKey(key);
      return this.#read(key, Date.now());
    });
  }

  getMany(keys: readonly string[]): Promise<(StoredValue | undefined)[]> {
    return this.#run(() => {
      checkStoredKeys(keys);
      const now = Date.now();
      return keys.map((key) => this.#read(key, now));
    });
  }

  set(key: string, value: StoredValue, options: BackendWriteOptions = {}): Promise<WriteOutcome> {
    return this.#run(() => {
      checkStoredKey(key);
      checkStoredValue(value, undefined, key);
      checkExpiresAt(options.expiresAt);
      if (options.lease !== undefined && !this.#holds(key, options.lease)) return 'lease-lost';
      this.#write(key, value, options.expiresAt);
      return 'written';
    });
  }

  setMany(entries: readonly (readonly [string, StoredValue])[], options: BackendBatchWriteOptions = {}): Promise<void> {
    return this.#run(() => {
      checkStoredEntries(entries, undefined);
      checkExpiresAt(options.expiresAt);
      for (const [key, value] of entries) this.#write(key, value, options.expiresAt);
    });
  }

  delete(key: string, options: BackendDeleteOptions = {}): Promise<DeleteOutcome> {
    return this.#run(() => {
      checkStoredKey(key);
      if (options.lease !== undefined && !this.#holds(key, options.lease)) return 'lease-lost';
      const present = this.#read(key, Date.now()) !== undefined;
      this.#entries.delete(key);
      return present ? 'deleted' : 'missing';
    });
  }

  deleteMany(keys: readonly string[]): Promise<void> {
    return this.#run(() => {
      checkStoredKeys(keys);
      for (const key of keys) this.#entries.delete(key);
    });
  }

  /** Drops every value; held leases, waiters and fencing counters are left as they are. */
  clear(): Promise<void> {
    return this.#run(() => {
      this.#entries.clear();
    });
  }

  /**
   * The stored keys of the live values, as of the first step of the iteration (a snapshot:
   * writes and deletes during the iteration do not change it). Does not touch LRU order.
   */
  keys(): AsyncIterable<string> {
    return { [Symbol.asyncIterator]: () => this.#keys() };
  }

  async *#keys(): AsyncGenerator<string, void, undefined> {
    const snapshot = await this.#run(() => {
      const now = Date.now();
      return [...this.#entries].filter(([, entry]) => entry.expiresAt > now).map(([key]) => key);
    });
    yield* snapshot;
  }

  has(key: string): Promise<boolean> {
    return this.#run(() => {
      checkStoredKey(key);
      const entry = this.#entries.get(key);
      return entry !== undefined && entry.expiresAt > Date.now();
    });
  }

  compareAndSet(key: string, expected: StoredValue, value: StoredValue, options: BackendCompareAndSetOptions = {}): Promise<boolean> {
    return this.#run(() => {
      checkStoredKey(key);
      checkStoredValue(expected, undefined, key);
      checkStoredValue(value, undefined, key);
      checkExpiresAt(options.expiresAt);
      const current = this.#read(key, Date.now());
      if (current === undefined || !sameBytes(current, expected)) return false;
      this.#write(key, value, options.expiresAt);
      return true;
    });
  }

  acquireLock(key: string, options: AcquireLockOptions): Promise<Lease | undefined> {
    if (this.#closed) return Promise.reject(closedError());
    try {
      checkStoredKey(key);
      checkAcquireOptions(options);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#locks.acquire(key, options);
  }

  releaseLock(lease: Lease): Promise<boolean> {
    return this.#run(() => {
      checkLease(lease);
      return this.#locks.release(lease);
    });
  }

  extendLock(lease: Lease, leaseMs: number): Promise<boolean> {
    return this.#run(() => {
      checkLease(lease);
      checkDuration('leaseMs', leaseMs);
      return this.#locks.extend(lease, leaseMs);
    });
  }

  /**
   * Drops every value and every held lease, as a server restart without persistence would
   * (waiters stay queued). For tests of lost locks.
   */
  // Stryker disable next-line BlockStatement: flush() is MemoryBackend's own API, not the Backend contract: the suite gets backends from create() and only calls Backend methods (the memory unit tests check it).
  flush(): void {
    this.#entries.clear();
    this.#locks.dropAllLeases();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#locks.close();
    this.#entries.clear();
  }

  #holds(key: string, lease: Lease): boolean {
    checkLease(lease);
    return lease.key === key && this.#locks.holds(lease);
  }

  #read(key: string, now: number): Uint8Array | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now) {
      this.#entries.delete(key);
      return undefined;
    }
    if (this.#maxEntries !== Infinity) {
      // Re-insert to mark as most recently used (Map keeps insertion order).
      this.#entries.delete(key);
      this.#entries.set(key, entry);
    }
    return entry.value.slice();
  }

  #write(key: string, value: Uint8Array, expiresAt: number | undefined): void {
    this.#entries.delete(key);
    this.#entries.set(key, { value: value.slice(), expiresAt: expiresAt ?? Infinity });
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.#entries.delete(oldest.value);
    }
  }

  #run<T>(work: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(closedError());
    try {
      return Promise.resolve(work());
    } catch (error) {
      return Promise.reject(error);
    }
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

function closedError(): BackendClosedError {
  return new BackendClosedError('MemoryBackend is closed.');
}
