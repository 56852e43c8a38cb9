import type {
  AcquireLockOptions,
  Backend,
  BackendBatchWriteOptions,
  BackendCapabilities,
  BackendDeleteOptions,
  BackendWriteOptions,
  DeleteOutcome,
  Lease,
  StoredValue,
  WriteOutcome,
} from './backend.js';
import type { KeyMangler } from './key-mangler.js';

/**
 * A backend that wraps another and delegates every call to it unless a subclass overrides
 * the call (dogpile's `ProxyBackend`). Subclass it to log, measure, retry, encrypt or rewrite
 * calls; call `super.method(...)` (or `this.proxied.method(...)`) to pass a call on.
 *
 * `configure({ proxies: [A, B] })` builds the chain A → B → backend. A proxy given as a class
 * is constructed with no arguments; an instance keeps its state. Proxies see what the
 * backend sees: mangled keys and encoded values.
 *
 * @example
 * class CountingProxy extends ProxyBackend {
 *   gets = 0
 *   override get(key: string) { this.gets++; return super.get(key) }
 * }
 */
export abstract class ProxyBackend implements Backend {
  #proxied: Backend | undefined;

  /**
   * Attaches the backend this proxy passes calls to. Returns `this` so chains can be built
   * fluently. Called by `KeyValueStore.configure`.
   */
  wrap(backend: Backend): this {
    this.#proxied = backend;
    return this;
  }

  /** The wrapped backend. @throws {Error} before {@link wrap} was called. */
  get proxied(): Backend {
    if (this.#proxied === undefined) throw new Error(`${this.constructor.name} has not been attached with wrap()`);
    return this.#proxied;
  }

  get capabilities(): BackendCapabilities {
    return this.proxied.capabilities;
  }

  get keyMangler(): KeyMangler | undefined {
    return this.proxied.keyMangler;
  }

  get(key: string): Promise<StoredValue | undefined> {
    return this.proxied.get(key);
  }

  getMany(keys: readonly string[]): Promise<(StoredValue | undefined)[]> {
    return this.proxied.getMany(keys);
  }

  set(key: string, value: StoredValue, options?: BackendWriteOptions): Promise<WriteOutcome> {
    return this.proxied.set(key, value, options);
  }

  setMany(entries: readonly (readonly [string, StoredValue])[], options?: BackendBatchWriteOptions): Promise<void> {
    return this.proxied.setMany(entries, options);
  }

  delete(key: string, options?: BackendDeleteOptions): Promise<DeleteOutcome> {
    return this.proxied.delete(key, options);
  }

  deleteMany(keys: readonly string[]): Promise<void> {
    return this.proxied.deleteMany(keys);
  }

  acquireLock(key: string, options: AcquireLockOptions): Promise<Lease | undefined> {
    const inner = this.proxied;
    if (inner.acquireLock === undefined) return Promise.reject(new Error(`${inner.constructor.name} has no locks`));
    return inner.acquireLock(key, options);
  }

  releaseLock(lease: Lease): Promise<boolean> {
    const inner = this.proxied;
    if (inner.releaseLock === undefined) return Promise.reject(new Error(`${inner.constructor.name} has no locks`));
    return inner.releaseLock(lease);
  }

  extendLock(lease: Lease, leaseMs: number): Promise<boolean> {
    const inner = this.proxied;
    if (inner.extendLock === undefined) return Promise.reject(new Error(`${inner.constructor.name} has no locks`));
    return inner.extendLock(lease, leaseMs);
  }

  close(): Promise<void> {
    return this.proxied.close();
  }
}
