import { InvalidKeyError, KeyValueStore, type StoredValue } from '@latchkey/core';
import { MemoryBackend } from '@latchkey/memory';
import { afterEach, describe, expect, it } from 'vitest';
import { RecordingProxy } from '../../src/index.js';

const bytes = (text: string): StoredValue => new TextEncoder().encode(text);

describe('RecordingProxy', () => {
  const stores: KeyValueStore[] = [];
  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
  });

  async function recorded(): Promise<{ store: KeyValueStore; recorder: RecordingProxy }> {
    const recorder = new RecordingProxy();
    const store = new KeyValueStore(`recording-proxy-${stores.length}`);
    stores.push(store);
    await store.configure(new MemoryBackend(), { proxies: [recorder], keyMangler: null });
    return { store, recorder };
  }

  it('records each call with its stored keys and a copy of the values it wrote', async () => {
    const { recorder } = await recorded();
    const value = bytes('one');
    await recorder.set('a', value);
    value.fill(0);
    await recorder.setMany([['b', bytes('two')]]);
    await recorder.getMany(['a', 'b']);
    await recorder.delete('a');
    expect(recorder.methods).toEqual(['set', 'setMany', 'getMany', 'delete']);
    expect(recorder.calls[0]).toEqual({ method: 'set', keys: ['a'], values: [bytes('one')] });
    expect(recorder.calls[1]).toEqual({ method: 'setMany', keys: ['b'], values: [bytes('two')] });
    expect(recorder.calls[2]).toEqual({ method: 'getMany', keys: ['a', 'b'], values: [] });
  });

  it('sees no call for a key the store refuses', async () => {
    const { store, recorder } = await recorded();
    await expect(store.set('', 1)).rejects.toBeInstanceOf(InvalidKeyError);
    expect(recorder.calls).toEqual([]);
  });

  it('lastSetValue is the last single-key set of a stored key; setMany does not count', async () => {
    const { recorder } = await recorded();
    expect(recorder.lastSetValue('k')).toBeUndefined();
    await recorder.set('k', bytes('first'));
    await recorder.set('other', bytes('other'));
    await recorder.set('k', bytes('second'));
    await recorder.setMany([['k', bytes('batched')]]);
    expect(recorder.lastSetValue('k')).toEqual(bytes('second'));
    expect(recorder.lastSetValue('other')).toEqual(bytes('other'));
    expect(recorder.lastSetValue('never')).toBeUndefined();
  });

  it('lastLease is the lease granted most recently; a refused acquire grants none', async () => {
    const { recorder } = await recorded();
    expect(recorder.lastLease).toBeUndefined();
    const first = await recorder.acquireLock('x', { leaseMs: 10_000, waitMs: 0 });
    const second = await recorder.acquireLock('y', { leaseMs: 10_000, waitMs: 0 });
    expect(await recorder.acquireLock('x', { leaseMs: 10_000, waitMs: 0 })).toBeUndefined();
    expect(first).toBeDefined();
    expect(recorder.lastLease).toBe(second);
    expect(recorder.leases).toEqual([first, second]);
    expect(() => recorder.onlyLease()).toThrow('saw 2');
    expect(recorder.methods).toEqual(['acquireLock', 'acquireLock', 'acquireLock']);
  });
});
