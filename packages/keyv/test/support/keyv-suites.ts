// keyv's own adapter test suite (@keyv/test-suite), run in full over a KeyvLatchkey on a store
// the caller configures: the API, value, namespace and iterator groups. Its compression group is
// left out because it never touches the adapter (it runs keyv over a Map).
import { randomUUID } from 'node:crypto';
import { keyvApiTests, keyvIteratorTests, keyvNamespaceTest, keyvValueTests } from '@keyv/test-suite';
import { KeyValueStore } from '@latchkey/core';
import Keyv from 'keyv';
import * as vitest from 'vitest';
import { KeyvLatchkey } from '../../src/index.js';

/**
 * Registers keyv's test suite for a KeyvLatchkey over a fresh store on one backend. Every
 * `store()` the suite asks for is a new adapter over the same store, as keyv's own adapters hand
 * out a new client over the same server: two keyv instances with different namespaces need two
 * adapters, since keyv sets the namespace on the adapter.
 */
export function describeKeyvSuite(backend: string, configure: (store: KeyValueStore) => Promise<void>): void {
  vitest.describe(`@keyv/test-suite on ${backend}`, () => {
    let store: KeyValueStore | undefined;
    vitest.beforeAll(async () => {
      store = new KeyValueStore(`keyv-suite-${randomUUID()}`);
      await configure(store);
    });
    vitest.afterAll(async () => {
      await store?.clear();
      await store?.close();
    });
    const adapter = (): KeyvLatchkey => {
      if (store === undefined) throw new Error('the store is not configured yet');
      return new KeyvLatchkey(store);
    };
    vitest.describe('api', () => keyvApiTests(vitest, Keyv, adapter));
    vitest.describe('values', () => keyvValueTests(vitest, Keyv, adapter));
    vitest.describe('namespace', () => keyvNamespaceTest(vitest, Keyv, adapter));
    vitest.describe('iterator', () => keyvIteratorTests(vitest, Keyv, adapter));
  });
}
