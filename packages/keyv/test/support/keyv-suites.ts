// keyv's own adapter test suite (@keyv/test-suite), run in full over a KeyvLatchkey on a store
// the caller configures: the API, value, namespace and iterator groups (the iterator group only
// when the backend can list its keys, as keyv's own adapters for such stores leave it out). Its
// compression group is left out because it never touches the adapter (it runs keyv over a Map).
import { randomUUID } from 'node:crypto';
import { keyvApiTests, keyvIteratorTests, keyvNamespaceTest, keyvValueTests } from '@keyv/test-suite';
import { KeyValueStore } from '@latchkey/core';
import Keyv from 'keyv';
import * as vitest from 'vitest';
import { KeyvLatchkey, type KeyvLatchkeyEntry } from '../../src/index.js';

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
 * A KeyvLatchkey that records every call it has not answered yet in `pending`. Some of the suite's
 * tests start a call without awaiting it (".delete(key) returns a Promise"); over a backend with a
 * pool of connections (MongoDB's driver) such a call can reach the server after the next test's
 * `clear()` and `set()`, and delete what that test wrote. Calls started without waiting are not
 * ordered with the calls after them on a pool, as with keyv's own adapters, so the suite waits for
 * them between tests rather than testing an order nobody promised.
 */
class TrackedKeyvLatchkey extends KeyvLatchkey {
  readonly #pending: Set<Promise<unknown>>;

  constructor(store: KeyValueStore, pending: Set<Promise<unknown>>) {
    super(store);
    this.#pending = pending;
  }

  #track<T>(call: Promise<T>): Promise<T> {
    const settled = call.then(
      () => undefined,
      () => undefined,
    );
    this.#pending.add(settled);
    void settled.then(() => this.#pending.delete(settled));
    return call;
  }

  override get<Value = unknown>(key: string): Promise<Value | undefined> {
    return this.#track(super.get<Value>(key));
  }
  override getMany<Value = unknown>(keys: string[]): Promise<(Value | undefined)[]> {
    return this.#track(super.getMany<Value>(keys));
  }
  override set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    return this.#track(super.set(key, value, ttl));
  }
  override setMany(entries: readonly KeyvLatchkeyEntry[]): Promise<void> {
    return this.#track(super.setMany(entries));
  }
  override has(key: string): Promise<boolean> {
    return this.#track(super.has(key));
  }
  override hasMany(keys: string[]): Promise<boolean[]> {
    return this.#track(super.hasMany(keys));
  }
  override delete(key: string): Promise<boolean> {
    return this.#track(super.delete(key));
  }
  override deleteMany(keys: string[]): Promise<boolean> {
    return this.#track(super.deleteMany(keys));
  }
  override clear(): Promise<void> {
    return this.#track(super.clear());
  }
}

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
    const pending = new Set<Promise<unknown>>();
    let handedOut = 0;
    // Registered before the suite's own hooks, so it runs before each test's `clear()`.
    vitest.beforeEach(async () => {
      await Promise.all([...pending]);
    });
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
      if (options.cannotList === undefined) return new TrackedKeyvLatchkey(stores[0] as KeyValueStore, pending);
      const store = stores[handedOut++];
      if (store === undefined) throw new Error(`the suite asked for more than ${STORES_FOR_UNLISTED} adapters: raise STORES_FOR_UNLISTED`);
      return new TrackedKeyvLatchkey(store, pending);
    };
    vitest.describe('api', () => keyvApiTests(vitest, Keyv, adapter));
    vitest.describe('values', () => keyvValueTests(vitest, Keyv, adapter));
    vitest.describe('namespace', () => keyvNamespaceTest(vitest, Keyv, adapter));
    if (options.cannotList === undefined) vitest.describe('iterator', () => keyvIteratorTests(vitest, Keyv, adapter));
    else console.info(`@keyv/test-suite on ${backend}: iterator tests left out, a store per adapter: ${options.cannotList}`);
  });
}
