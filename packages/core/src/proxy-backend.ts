import type {
  AcquireLockOptions,
  Backend,
  BackendBatchWriteOptions,
  BackendCapabilities,
  BackendCompareAndSetOptions,
  DataMethodProxy,
  BackendDeleteOptions,
  BackendWriteOptions,
  DeleteOutcome,
  Lease,
  OptionalDataMethod,
  StoredValue,
  WriteOutcome,
} from './backend.js';
import { hasDataMethod } from './backend.js';
import { BackendError, NotSupportedError, ValidationError } from './errors.js';
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
 * The optional data methods (`clear`, `keys`, `has`, `compareAndSet`) are passed on too; the
 * store calls them only when the backend beneath the proxies has them, and here they reject
 * with `NotSupportedError` when it has not. A proxy that rewrites keys must map the keys that
 * `keys()` yields back as well.
 *
 * @example
 * class CountingProxy extends ProxyBackend {
 *   gets = 0
 *   override get(key: string) { this.gets++; return super.get(key) }
 * }
 */
export abstract class ProxyBackend implements Backend, DataMethodProxy {
  #proxied: Backend | undefined;

  /**
   * Attaches the backend this proxy passes calls to. Returns `this` so chains can be built
   * fluently. Called by `KeyValueStore.configure`.
   */
  wrap(backend: Backend): this {
    this.#proxied = backend;
    return this;
  }

  /**
   * The wrapped backend.
   * @throws {ValidationError} before {@link wrap} was called (so does every call that needs it).
   */
  get proxied(): Backend {
    if (this.#proxied === undefined) {
      throw new ValidationError(
        `${this.constructor.name} has not been attached to a backend: list it in configure({ proxies }) or call wrap(backend) first.`,
      );
    }
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
    if (inner.acquireLock === undefined) return Promise.reject(noLocks(inner, 'acquireLock'));
    return inner.acquireLock(key, options);
  }

  releaseLock(lease: Lease): Promise<boolean> {
    const inner = this.proxied;
    if (inner.releaseLock === undefined) return Promise.reject(noLocks(inner, 'releaseLock'));
    return inner.releaseLock(lease);
  }

  extendLock(lease: Lease, leaseMs: number): Promise<boolean> {
    const inner = this.proxied;
    if (inner.extendLock === undefined) return Promise.reject(noLocks(inner, 'extendLock'));
    return inner.extendLock(lease, leaseMs);
  }

  /**
   * True when this proxy's class overrides the optional data method `method`, or the wrapped
   * backend can serve it (what `hasDataMethod` asks, so a proxy declares no more than its
   * backend has). Override it in a proxy that serves a method in some other way.
   */
  servesDataMethod(method: OptionalDataMethod): boolean {
    // The class's own method, not the instance's: tooling may wrap methods on the instance.
    const own = (Object.getPrototypeOf(this) as Record<OptionalDataMethod, unknown>)[method];
    if (own !== ProxyBackend.prototype[method]) return true;
    return hasDataMethod(this.proxied, method);
  }

  clear(): Promise<void> {
    const inner = this.proxied;
    if (inner.clear === undefined) return Promise.reject(notSupported(inner, 'clear'));
    return inner.clear();
  }

  keys(): AsyncIterable<string> {
    const inner = this.proxied;
    if (inner.keys === undefined) return rejectingIterable(notSupported(inner, 'keys'));
    return inner.keys();
  }

  has(key: string): Promise<boolean> {
    const inner = this.proxied;
    if (inner.has === undefined) return Promise.reject(notSupported(inner, 'has'));
    return inner.has(key);
  }

  compareAndSet(key: string, expected: StoredValue, value: StoredValue, options?: BackendCompareAndSetOptions): Promise<boolean> {
    const inner = this.proxied;
    if (inner.compareAndSet === undefined) return Promise.reject(notSupported(inner, 'compareAndSet'));
    return inner.compareAndSet(key, expected, value, options);
  }

  close(): Promise<void> {
    return this.proxied.close();
  }
}

function notSupported(inner: Backend, method: string): NotSupportedError {
  return new NotSupportedError(method, `${inner.constructor.name} has no ${method}(): it cannot be passed on to it.`);
}

function rejectingIterable(error: Error): AsyncIterable<string> {
  return {
    [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(error) }),
  };
}

/**
 * A lock call reached a proxy whose wrapped backend has no locks. `configure` puts the core's
 * lock table beneath its `proxies` when the backend has no locks; a chain built by hand with
 * `wrap()` has no such table.
 */
function noLocks(inner: Backend, method: string): BackendError {
  return new BackendError(`${inner.constructor.name} has no locks of its own: ${method} cannot be passed on to it.`);
}
