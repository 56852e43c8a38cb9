import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { MongoBackend } from '../../src/index.js';
import { FIELD } from '../../src/internal/document.js';
import { bytes, closeTestClient, createBackend, dropCollection, mongoAvailable, rawCollection, text } from './mongo-test-env.js';

describe.runIf(mongoAvailable('MongoBackend clear, keys, has and compareAndSet'))('MongoBackend clear, keys, has and compareAndSet', () => {
  const opened: MongoBackend[] = [];
  const open = (): MongoBackend => {
    // FerretDB (SQLite, one command at a time) takes seconds for a bulk write of 1000+ documents on a loaded machine.
    const backend = createBackend({ operationTimeoutMs: 60_000 });
    opened.push(backend);
    return backend;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map(async (backend) => dropCollection(backend)));
  });
  afterAll(closeTestClient);

  it('keys reads past the first cursor batch, and a caller that stops early leaves no error behind', async () => {
    const backend = open();
    const keys = Array.from({ length: 1100 }, (_, i) => `k${i}`);
    await backend.setMany(keys.map((key) => [key, bytes(key)]));
    const listed: string[] = [];
    for await (const key of backend.keys()) listed.push(key);
    expect(listed.sort()).toStrictEqual([...keys].sort());
    let seen = 0;
    for await (const key of backend.keys()) {
      expect(typeof key).toBe('string');
      seen += 1;
      if (seen === 5) break;
    }
    expect(seen).toBe(5);
  });

  it('keys and has leave out a document that holds only a lock and its fence', async () => {
    const backend = open();
    const lease = await backend.acquireLock('locked', { leaseMs: 60_000, waitMs: 0 });
    await backend.set('plain', bytes('p'));
    const listed: string[] = [];
    for await (const key of backend.keys()) listed.push(key);
    expect(listed).toStrictEqual(['plain']);
    expect(await backend.has('locked')).toBe(false);
    expect(await backend.has('plain')).toBe(true);
    await backend.releaseLock(lease!);
  });

  it('clear deletes value-only documents and unsets the value of fenced ones, keeping lock and fence', async () => {
    const backend = open();
    await backend.setMany([
      ['a', bytes('1')],
      ['b', bytes('2')],
    ]);
    const lease = await backend.acquireLock('b', { leaseMs: 60_000, waitMs: 0 });
    await backend.clear();
    const docs = await rawCollection(backend).find({}).toArray();
    expect(docs.map((doc) => doc[FIELD.id])).toStrictEqual(['b']);
    const [kept] = docs;
    expect(kept?.[FIELD.value]).toBeUndefined();
    expect(kept?.[FIELD.fence]).toBeDefined();
    expect(kept?.[FIELD.lock]?.token).toBe(lease!.token);
    expect(await backend.set('b', bytes('3'), { lease: lease! })).toBe('written');
    expect(text(await backend.get('b'))).toBe('3');
    await backend.releaseLock(lease!);
  });

  it('compareAndSet compares whole binary values: not a longer value, not an expired one', async () => {
    const backend = open();
    await backend.set('k', Uint8Array.from([0, 1, 2]));
    expect(await backend.compareAndSet('k', Uint8Array.from([0, 1, 2, 3]), bytes('x'))).toBe(false);
    expect(await backend.compareAndSet('k', Uint8Array.from([0, 1]), bytes('x'))).toBe(false);
    expect(await backend.compareAndSet('k', Uint8Array.from([0, 1, 2]), bytes('x'))).toBe(true);
    await backend.set('old', bytes('v'), { expiresAt: Date.now() + 20 });
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(await backend.compareAndSet('old', bytes('v'), bytes('w'))).toBe(false);
  });
});
