import type { BackendCompareAndSetOptions, OptionalDataMethod, StoredValue } from '../../src/index.js';
import { MapBackend } from './map-backend.js';

/**
 * A {@link MapBackend} with the optional data methods (`clear`, `keys`, `has`,
 * `compareAndSet`), each recorded in `calls`. `without` removes some of them, so tests can
 * prove which store fallback runs.
 */
export class ListingMapBackend extends MapBackend {
  /** Times the iterator of `keys()` was closed before its end. */
  keysReturned = 0;

  constructor(capabilities: ConstructorParameters<typeof MapBackend>[0] = {}, without: readonly OptionalDataMethod[] = []) {
    super(capabilities);
    // Own properties set to undefined hide the prototype's methods, as a backend without them would be.
    for (const method of without) Object.defineProperty(this, method, { value: undefined });
  }

  async clear(): Promise<void> {
    this.calls.push('clear');
    this.data.clear();
  }

  keys(): AsyncIterable<string> {
    this.calls.push('keys');
    const keys = [...this.data.keys()];
    let index = 0;
    return {
      [Symbol.asyncIterator]: () => ({
        next: async () => (index < keys.length ? { done: false, value: keys[index++] as string } : { done: true, value: undefined }),
        return: async () => {
          this.keysReturned += 1;
          return { done: true, value: undefined };
        },
      }),
    };
  }

  async has(key: string): Promise<boolean> {
    this.calls.push(`has ${key}`);
    const entry = this.data.get(key);
    return entry !== undefined && entry.expiresAt > Date.now();
  }

  async compareAndSet(key: string, expected: StoredValue, value: StoredValue, options: BackendCompareAndSetOptions = {}): Promise<boolean> {
    this.calls.push(`compareAndSet ${key}`);
    const entry = this.data.get(key);
    if (entry === undefined || entry.expiresAt <= Date.now() || !Buffer.from(entry.value).equals(expected)) return false;
    this.data.set(key, { value: value.slice(), expiresAt: options.expiresAt ?? Infinity });
    return true;
  }
}
