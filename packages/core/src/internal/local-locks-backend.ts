import type {
  AcquireLockOptions,
  Backend,
  BackendCapabilities,
  BackendDeleteOptions,
  BackendWriteOptions,
  DeleteOutcome,
  Lease,
  StoredValue,
  WriteOutcome,
} from '../backend.js';
import { LocalLockTable } from '../local-lock-table.js';
import { ProxyBackend } from '../proxy-backend.js';

/**
 * One lock table per lockless backend object, shared by every store configured over it, so
 * stores in one process exclude each other and share fencing tokens.
 */
const sharedTables = new WeakMap<Backend, { readonly table: LocalLockTable; users: number }>();

/**
 * Gives a backend without locks of its own an in-process lock table. Lease-conditional writes
 * check the table and then write: atomic against this process only, which the capabilities
 * say (`lockScope: 'in-process'`, `atomicLeaseWrites: false`).
 */
export class LocalLocksBackend extends ProxyBackend {
  readonly #locks: LocalLockTable;
  readonly #backend: Backend;
  readonly #capabilities: BackendCapabilities;
  #closed = false;

  constructor(backend: Backend) {
    super();
    this.wrap(backend);
    this.#backend = backend;
    let shared = sharedTables.get(backend);
    if (shared === undefined) {
      shared = { table: new LocalLockTable(), users: 0 };
      sharedTables.set(backend, shared);
    }
    shared.users += 1;
    this.#locks = shared.table;
    this.#capabilities = Object.freeze({ ...backend.capabilities, lockScope: 'in-process', atomicLeaseWrites: false, fencingTokens: true });
  }

  override get capabilities(): BackendCapabilities {
    return this.#capabilities;
  }

  override set(key: string, value: StoredValue, options?: BackendWriteOptions): Promise<WriteOutcome> {
    if (options?.lease !== undefined && !this.#holds(key, options.lease)) return Promise.resolve('lease-lost');
    const { lease: _lease, ...rest } = options ?? {};
    return this.proxied.set(key, value, rest);
  }

  override delete(key: string, options?: BackendDeleteOptions): Promise<DeleteOutcome> {
    if (options?.lease !== undefined && !this.#holds(key, options.lease)) return Promise.resolve('lease-lost');
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
    if (!this.#closed) {
      this.#closed = true;
      const shared = sharedTables.get(this.#backend);
      if (shared !== undefined && shared.table === this.#locks) {
        shared.users -= 1;
        if (shared.users === 0) {
          sharedTables.delete(this.#backend);
          this.#locks.close();
        }
      }
    }
    await this.proxied.close();
  }

  #holds(key: string, lease: Lease): boolean {
    return lease.key === key && this.#locks.holds(lease);
  }
}
