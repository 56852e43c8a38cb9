/**
 * Loading an adapter's backend class at run time, so that the benchmarks neither fail to
 * type-check nor crash while an adapter package is unbuilt or does not export its backend yet.
 *
 * @module
 */
import { KeyValueStore, type Backend, type ConfigureOptions } from '@latchkey/core';
import { errorMessage, withTimeout } from '../harness/index.js';

export { withTimeout };

/** A backend class taking one options object. */
export type BackendClass<Options> = new (options: Options) => Backend;

/** The outcome of {@link loadBackendClass}. */
export type LoadedBackend<Options> = { readonly backend: BackendClass<Options> } | { readonly missing: string };

/**
 * Imports `exportName` from the built package `packageName` (its `dist`, as users get it).
 *
 * @returns The class, or why it is not there.
 */
export async function loadBackendClass<Options>(packageName: string, exportName: string): Promise<LoadedBackend<Options>> {
  let module: Record<string, unknown>;
  try {
    // A computed specifier: the package's types may not exist yet when this is type-checked.
    const specifier: string = packageName;
    module = (await import(specifier)) as Record<string, unknown>;
  } catch (error) {
    return { missing: `${packageName} cannot be imported (not built? run \`npm run bench\`, which builds first): ${errorMessage(error)}` };
  }
  const backend = module[exportName];
  if (typeof backend !== 'function') return { missing: `${packageName} does not export ${exportName} yet` };
  return { backend: backend as BackendClass<Options> };
}

let serial = 0;

/**
 * A `KeyValueStore` configured over `backend` with the default options (plus `options`).
 * The store is closed (closing the backend) if configuring fails.
 */
export async function storeOver(label: string, backend: Backend, options: ConfigureOptions = {}): Promise<KeyValueStore> {
  const store = new KeyValueStore(`bench-${label}-${++serial}`);
  try {
    await store.configure(backend, options);
  } catch (error) {
    await backend.close();
    throw error;
  }
  return store;
}

/** How long one closer may take (some clients never settle `close` after a failed connect). */
const CLOSE_TIMEOUT_MS = 10_000;

/** Something to close, with what it is (for the error message). */
export type Closer = readonly [what: string, close: () => unknown];

/** Closes everything, in order, even when some fail or hang; throws the first failure afterwards. */
export async function closeAll(closers: readonly Closer[]): Promise<void> {
  let first: unknown;
  for (const [what, close] of closers) {
    try {
      await withTimeout(Promise.resolve(close()), CLOSE_TIMEOUT_MS, `closing ${what}`);
    } catch (error) {
      first ??= error;
    }
  }
  if (first !== undefined) throw first;
}
