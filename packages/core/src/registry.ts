import type { Backend } from './backend.js';
import { ValidationError } from './errors.js';
import { setBackendFactory, storeFor } from './internal/registry-state.js';
import { describe } from './internal/validate.js';
import { KeyValueStore } from './key-value-store.js';

/**
 * Builds a backend for {@link registerBackend}: called by `configure` with the store's
 * `backendOptions` (`{}` when none were given). When it throws or rejects, that `configure`
 * fails: a `LatchkeyError` unchanged, any other error as the `cause` of a
 * {@link ValidationError}. A backend the factory built is closed again when the rest of
 * `configure` fails.
 */
export type BackendFactory = (options: Record<string, unknown>) => Backend | Promise<Backend>;

/**
 * The store named `name`: the same instance on every call until it is closed; after
 * `close()`, the next call makes a new, unconfigured store (Keystone's `get_key_value_store`).
 *
 * @throws {ValidationError} when `name` is not a non-empty string.
 */
export function getKeyValueStore(name: string): KeyValueStore {
  if (typeof name !== 'string' || name.length === 0) {
    throw new ValidationError(`A KeyValueStore name must be a non-empty string, got ${describe(name)}.`);
  }
  return storeFor(name, () => new KeyValueStore(name));
}

/**
 * Lets `configure` name a backend by string (Keystone's `backing_store` short names). A later
 * registration under the same name replaces the earlier one.
 *
 * @example
 * registerBackend('memory', (options) => new MemoryBackend(options))
 * await getKeyValueStore('tokens').configure('memory', { backendOptions: { maxEntries: 10_000 } })
 *
 * @throws {ValidationError} when `name` is empty or `factory` is not a function.
 */
export function registerBackend(name: string, factory: BackendFactory): void {
  if (typeof name !== 'string' || name.length === 0)
    throw new ValidationError(`A backend name must be a non-empty string, got ${describe(name)}.`);
  if (typeof factory !== 'function') throw new ValidationError(`registerBackend("${name}"): factory must be a function.`);
  setBackendFactory(name, factory);
}
