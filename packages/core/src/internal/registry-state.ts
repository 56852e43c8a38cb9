import type { BackendFactory } from '../registry.js';

// Module-level state shared by the registry functions and KeyValueStore.close().
const stores = new Map<string, object>();
const factories = new Map<string, BackendFactory>();

/** The store registered under `name`, or `make()`'s new one. */
export function storeFor<S extends object>(name: string, make: () => S): S {
  const existing = stores.get(name);
  if (existing !== undefined) return existing as S;
  const created = make();
  stores.set(name, created);
  return created;
}

/** Removes `store` from the registry if it is the one registered under its name. */
export function forgetStore(store: { readonly name: string }): void {
  if (stores.get(store.name) === store) stores.delete(store.name);
}

/** Records a backend factory under `name`, replacing any earlier one. */
export function setBackendFactory(name: string, factory: BackendFactory): void {
  factories.set(name, factory);
}

/** The factory registered under `name`, if any. */
export function resolveBackendFactory(name: string): BackendFactory | undefined {
  return factories.get(name);
}
