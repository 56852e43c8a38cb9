// keyv's own adapter test suite (@keyv/test-suite), run in full over a KeyvLatchkey on a store
// the caller configures: the API, value, namespace and iterator groups (the iterator group only
// when the backend can list its keys, as keyv's own adapters for such stores leave it out). Its
// compression group is left out because it never touches the adapter (it runs keyv over a Map).
import { randomUUID } from 'node:crypto';
import { keyvApiTests, keyvIteratorTests, keyvNamespaceTest, keyvValueTests } from '@keyv/test-suite';
import { KeyValueStore } from '@latchkey/core';
import Keyv from 'keyv';
import * as vitest from 'vitest';
import { KeyvLatchkey } from '../../src/index.js';

/** How a backend takes part in the suite. */
export interface KeyvSuiteOptions {
  /**
   * Set when the backend cannot list its keys (the store's `keys()` rejects): why. The iterator
   * group is then left out, and, since a keyv namespace on such a store can only be cleared by
   * clearing the whole store, every adapter the suite asks for gets a store of its own (its own
   * key prefix) — the configuration the keyv README gives for such backends.
   */
  readonly cannotList?: string;
}

/** Adapters the suite may ask for on a backend that cannot list: a store each, made up front. */
const STORES_FOR_UNLISTED = 200;

/**
 * Registers keyv's test suite for a KeyvLatchkey over a fresh store on one backend. Every
 * `store()` the suite asks for is a new adapter over the same store, as keyv's own adapters hand
 * out a new client over the same server: two keyv instances with different namespaces need two
 * adapters, since keyv sets the namespace on the adapter. See {@link KeyvSuiteOptions.cannotList}
 * for backends that cannot list.
 */
export function describeKeyvSuite(
  backend: string,
  configure: (store: KeyValueStore) => Promise<void>,
  options: KeyvSuiteOptions = {},
): void {
  vitest.describe(`@keyv/test-suite on ${backend}`, () => {
    const stores: KeyValueStore[] = [];
    let handedOut = 0;
    vitest.beforeAll(async () => {
      const count = options.cannotList === undefined ? 1 : STORES_FOR_UNLISTED;
      for (let i = 0; i < count; i++) stores.push(new KeyValueStore(`keyv-suite-${randomUUID()}`));
      await Promise.all(stores.map((store) => configure(store)));
    }, 60_000);
    vitest.afterAll(async () => {
      await Promise.all(stores.map((store) => store.clear()));
      await Promise.all(stores.map((store) => store.close()));
    }, 60_000);
    const adapter = (): KeyvLatchkey => {
      if (stores.length === 0) throw new Error('the stores are not configured yet');
      if (options.cannotList === undefined) return new KeyvLatchkey(stores[0] as KeyValueStore);
      const store = stores[handedOut++];
      if (store === undefined) throw new Error(`the suite asked for more than ${STORES_FOR_UNLISTED} adapters: raise STORES_FOR_UNLISTED`);
      return new KeyvLatchkey(store);
    };
    vitest.describe('api', () => keyvApiTests(vitest, Keyv, adapter));
    vitest.describe('values', () => keyvValueTests(vitest, Keyv, adapter));
    vitest.describe('namespace', () => keyvNamespaceTest(vitest, Keyv, adapter));
    if (options.cannotList === undefined) vitest.describe('iterator', () => keyvIteratorTests(vitest, Keyv, adapter));
    else console.info(`@keyv/test-suite on ${backend}: iterator tests left out, a store per adapter: ${options.cannotList}`);
  });
}
