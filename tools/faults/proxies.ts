/**
 * `ProxyBackend`s the scenarios put in front of a backend: one that counts calls (to prove
 * bad input is refused before any I/O), one that remembers leases and stored keys (to try a
 * stale holder's write directly against the backend, and to look for key collisions), and
 * one that keeps a shared backend open when a store closes.
 *
 * @module
 */
import {
  ProxyBackend,
  type AcquireLockOptions,
  type BackendBatchWriteOptions,
  type BackendDeleteOptions,
  type BackendWriteOptions,
  type DeleteOutcome,
  type Lease,
  type StoredValue,
  type WriteOutcome,
} from '@latchkey/core';

/** Counts every call that reaches the backend behind it. */
export class CountingProxy extends ProxyBackend {
  /** Calls per method name. */
  readonly calls = new Map<string, number>();

  /** Every call so far. */
  get total(): number {
    let sum = 0;
    for (const count of this.calls.values()) sum += count;
    return sum;
  }

  #count(method: string): void {
    this.calls.set(method, (this.calls.get(method) ?? 0) + 1);
  }

  override get(key: string): Promise<StoredValue | undefined> {
    this.#count('get');
    return super.get(key);
  }

  override getMany(keys: readonly string[]): Promise<(StoredValue | undefined)[]> {
    this.#count('getMany');
    return super.getMany(keys);
  }

  override set(key: string, value: StoredValue, options?: BackendWriteOptions): Promise<WriteOutcome> {
    this.#count('set');
    return super.set(key, value, options);
  }

  override setMany(entries: readonly (readonly [string, StoredValue])[], options?: BackendBatchWriteOptions): Promise<void> {
    this.#count('setMany');
    return super.setMany(entries, options);
  }

  override delete(key: string, options?: BackendDeleteOptions): Promise<DeleteOutcome> {
    this.#count('delete');
    return super.delete(key, options);
  }

  override deleteMany(keys: readonly string[]): Promise<void> {
    this.#count('deleteMany');
    return super.deleteMany(keys);
  }

  override acquireLock(key: string, options: AcquireLockOptions): Promise<Lease | undefined> {
    this.#count('acquireLock');
    return super.acquireLock(key, options);
  }

  override releaseLock(lease: Lease): Promise<boolean> {
    this.#count('releaseLock');
    return super.releaseLock(lease);
  }

  override extendLock(lease: Lease, leaseMs: number): Promise<boolean> {
    this.#count('extendLock');
    return super.extendLock(lease, leaseMs);
  }
}

/**
 * Remembers the last lease won for each stored key and the stored key of every single-key
 * write, so a scenario can replay a stale holder's write straight at the backend (bypassing
 * the client-side expiry check) and compare stored keys.
 */
export class RecordingProxy extends ProxyBackend {
  readonly #leases = new Map<string, Lease>();
  readonly #written = new Map<string, Uint8Array>();
  #lastLease: Lease | undefined;

  /** The lease won most recently, for any key. */
  get lastLease(): Lease | undefined {
    return this.#lastLease;
  }

  /** The last lease won for `storedKey`. */
  leaseOf(storedKey: string): Lease | undefined {
    return this.#leases.get(storedKey);
  }

  /** The bytes last written (accepted or not) under `storedKey`. */
  bytesOf(storedKey: string): Uint8Array | undefined {
    return this.#written.get(storedKey);
  }

  /** Stored keys of every single-key write so far, in first-write order. */
  get writtenKeys(): string[] {
    return [...this.#written.keys()];
  }

  override set(key: string, value: StoredValue, options?: BackendWriteOptions): Promise<WriteOutcome> {
    this.#written.set(key, value.slice());
    return super.set(key, value, options);
  }

  override async acquireLock(key: string, options: AcquireLockOptions): Promise<Lease | undefined> {
    const lease = await super.acquireLock(key, options);
    if (lease !== undefined) {
      this.#leases.set(key, lease);
      this.#lastLease = lease;
    }
    return lease;
  }
}

/** Keeps the backend behind it open when the store closes (for a backend several stores share). */
export class SharedBackendProxy extends ProxyBackend {
  override close(): Promise<void> {
    return Promise.resolve();
  }
}
