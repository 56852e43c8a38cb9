import { getKeyValueStore, LockTimeoutError, ValueTooLargeError, type KeyValueStore } from '@latchkey/core';
import type { Client } from 'memjs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { MemcachedBackend } from '../../src/index.js';
import { backendOn, rawClients, targets, uniquePrefix } from '../support/targets.js';

describe.each(targets('MemcachedBackend through KeyValueStore'))('KeyValueStore over MemcachedBackend on $name', (target) => {
  const stores: KeyValueStore[] = [];
  const raw = rawClients(target.servers);
  const configured = async (
    options: Parameters<KeyValueStore['configure']>[1] = {},
  ): Promise<{ store: KeyValueStore; backend: MemcachedBackend }> => {
    const backend = backendOn(target);
    const store = getKeyValueStore(`memcached-store-${uniquePrefix()}`);
    await store.configure(backend, options);
    stores.push(store);
    return { store, backend };
  };
  const storedOn = async (backend: MemcachedBackend, backendKey: string, storedKey: string): Promise<boolean> => {
    const { value } = await (raw.get(backend.serverFor(backendKey)) as Client).get(storedKey);
    return value !== null;
  };
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()));
  });
  afterAll(() => {
    for (const client of raw.values()) client.close();
  });

  it('uses the backend key mangler by default, keeping plain keys readable on the server', async () => {
    const { store, backend } = await configured();
    await store.set('user:42', { name: 'Ada' });
    await store.set('with space', 1);
    expect(await storedOn(backend, 'user:42', `${backend.keyPrefix}user:42`)).toBe(true);
    const mangled = backend.keyMangler('with space');
    expect(mangled).toMatch(/^#/);
    expect(await storedOn(backend, mangled, `${backend.keyPrefix}${mangled}`)).toBe(true);
    expect(await store.getMany(['user:42', 'with space'])).toStrictEqual([{ name: 'Ada' }, 1]);
  });

  it('stores any key with keyMangler null, distinct keys apart', async () => {
    const { store } = await configured({ keyMangler: null });
    const keys = ['a b', 'a\nb', '\ud800', '\udc00', 'k'.repeat(600), '~h', '#x'];
    await store.setMany(keys.map((key, i) => [key, i] as const));
    expect(await store.getMany(keys)).toStrictEqual(keys.map((_, i) => i));
  });

  it('rejects an oversized value with ValueTooLargeError before writing', async () => {
    const { store, backend } = await configured();
    const limit = backend.capabilities.maxValueBytes as number;
    await expect(store.set('big', new Uint8Array(limit))).rejects.toBeInstanceOf(ValueTooLargeError);
    await expect(store.get('big')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('refuses a locked write after another client took the lock over', async () => {
    const { store, backend } = await configured({ lockTimeoutMs: 3000 });
    const lock = await store.getLock('k').acquire();
    await store.set('k', 'mine', { lock });
    // The lock item is evicted; another client takes the key and writes.
    await (raw.get(backend.serverFor('k')) as Client).delete(`${backend.keyPrefix}~lk`);
    const other = getKeyValueStore(`memcached-store-${uniquePrefix()}`);
    stores.push(other);
    await other.configure(new MemcachedBackend({ servers: target.servers, keyPrefix: backend.keyPrefix }));
    await other.withLock('k', (theirs) => other.set('k', 'theirs', { lock: theirs }));
    await expect(store.set('k', 'stale', { lock })).rejects.toBeInstanceOf(LockTimeoutError);
    expect(await store.get('k')).toBe('theirs');
    await lock.release();
  });
});
