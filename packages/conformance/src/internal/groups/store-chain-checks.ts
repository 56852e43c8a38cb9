import { lengthConditionalMangler, NotFoundError, sha1KeyMangler, ValidationError, KeyValueStore } from '@latchkey/core';
import { expect } from 'vitest';
import { expectBytes } from '../bytes.js';
import type { ConformanceEnvironment } from '../environment.js';
import { expectRejection } from '../expect-error.js';
import { RecordingProxy, ScramblingProxy, TaggingProxy } from '../proxies.js';
import { checksFor } from '../register.js';

/** Golden values of `sha1KeyMangler` from the API contract. */
const SHA1_GOLDEN: readonly (readonly [string, string])[] = [
  ['k', '13fbd79c3d390e5d6585a21e11ff5ec1970cff0c'],
  ['abc', 'a9993e364706816aba3e25717850c26c9cd0d89d'],
  ['café', 'f424452a9673918c6f09b0cdd35b20be8e6ae7d7'],
  ['\ud800x', '61e6772308779371a01fe125e821b439e27cdc4a'],
];

/** Proxies (order, classes and instances, what they see) and key manglers. */
export function registerStoreChainChecks(env: ConformanceEnvironment): void {
  const { check, section } = checksFor(env);

  section('proxies', () => {
    check('proxies[0] is the outermost wrapper: calls pass A, then B, then the backend', async (h) => {
      const log: string[] = [];
      const { store } = await h.store({ proxies: [new TaggingProxy('A', log), new TaggingProxy('B', log)] });
      const key = h.key();
      await store.set(key, 1);
      await store.get(key);
      expect(log).toStrictEqual(['A.set', 'B.set', 'A.get', 'B.get']);
    });

    check('close passes through the proxy chain in order', async (h) => {
      const log: string[] = [];
      const { store } = await h.store({ proxies: [new TaggingProxy('A', log), new TaggingProxy('B', log)] });
      await store.close();
      expect(log).toStrictEqual(['A.close', 'B.close']);
    });

    check('a proxy class is constructed afresh for each store', async (h) => {
      const made: RecordingProxy[] = [];
      class Counted extends RecordingProxy {
        constructor() {
          super();
          made.push(this);
        }
      }
      const { store: first } = await h.store({ proxies: [Counted] });
      const { store: second } = await h.store({ proxies: [Counted] });
      await first.set(h.key('first'), 1);
      await second.set(h.key('second'), 2);
      expect(made).toHaveLength(2);
      expect(made[0]).not.toBe(made[1]);
      expect(made.map((proxy) => proxy.methods)).toStrictEqual([['set'], ['set']]);
    });

    check('a proxy instance is used as given and keeps its state across calls', async (h) => {
      const recorder = new RecordingProxy();
      const { store } = await h.store({ proxies: [recorder] });
      const key = h.key();
      await store.set(key, 1);
      await store.get(key);
      await store.delete(key);
      // Backends with coarse expiry get one read before a delete (an expired value is missing).
      const readBeforeDelete = env.capabilities.ttlResolutionMs > 1 ? ['get'] : [];
      expect(recorder.methods).toStrictEqual(['set', 'get', ...readBeforeDelete, 'delete']);
    });

    check('proxies see mangled keys and encoded bytes, never user keys or values', async (h) => {
      const recorder = new RecordingProxy();
      const { store } = await h.store({ proxies: [recorder] });
      const key = h.key();
      const value = { secret: 'user value' };
      await store.set(key, value);
      await store.getMany([key]);
      const [set, getMany] = recorder.calls;
      expect(set?.keys).toStrictEqual([h.storedKey(key)]);
      expect(getMany?.keys).toStrictEqual([h.storedKey(key)]);
      expect(set?.values[0]).toBeInstanceOf(Uint8Array);
    });

    check('what a proxy writes is what the backend stores, and values survive a proxy that rewrites bytes', async (h) => {
      const recorder = new RecordingProxy();
      const { store, backend } = await h.store({ proxies: [recorder, new ScramblingProxy()] });
      const key = h.key();
      await store.set(key, { round: 'trip' });
      expect(await store.get(key)).toStrictEqual({ round: 'trip' });
      const sent = recorder.calls[0]?.values[0];
      if (sent === undefined) expect.fail('the outer proxy saw no value');
      expectBytes(await backend.get(h.storedKey(key)), ScramblingProxy.scramble(sent), 'the bytes on the backend');
    });

    check('an entry that is not a ProxyBackend fails configure with ValidationError and leaves the store configurable', async (h) => {
      const store = h.track(new KeyValueStore(h.storeName()));
      const backend = await h.backend();
      await expectRejection(store.configure(backend, { proxies: [{} as never] }), ValidationError);
      expect(store.isConfigured).toBe(false);
      await store.configure(backend);
      expect(store.isConfigured).toBe(true);
      await store.set(h.key(), 'after the failed configure');
      expect(await store.get(h.key())).toBe('after the failed configure');
    });
  });

  section('key manglers', () => {
    check(
      env.keyMangler === undefined
        ? 'by default keys are stored under sha1KeyMangler'
        : "by default keys are stored under the backend's own key mangler",
      async (h) => {
        const { store, backend } = await h.store();
        const key = h.key();
        await store.set(key, 'v');
        expect(await backend.get(h.storedKey(key)), 'nothing under the expected stored key').toBeDefined();
      },
    );

    check('keyMangler: null stores keys as given', async (h) => {
      const { store, backend } = await h.store({ keyMangler: null });
      const key = h.key();
      await store.set(key, 'v');
      expect(await backend.get(key)).toBeDefined();
      expect(await store.get(key)).toBe('v');
    });

    check('a custom key mangler is applied to every call, locks included', async (h) => {
      const recorder = new RecordingProxy();
      const mangle = (key: string): string => `custom/${key}`;
      const { store, backend } = await h.store({ keyMangler: mangle, proxies: [recorder] });
      const [a, b] = [h.key('a'), h.key('b')];
      await store.set(a, 1);
      await store.setMany({ [b]: 2 });
      await store.get(a);
      await store.getMany([a, b]);
      await store.withLock(a, (lock) => store.set(a, 3, { lock }));
      await store.delete(a);
      await store.deleteMany([b]);
      const keys = recorder.calls.flatMap((call) => call.keys);
      expect(keys.length).toBeGreaterThan(8);
      expect(keys.filter((key) => !key.startsWith('custom/'))).toStrictEqual([]);
      await store.set(a, 4);
      expect(await backend.get(mangle(a))).toBeDefined();
    });

    check('lengthConditionalMangler leaves short keys readable and mangles long ones', async (h) => {
      const { store, backend } = await h.store({ keyMangler: lengthConditionalMangler(40, sha1KeyMangler) });
      const short = h.key('s');
      const long = h.key('l'.repeat(60));
      await store.setMany({ [short]: 1, [long]: 2 });
      expect(await backend.get(short)).toBeDefined();
      expect(await backend.get(long)).toBeUndefined();
      expect(await backend.get(sha1KeyMangler(long))).toBeDefined();
    });

    check('sha1KeyMangler stores the golden SHA-1 keys of the contract', async (h) => {
      const { store, backend } = await h.store({ keyMangler: sha1KeyMangler });
      for (const [key, stored] of SHA1_GOLDEN) {
        await store.set(key, key);
        expect(await backend.get(stored), `nothing stored under ${stored} for ${JSON.stringify(key)}`).toBeDefined();
      }
    });

    check('two keys that mangle apart are stored apart', async (h) => {
      const { store } = await h.store();
      const [a, b] = [h.key('a'), h.key('A')];
      await store.set(a, 'lower');
      await expectRejection(store.get(b), NotFoundError);
      await store.set(b, 'upper');
      expect(await store.getMany([a, b])).toStrictEqual(['lower', 'upper']);
    });
  });
}
