/**
 * A proxy that records what reaches the backend behind it, for tests that must prove which
 * calls a store made (or that it made none).
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

/** One backend call as a {@link RecordingProxy} saw it. */
export interface RecordedCall {
  /** The backend method, e.g. `set`, `getMany`, `acquireLock` or `close`. */
  readonly method: string;
  /** The stored (already mangled) keys it named, in argument order; a lease's key for lock calls. */
  readonly keys: readonly string[];
  /** Copies of the encoded values it wrote, in the order of {@link RecordedCall.keys}. */
  readonly values: readonly StoredValue[];
}

/**
 * Records every call that passes through it (method, stored keys, encoded values) and every
 * lease the backend grants, so a test can prove what reached the backend, or that nothing did,
 * and can replay a holder's write straight at the backend with its lease.
 *
 * Put it in `configure(backend, { proxies: [recorder] })`: first in the list it sees the
 * calls the store makes; later it sees what the proxies before it pass on. It keeps every
 * call, values included, for as long as it lives.
 *
 * @example
 * ```ts
 * const recorder = new RecordingProxy();
 * await store.configure(new MemoryBackend(), { proxies: [recorder] });
 * await expect(store.set('', 1)).rejects.toBeInstanceOf(InvalidKeyError);
 * expect(recorder.calls).toEqual([]); // refused before any backend call
 * ```
 */
export class RecordingProxy extends ProxyBackend {
  /** Every call so far, in call order. */
  readonly calls: RecordedCall[] = [];
  /** Every lease the backend granted so far, in grant order. */
  readonly leases: Lease[] = [];

  /** Names of the recorded methods, in call order. */
  get methods(): string[] {
    return this.calls.map((call) => call.method);
  }

  /** The lease the backend granted most recently, for any key (`undefined` before the first). */
  get lastLease(): Lease | undefined {
    return this.leases.at(-1);
  }

  /**
   * The value of the last single-key `set` of `storedKey` (whether the backend accepted it or
   * not), or `undefined` when none passed through.
   *
   * @param storedKey - The key as the backend sees it (after the store's key mangler).
   */
  lastSetValue(storedKey: string): StoredValue | undefined {
    return this.calls.findLast((call) => call.method === 'set' && call.keys[0] === storedKey)?.values[0];
  }

  /**
   * The one lease granted so far.
   * @throws {Error} unless exactly one was granted.
   */
  onlyLease(): Lease {
    const [lease, ...more] = this.leases;
    if (lease === undefined || more.length > 0) throw new Error(`expected exactly one granted lease, saw ${this.leases.length}`);
    return lease;
  }

  #record(method: string, keys: readonly string[], values: readonly StoredValue[] = []): void {
    this.calls.push({ method, keys: [...keys], values: values.map((value) => value.slice()) });
  }

  override get(key: string): Promise<StoredValue | undefined> {
    this.#record('get', [key]);
    return super.get(key);
  }

  override getMany(keys: readonly string[]): Promise<(StoredValue | undefined)[]> {
    this.#record('getMany', keys);
    return super.getMany(keys);
  }

  override set(key: string, value: StoredValue, options?: BackendWriteOptions): Promise<WriteOutcome> {
    this.#record('set', [key], [value]);
    return super.set(key, value, options);
  }

  override setMany(entries: readonly (readonly [string, StoredValue])[], options?: BackendBatchWriteOptions): Promise<void> {
    this.#record(
      'setMany',
      entries.map(([key]) => key),
      entries.map(([, value]) => value),
    );
    return super.setMany(entries, options);
  }

  override delete(key: string, options?: BackendDeleteOptions): Promise<DeleteOutcome> {
    this.#record('delete', [key]);
    return super.delete(key, options);
  }

  override deleteMany(keys: readonly string[]): Promise<void> {
    this.#record('deleteMany', keys);
    return super.deleteMany(keys);
  }

  override async acquireLock(key: string, options: AcquireLockOptions): Promise<Lease | undefined> {
    this.#record('acquireLock', [key]);
    const lease = await super.acquireLock(key, options);
    if (lease !== undefined) this.leases.push(lease);
    return lease;
  }

  override releaseLock(lease: Lease): Promise<boolean> {
    this.#record('releaseLock', [lease.key]);
    return super.releaseLock(lease);
  }

  override extendLock(lease: Lease, leaseMs: number): Promise<boolean> {
    this.#record('extendLock', [lease.key]);
    return super.extendLock(lease, leaseMs);
  }

  override close(): Promise<void> {
    this.#record('close', []);
    return super.close();
  }
}
