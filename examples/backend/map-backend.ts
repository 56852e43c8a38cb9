// A complete in-process backend over a Map, on the backend kit: the guards give each bad input
// the same typed error as on every backend, a CallRunner gives the closed guard, and the core's
// LocalLockTable keeps the leases. Run it: npx latchkey-conformance examples/backend/conformance.ts
import {
  CallRunner,
  checkAcquireOptions,
  checkDuration,
  checkExpiresAt,
  checkLease,
  checkStoredEntries,
  checkStoredKey,
  checkStoredKeys,
  checkStoredValue,
  LocalLockTable,
  type AcquireLockOptions,
  type Backend,
  type BackendBatchWriteOptions,
  type BackendCapabilities,
  type BackendDeleteOptions,
  type BackendWriteOptions,
  type DeleteOutcome,
  type Lease,
  type StoredValue,
  type WriteOutcome,
} from '@latchkey/core';

interface Entry {
  readonly value: Uint8Array;
  /** Epoch ms; `Infinity`: never expires. */
  readonly expiresAt: number;
}

/** Values and leases in this process only, with exact expiry and atomic lease-conditional writes. */
export class MapBackend implements Backend {
  readonly capabilities: BackendCapabilities = Object.freeze({
    lockScope: 'in-process',
    atomicLeaseWrites: true, // the lease check and the write run in one synchronous step
    fencingTokens: true,
    ttlResolutionMs: 1,
    minLeaseMs: 1,
    mayEvict: false,
    callDeadlineMs: 0, // every call settles at once
  });
  readonly #data = new Map<string, Entry>();
  readonly #locks = new LocalLockTable();
  // No deadline: nothing here can stall. The runner refuses calls after close() with
  // BackendClosedError and turns a guard's throw into a rejection.
  readonly #calls = new CallRunner({ name: 'MapBackend', timeoutMs: Infinity });

  get(key: string): Promise<StoredValue | undefined> {
    return this.#calls.run('get', () => {
      checkStoredKey(key);
      return this.#read(key);
    });
  }

  getMany(keys: readonly string[]): Promise<(StoredValue | undefined)[]> {
    return this.#calls.run('getMany', () => {
      checkStoredKeys(keys);
      return keys.map((key) => this.#read(key));
    });
  }

  set(key: string, value: StoredValue, options: BackendWriteOptions = {}): Promise<WriteOutcome> {
    return this.#calls.run<WriteOutcome>('set', () => {
      checkStoredKey(key);
      checkStoredValue(value, undefined, key);
      checkExpiresAt(options.expiresAt);
      if (options.lease !== undefined && !this.#holds(key, options.lease)) return 'lease-lost';
      this.#write(key, value, options.expiresAt);
      return 'written';
    });
  }

  setMany(entries: readonly (readonly [string, StoredValue])[], options: BackendBatchWriteOptions = {}): Promise<void> {
    return this.#calls.run('setMany', () => {
      checkStoredEntries(entries, undefined);
      checkExpiresAt(options.expiresAt);
      for (const [key, value] of entries) this.#write(key, value, options.expiresAt);
    });
  }

  delete(key: string, options: BackendDeleteOptions = {}): Promise<DeleteOutcome> {
    return this.#calls.run<DeleteOutcome>('delete', () => {
      checkStoredKey(key);
      if (options.lease !== undefined && !this.#holds(key, options.lease)) return 'lease-lost';
      const present = this.#read(key) !== undefined;
      this.#data.delete(key);
      return present ? 'deleted' : 'missing';
    });
  }

  deleteMany(keys: readonly string[]): Promise<void> {
    return this.#calls.run('deleteMany', () => {
      checkStoredKeys(keys);
      for (const key of keys) this.#data.delete(key);
    });
  }

  acquireLock(key: string, options: AcquireLockOptions): Promise<Lease | undefined> {
    // Not through the runner: a wait outlasts any call, and the table settles it itself — the
    // lease, undefined when waitMs runs out, signal.reason on abort, BackendClosedError once
    // close() was called (also for a wait it interrupts).
    try {
      checkStoredKey(key);
      checkAcquireOptions(options);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#locks.acquire(key, options);
  }

  releaseLock(lease: Lease): Promise<boolean> {
    return this.#calls.run('releaseLock', () => {
      checkLease(lease);
      return this.#locks.release(lease);
    });
  }

  extendLock(lease: Lease, leaseMs: number): Promise<boolean> {
    return this.#calls.run('extendLock', () => {
      checkLease(lease);
      checkDuration('leaseMs', leaseMs);
      return this.#locks.extend(lease, leaseMs);
    });
  }

  /** Refuses later calls, rejects pending lock waits (both with BackendClosedError), drops everything. Idempotent. */
  async close(): Promise<void> {
    this.#calls.close();
    this.#locks.close();
    this.#data.clear();
  }

  /** A lease lets its holder write its own key only: a lease for another key is 'lease-lost'. */
  #holds(key: string, lease: Lease): boolean {
    checkLease(lease);
    return lease.key === key && this.#locks.holds(lease);
  }

  #read(key: string): StoredValue | undefined {
    const entry = this.#data.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.#data.delete(key);
      return undefined;
    }
    return entry.value.slice(); // a copy: the caller may change what it gets
  }

  #write(key: string, value: Uint8Array, expiresAt: number | undefined): void {
    // Copied before the call returns: the caller may reuse its buffer at once. An expiresAt
    // already in the past stores an entry no read returns.
    this.#data.set(key, { value: value.slice(), expiresAt: expiresAt ?? Infinity });
  }
}
