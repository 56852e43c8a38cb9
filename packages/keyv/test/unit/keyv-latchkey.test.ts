import { randomUUID } from 'node:crypto';
import {
  KeyValueStore,
  NotConfiguredError,
  NotSupportedError,
  ProxyBackend,
  sha1KeyMangler,
  ValidationError,
  type BackendWriteOptions,
  type ConfigureOptions,
  type StoredValue,
  type WriteOutcome,
} from '@latchkey/core';
import { MemoryBackend } from '@latchkey/memory';
import Keyv, { type KeyvStoreAdapter } from 'keyv';
import { afterEach, describe, expect, it } from 'vitest';
import { KeyvLatchkey } from '../../src/index.js';

const opened: KeyValueStore[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((store) => store.close()));
});

async function memoryStore(options: ConfigureOptions = {}): Promise<KeyValueStore> {
  const store = new KeyValueStore(`keyv-unit-${randomUUID()}`);
  await store.configure(new MemoryBackend(), options);
  opened.push(store);
  return store;
}

/** Records the stored keys of every write, to show what the backend beneath sees. */
class RecordingProxy extends ProxyBackend {
  readonly written: string[] = [];
  override set(key: string, value: StoredValue, options?: BackendWriteOptions): Promise<WriteOutcome> {
    this.written.push(key);
    return super.set(key, value, options);
  }
}

describe('KeyvLatchkey as a keyv storage adapter', () => {
  it('has the shape of keyv 5’s KeyvStoreAdapter and is accepted by keyv', async () => {
    const adapter: KeyvStoreAdapter = new KeyvLatchkey(await memoryStore());
    const keyv = new Keyv({ store: adapter });
    expect(keyv.store).toBe(adapter);
    expect(typeof keyv.iterator).toBe('function');
  });

  it('refuses what is not a KeyValueStore', () => {
    expect(() => new KeyvLatchkey({} as KeyValueStore)).toThrow(ValidationError);
    expect(() => new KeyvLatchkey(undefined as unknown as KeyValueStore)).toThrow(ValidationError);
  });

  it('learns its namespace from keyv', async () => {
    const adapter = new KeyvLatchkey(await memoryStore());
    new Keyv({ store: adapter, namespace: 'pages' });
    expect(adapter.namespace).toBe('pages');
  });
});

describe('values', () => {
  it('stores keyv’s serialized string under the namespaced key', async () => {
    const store = await memoryStore();
    const keyv = new Keyv({ store: new KeyvLatchkey(store), namespace: 'ns' });
    await keyv.set('foo', { n: 1 });
    const stored = await store.get<string>('ns:foo');
    expect(typeof stored).toBe('string');
    expect(JSON.parse(stored)).toEqual({ value: { n: 1 } });
  });

  it('stores keyv’s { value, expires } object itself when keyv has no serializer', async () => {
    const store = await memoryStore();
    const keyv = new Keyv({ store: new KeyvLatchkey(store) });
    keyv.serialize = undefined;
    keyv.deserialize = undefined;
    const value = { at: new Date(0), tags: new Set(['a']), bytes: Buffer.from('xyz'), big: 2n ** 70n };
    await keyv.set('foo', value, 60_000);
    const stored = await store.get<{ value: unknown; expires: number }>('keyv:foo');
    expect(stored.value).toEqual(value);
    expect(typeof stored.expires).toBe('number');
    expect(await keyv.get('foo')).toEqual(value);
  });

  it('resolves undefined for a missing key, and for each missing key of getMany', async () => {
    const keyv = new Keyv({ store: new KeyvLatchkey(await memoryStore()) });
    await keyv.set('b', 'B');
    expect(await keyv.get('a')).toBeUndefined();
    expect(await keyv.getMany(['a', 'b', 'c'])).toEqual([undefined, 'B', undefined]);
  });

  it('writes through the store’s key mangler and proxies', async () => {
    const proxy = new RecordingProxy();
    const store = await memoryStore({ proxies: [proxy] });
    const keyv = new Keyv({ store: new KeyvLatchkey(store) });
    await keyv.set('foo', 'bar');
    expect(proxy.written).toEqual([sha1KeyMangler('keyv:foo')]);
    expect(await keyv.get('foo')).toBe('bar');
  });
});

describe('TTLs', () => {
  it('gives keyv’s TTL to the store', async () => {
    const store = await memoryStore();
    const keyv = new Keyv({ store: new KeyvLatchkey(store) });
    await keyv.set('foo', 'bar', 60_000);
    const left = await store.ttl('keyv:foo');
    expect(left).toBeGreaterThan(50_000);
    expect(left).toBeLessThanOrEqual(60_000);
  });

  it('leaves a value without a keyv TTL to the store’s ttlMs', async () => {
    const store = await memoryStore({ ttlMs: 30_000 });
    const keyv = new Keyv({ store: new KeyvLatchkey(store) });
    await keyv.set('foo', 'bar');
    await keyv.set('never', 'bar', 0);
    for (const key of ['keyv:foo', 'keyv:never']) {
      const left = await store.ttl(key);
      expect(left, key).toBeGreaterThan(20_000);
      expect(left, key).toBeLessThanOrEqual(30_000);
    }
  });

  it('stores no expiry when neither keyv nor the store has one', async () => {
    const store = await memoryStore();
    await new Keyv({ store: new KeyvLatchkey(store) }).set('foo', 'bar');
    expect(await store.ttl('keyv:foo')).toBeUndefined();
  });

  it('gives each setMany entry its own TTL', async () => {
    const store = await memoryStore();
    const keyv = new Keyv({ store: new KeyvLatchkey(store) });
    await keyv.setMany([
      { key: 'short', value: 1, ttl: 10_000 },
      { key: 'long', value: 2, ttl: 100_000 },
      { key: 'forever', value: 3 },
    ]);
    expect(await store.ttl('keyv:short')).toBeLessThanOrEqual(10_000);
    expect(await store.ttl('keyv:long')).toBeGreaterThan(10_000);
    expect(await store.ttl('keyv:forever')).toBeUndefined();
    expect(await keyv.getMany(['short', 'long', 'forever'])).toEqual([1, 2, 3]);
  });

  it('answers has() false once the store’s TTL has passed', async () => {
    const store = await memoryStore();
    const keyv = new Keyv({ store: new KeyvLatchkey(store) });
    await keyv.set('foo', 'bar', 20);
    expect(await keyv.has('foo')).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(await keyv.has('foo')).toBe(false);
  });
});

