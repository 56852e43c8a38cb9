import type { AcquireLockOptions, Backend, BackendCapabilities, BackendDeleteOptions, BackendWriteOptions, DeleteOutcome, Lease, StoredValue, WriteOutcome } from '../backend.js';
import { LocalLockTable } from '../local-lock-table.js';
import { ProxyBackend } from '../proxy-backend.js';

/**
 * Gives a backend without locks of its own an in-process lock table. Lease-conditional writes
 * check the table and then write: atomic against this process only, which the capabilities
 * say (`lockScope: 'in-process'`, `atomicLeaseWrites: false`).
 */
export class LocalLocksBackend extends ProxyBackend {
  readonly #locks = new LocalLockTable();
  readonly #capabilities: BackendCapabilities;

  constructor(backend: Backend) {
    super();
    this.wrap(backend);
    this.#capabilities = Object.freeze({ ...backend.capabilities, lockScope: 'in-process', atomicLeaseWrites: false, fencingTokens: true, minLeaseMs: backend.capabilities.minLeaseMs });
  }

  override get capabilities(): BackendCapabilities {
    return this.#capabilities;
  }

  override set(key: string, value: StoredValue, options?: BackendWriteOptions): Promise<WriteOutcome> {
    if (options?.lease !== undefined && !this.#locks.holds(options.lease)) return Promise.resolve('lease-lost');
    const { lease: _lease, ...rest } = options ?? {};
    return this.proxied.set(key, value, rest);
  }

  override delete(key: string, options?: BackendDeleteOptions): Promise<DeleteOutcome> {
    if (options?.lease !== undefined && !this.#locks.holds(options.lease)) return Promise.resolve('lease-lost');
    return this.proxied.delete(key);
  }

  override acquireLock(key: string, options: AcquireLockOptions): Promise<Lease | undefined> {
    return this.#locks.acquire(key, options);
  }

  override releaseLock(lease: Lease): Promise<boolean> {
    return Promise.resolve(this.#locks.release(lease));
  }

  override extendLock(lease: Lease, leaseMs: number): Promise<boolean> {
    return Promise.resolve(this.#locks.extend(lease, leaseMs));
  }

  override async close(): Promise<void> {
    this.#locks.close();
    await this.proxied.close();
  }
}