describe('deletes', () => {
  it('deleteMany answers true when any of the keys held a value, and deletes them all', async () => {
    const store = await memoryStore();
    const adapter = new KeyvLatchkey(store);
    await adapter.set('a', 'A');
    await adapter.set('c', 'C');
    expect(await adapter.deleteMany(['a', 'b', 'c'])).toBe(true);
    expect(await adapter.getMany(['a', 'b', 'c'])).toEqual([undefined, undefined, undefined]);
    expect(await adapter.deleteMany(['a', 'b'])).toBe(false);
  });
});

describe('clear and iterator', () => {
  it('clear() with a namespace removes only that namespace’s keys', async () => {
    const store = await memoryStore();
    await store.set('other', 1);
    const pages = new Keyv({ store: new KeyvLatchkey(store), namespace: 'pages' });
    const users = new Keyv({ store: new KeyvLatchkey(store), namespace: 'users' });
    await Promise.all(Array.from({ length: 250 }, (_, i) => pages.set(`p${i}`, i)));
    await users.set('u', 'U');
    await pages.clear();
    const left = [];
    for await (const key of store.keys()) left.push(key);
    expect(left.sort()).toEqual(['other', 'users:u']);
  });

  it('clear() without a namespace clears the whole store', async () => {
    const store = await memoryStore();
    await store.set('other', 1);
    const adapter = new KeyvLatchkey(store);
    await adapter.set('a', 'A');
    await adapter.clear();
    expect(await store.has('other')).toBe(false);
    expect(await store.has('a')).toBe(false);
  });

  it('clear() with a namespace over a backend that can clear but not list clears the whole store', async () => {
    // A MemoryBackend without keys(): the store's keys() then rejects NotSupportedError.
    const memory = new MemoryBackend();
    const unlisted = new Proxy(memory, {
      get(target, property) {
        if (property === 'keys') return undefined;
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const store = new KeyValueStore(`keyv-unlisted-${randomUUID()}`);
    await store.configure(unlisted);
    try {
      await store.set('other', 1);
      const pages = new Keyv({ store: new KeyvLatchkey(store), namespace: 'pages' });
      await pages.set('p', 'P');
      await expect(store.keys()[Symbol.asyncIterator]().next()).rejects.toThrow(NotSupportedError);
      await pages.clear();
      expect(await store.has('pages:p')).toBe(false);
      expect(await store.has('other')).toBe(false);
    } finally {
      await store.close();
    }
  });

  it('iterator(namespace) yields every entry of the namespace, across pages, and nothing else', async () => {
    const store = await memoryStore();
    const adapter = new KeyvLatchkey(store);
    await store.set('elsewhere:x', 'X');
    await store.setMany(Array.from({ length: 230 }, (_, i) => [`ns:${i}`, `v${i}`] as const));
    const seen = new Map<string, unknown>();
    for await (const [key, value] of adapter.iterator('ns')) seen.set(key, value);
    expect(seen.size).toBe(230);
    expect(seen.get('ns:229')).toBe('v229');
    expect(seen.has('elsewhere:x')).toBe(false);
  });
});

describe('errors', () => {
  it('rejects with the store’s error and emits it as error', async () => {
    const store = new KeyValueStore(`keyv-unconfigured-${randomUUID()}`);
    const adapter = new KeyvLatchkey(store);
    const heard: unknown[] = [];
    adapter.on('error', (error) => heard.push(error));
    const failed = await adapter.get('foo').catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(NotConfiguredError);
    expect(heard).toEqual([failed]);
  });

  it('rejects without throwing from emit when nothing listens', async () => {
    const adapter = new KeyvLatchkey(new KeyValueStore(`keyv-unconfigured-${randomUUID()}`));
    await expect(adapter.set('foo', 'bar')).rejects.toBeInstanceOf(NotConfiguredError);
    await expect(adapter.iterator().next()).rejects.toBeInstanceOf(NotConfiguredError);
  });

  it('reaches keyv’s error listeners, and keyv’s callers with throwOnErrors', async () => {
    const adapter = new KeyvLatchkey(new KeyValueStore(`keyv-unconfigured-${randomUUID()}`));
    const keyv = new Keyv({ store: adapter });
    const heard: unknown[] = [];
    keyv.on('error', (error) => heard.push(error));
    expect(await keyv.get('foo')).toBeUndefined();
    expect(heard).toHaveLength(1);
    expect(heard[0]).toBeInstanceOf(NotConfiguredError);
    keyv.throwOnErrors = true;
    await expect(keyv.get('foo')).rejects.toBeInstanceOf(NotConfiguredError);
  });
});

describe('disconnect', () => {
  it('closes the store', async () => {
    const store = await memoryStore();
    const keyv = new Keyv({ store: new KeyvLatchkey(store) });
    await keyv.set('foo', 'bar');
    await keyv.disconnect();
    expect(store.isConfigured).toBe(false);
    await expect(store.get('keyv:foo')).rejects.toBeInstanceOf(NotConfiguredError);
  });
});
