import { describe, expect, it } from 'vitest';
import {
  BackendError,
  KeyValueStore,
  lengthConditionalMangler,
  NotFoundError,
  NotSupportedError,
  ProxyBackend,
  hasDataMethod,
  sha1KeyMangler,
  ValidationError,
  type Backend,
  type ConfigureOptions,
  type OptionalDataMethod,
} from '../../src/index.js';
import { open, seal } from '../../src/internal/envelope.js';
import { encodeWith, taggedCodec } from '../../src/codec.js';
import { ListingMapBackend } from '../support/listing-map-backend.js';
import { MapBackend, sleep, uniqueName } from '../support/map-backend.js';

async function over<B extends Backend>(backend: B, options: ConfigureOptions = {}) {
  const store = new KeyValueStore(uniqueName('additions'));
  await store.configure(backend, { lockSafetyWindowMs: 20, ...options });
  return { store, backend };
}

const full = (without: readonly OptionalDataMethod[] = [], options: ConfigureOptions = {}) =>
  over(new ListingMapBackend({}, without), options);

async function collect(keys: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const key of keys) out.push(key);
  return out;
}

/** The bytes an earlier release (envelope version 1 only) wrote for `value`. */
function writtenByEarlierRelease(value: unknown, expiresAt?: number): Uint8Array {
  return seal(encodeWith(taggedCodec, value), expiresAt);
}

describe('which optional methods a backend has', () => {
  class PassingProxy extends ProxyBackend {}
  class ListingProxy extends ProxyBackend {
    override keys(): AsyncIterable<string> {
      return (async function* () {})();
    }
  }

  it('a proxy serves an optional method only when it overrides it or the backend beneath has it', () => {
    const lacking = new PassingProxy().wrap(new MapBackend());
    const having = new PassingProxy().wrap(new ListingMapBackend({}, ['has']));
    expect(hasDataMethod(lacking, 'keys')).toBe(false);
    expect(hasDataMethod(having, 'keys')).toBe(true);
    expect(hasDataMethod(having, 'has')).toBe(false);
    expect(hasDataMethod(new PassingProxy().wrap(having), 'clear')).toBe(true);
    expect(hasDataMethod(new ListingProxy().wrap(new MapBackend()), 'keys')).toBe(true);
    expect(hasDataMethod(new ListingMapBackend({}, ['compareAndSet']), 'compareAndSet')).toBe(false);
  });

  it('the store falls back, and rejects NotSupportedError, for a proxy over a backend without the methods', async () => {
    const { store } = await over(new PassingProxy().wrap(new MapBackend()));
    await store.set('k', 1);
    expect(await store.has('k')).toBe(true);
    await store.touch('k', 60_000);
    await expect(collect(store.keys())).rejects.toBeInstanceOf(NotSupportedError);
    await expect(store.clear()).rejects.toBeInstanceOf(NotSupportedError);
  });
});

describe('find', () => {
  it('resolves the value, undefined for a missing or expired key, and a stored null as null', async () => {
    const { store } = await over(new MapBackend());
    await store.set('a', { n: 1 });
    await store.set('null', null);
    await store.set('short', 1, { ttlMs: 20 });
    expect(await store.find('a')).toStrictEqual({ n: 1 });
    expect(await store.find('null')).toBeNull();
    expect(await store.find('missing')).toBeUndefined();
    await sleep(40);
    expect(await store.find('short')).toBeUndefined();
  });
});

describe('getMany with allowMissing', () => {
  it('puts undefined in the place of each missing key, in input order, duplicates included', async () => {
    const { store } = await over(new MapBackend());
    await store.setMany({ a: 1, b: 2 });
    expect(await store.getMany(['a', 'x', 'b', 'x', 'a'], { allowMissing: true })).toStrictEqual([1, undefined, 2, undefined, 1]);
  });

  it('still rejects with NotFoundError without it, and validates the option', async () => {
    const { store } = await over(new MapBackend());
    await store.set('a', 1);
    await expect(store.getMany(['a', 'x'])).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.getMany(['a', 'x'], { allowMissing: false })).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.getMany(['a'], { allowMissing: 'yes' as unknown as boolean })).rejects.toBeInstanceOf(ValidationError);
  });
});

describe('setMany with a TTL per entry', () => {
  it('gives each entry its own expiry over the call and store defaults', async () => {
    const { store, backend } = await over(new MapBackend(), { ttlMs: 60_000 });
    const before = Date.now();
    await store.setMany(
      [
        ['short', 1, { ttlMs: 30 }],
        ['call', 2],
        ['long', 3, { ttlMs: 600_000 }],
      ],
      { ttlMs: 120_000 },
    );
    const expiry = (key: string) => open(backend.data.get(sha1KeyMangler(key))!.value).expiresAt! - before;
    expect(expiry('short')).toBeGreaterThanOrEqual(30);
    expect(expiry('short')).toBeLessThan(30 + 5_000);
    expect(expiry('call')).toBeGreaterThanOrEqual(120_000);
    expect(expiry('long')).toBeGreaterThanOrEqual(600_000);
    // The backend was given the same expiry as the envelope of each entry.
    for (const key of ['short', 'call', 'long']) {
      const entry = backend.data.get(sha1KeyMangler(key))!;
      expect(entry.expiresAt).toBe(open(entry.value).expiresAt);
    }
    await sleep(60);
    expect(await store.getMany(['short', 'call', 'long'], { allowMissing: true })).toStrictEqual([undefined, 2, 3]);
  });

  it('sends one backend batch per distinct expiry', async () => {
    const { store, backend } = await over(new MapBackend(), { keyMangler: null });
    await store.setMany([
      ['a', 1, { ttlMs: 1000 }],
      ['b', 2, { ttlMs: 1000 }],
      ['c', 3],
    ]);
    expect(backend.calls.filter((call) => call.startsWith('setMany')).sort()).toStrictEqual(['setMany a,b', 'setMany c']);
  });

  it('lets the later duplicate win across batches of different expiries', async () => {
    const { store, backend } = await over(new MapBackend(), { keyMangler: null });
    await store.setMany([
      ['k', 'first', { ttlMs: 20 }],
      ['other', 0, { ttlMs: 20 }],
      ['k', 'second'],
    ]);
    expect(backend.calls.filter((call) => call.startsWith('setMany')).sort()).toStrictEqual(['setMany k', 'setMany other']);
    await sleep(40);
    expect(await store.get('k')).toBe('second');
    await store.setMany([
      ['k', 'third'],
      ['k', 'fourth', { ttlMs: 20 }],
    ]);
    await sleep(40);
    expect(await store.find('k')).toBeUndefined();
  });

  it('keeps the [key, value] and record forms, and refuses bad entries before any I/O', async () => {
    const { store, backend } = await over(new MapBackend(), { keyMangler: null });
    await store.setMany([['a', 1]]);
    await store.setMany({ b: 2 });
    expect(await store.getMany(['a', 'b'])).toStrictEqual([1, 2]);
    const calls = backend.calls.length;
    await expect(store.setMany([['c', 1, { ttlMs: -1 }]])).rejects.toBeInstanceOf(ValidationError);
    await expect(store.setMany([['c', 1, 'ttl' as unknown as { ttlMs: number }]])).rejects.toBeInstanceOf(ValidationError);
    await expect(store.setMany([['c', 1, {}, 4] as unknown as [string, unknown]])).rejects.toBeInstanceOf(ValidationError);
    expect(backend.calls.length).toBe(calls);
  });
});

describe('has', () => {
  it('is true for a live value, a stored undefined included, and false when missing or expired', async () => {
    for (const backend of [new MapBackend(), new ListingMapBackend()]) {
      const { store } = await over(backend);
      await store.set('undefined', undefined);
      await store.set('short', 1, { ttlMs: 20 });
      expect(await store.has('undefined')).toBe(true);
      expect(await store.has('short')).toBe(true);
      expect(await store.has('missing')).toBe(false);
      await sleep(40);
      expect(await store.has('short')).toBe(false);
    }
  });

  it("uses the backend's has at 1 ms resolution, and the envelope's expiry over a coarser backend", async () => {
    const exact = await over(new ListingMapBackend());
    await exact.store.set('k', 1);
    exact.backend.calls.length = 0;
    expect(await exact.store.has('k')).toBe(true);
    expect(exact.backend.calls).toStrictEqual([`has ${sha1KeyMangler('k')}`]);

    const coarse = await over(new ListingMapBackend({ ttlResolutionMs: 1000 }), { keyMangler: null });
    // The backend still holds a value whose envelope says it expired (whole-second expiry).
    coarse.backend.data.set('k', { value: seal(encodeWith(taggedCodec, 1), Date.now() - 1), expiresAt: Infinity });
    expect(await coarse.store.has('k')).toBe(false);
    expect(coarse.backend.calls).toStrictEqual(['get k']);
  });

  it('rejects with BackendError when the backend answers something other than a boolean', async () => {
    const backend = new ListingMapBackend();
    backend.has = async () => 'yes' as unknown as boolean;
    const { store } = await over(backend);
    await expect(store.has('k')).rejects.toBeInstanceOf(BackendError);
  });
});

describe('ttl', () => {
  it("is the time left from the value's envelope, undefined without expiry, NotFoundError when missing", async () => {
    const { store } = await over(new MapBackend());
    await store.set('forever', 1);
    const before = Date.now();
    await store.set('minute', 1, { ttlMs: 60_000 });
    expect(await store.ttl('forever')).toBeUndefined();
    const left = await store.ttl('minute');
    const elapsed = Date.now() - before;
    expect(left).toBeGreaterThan(60_000 - elapsed - 1);
    expect(left).toBeLessThanOrEqual(60_000);
    await expect(store.ttl('missing')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('counts an expired value the backend still holds as missing', async () => {
    const { store, backend } = await over(new MapBackend({ ttlResolutionMs: 1000 }), { keyMangler: null });
    backend.data.set('k', { value: seal(encodeWith(taggedCodec, 1), Date.now() - 1), expiresAt: Infinity });
    await expect(store.ttl('k')).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('touch', () => {
  for (const [name, without] of [
    ['with compareAndSet', []],
    ['without compareAndSet', ['compareAndSet']],
  ] as const) {
    it(`${name}: gives a value a new expiry from now, keeping it, and envelope and backend agree`, async () => {
      const { store, backend } = await full(without, { keyMangler: null });
      await store.set('k', { v: 1 }, { ttlMs: 30 });
      const before = Date.now();
      await store.touch('k', 60_000);
      await sleep(60);
      expect(await store.get('k')).toStrictEqual({ v: 1 });
      const entry = backend.data.get('k')!;
      expect(entry.expiresAt).toBe(open(entry.value).expiresAt);
      expect(entry.expiresAt).toBeGreaterThanOrEqual(before + 60_000);
      expect(await store.ttl('k')).toBeGreaterThan(59_000 - (Date.now() - before));
      expect(backend.calls.some((call) => call.startsWith('compareAndSet'))).toBe(without.length === 0);
    });
  }

  it('shortens an expiry too, and keeps a carried key', async () => {
    const { store } = await full();
    await store.set('k', 1);
    await store.touch('k', 20);
    expect(await collect(store.keys())).toStrictEqual(['k']);
    await sleep(40);
    expect(await store.has('k')).toBe(false);
  });

  it('rejects NotFoundError for a missing or expired key and ValidationError for a bad ttlMs', async () => {
    const { store, backend } = await full();
    await expect(store.touch('missing', 1000)).rejects.toBeInstanceOf(NotFoundError);
    await store.set('short', 1, { ttlMs: 10 });
    await sleep(30);
    await expect(store.touch('short', 1000)).rejects.toBeInstanceOf(NotFoundError);
    await store.set('k', 1);
    for (const bad of [0, -1, Number.NaN, undefined, '5']) {
      await expect(store.touch('k', bad as number)).rejects.toBeInstanceOf(ValidationError);
    }
    expect(backend.calls.filter((call) => call.startsWith('compareAndSet'))).toStrictEqual([]);
  });

  it('with compareAndSet, never undoes a write that lands between its read and its write-back', async () => {
    const backend = new ListingMapBackend();
    const { store } = await over(backend, { keyMangler: null });
    await store.set('k', 'old');
    const get = backend.get.bind(backend);
    let writer: KeyValueStore | undefined = store;
    backend.get = async (key) => {
      const read = await get(key);
      const concurrent = writer;
      writer = undefined;
      if (concurrent !== undefined) await concurrent.set('k', 'new', { ttlMs: 60_000 });
      return read;
    };
    await store.touch('k', 20);
    backend.get = get;
    await sleep(40);
    expect(await store.get('k')).toBe('new');
  });

  it('with compareAndSet, is a miss when the value is deleted between its read and its write-back', async () => {
    const backend = new ListingMapBackend();
    const { store } = await over(backend, { keyMangler: null });
    await store.set('k', 'old');
    const get = backend.get.bind(backend);
    let once = true;
    backend.get = async (key) => {
      const read = await get(key);
      if (once) backend.data.delete(key);
      once = false;
      return read;
    };
    await expect(store.touch('k', 60_000)).rejects.toBeInstanceOf(NotFoundError);
    expect(backend.data.has('k')).toBe(false);
  });

  it('without compareAndSet, loses a write that lands between its read and its write-back (documented)', async () => {
    const backend = new ListingMapBackend({}, ['compareAndSet']);
    const { store } = await over(backend, { keyMangler: null });
    await store.set('k', 'old');
    const get = backend.get.bind(backend);
    let once = true;
    backend.get = async (key) => {
      const read = await get(key);
      if (once) await backend.set(key, seal(encodeWith(taggedCodec, 'new'), undefined));
      once = false;
      return read;
    };
    await store.touch('k', 60_000);
    expect(await store.get('k')).toBe('old');
  });
});

describe('clear', () => {
  it("uses the backend's clear and removes every value", async () => {
    const { store, backend } = await full();
    await store.setMany({ a: 1, b: 2 });
    await store.clear();
    expect(backend.calls).toContain('clear');
    expect(await store.getMany(['a', 'b'], { allowMissing: true })).toStrictEqual([undefined, undefined]);
  });

  it('falls back to listing and deleting in batches of 500', async () => {
    const { store, backend } = await full(['clear']);
    await store.setMany(Array.from({ length: 1201 }, (_, index) => [`k${index}`, index] as const));
    await store.clear();
    expect(backend.data.size).toBe(0);
    expect(backend.calls.filter((call) => call.startsWith('deleteMany')).map((call) => call.split(',').length)).toStrictEqual([
      500, 500, 201,
    ]);
  });

  it('rejects NotSupportedError when the backend can neither clear nor list, before any I/O', async () => {
    const { store, backend } = await over(new MapBackend());
    await store.set('a', 1);
    const calls = backend.calls.length;
    const error = await store.clear().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(NotSupportedError);
    expect((error as NotSupportedError).code).toBe('NOT_SUPPORTED');
    expect((error as NotSupportedError).operation).toBe('clear');
    expect(backend.calls.length).toBe(calls);
    expect(await store.get('a')).toBe(1);
  });

  it('leaves locks alone: a holder keeps its lock and can write, and fencing tokens keep increasing', async () => {
    for (const without of [[], ['clear']] as const) {
      const { store } = await full(without);
      const lock = await store.getLock('k').acquire();
      await store.set('k', 1, { lock });
      await store.clear();
      expect(await store.getLock('k').tryAcquire()).toBe(false);
      await store.set('k', 2, { lock });
      expect(await store.get('k')).toBe(2);
      const first = lock.fencingToken!;
      await lock.release();
      const next = await store.getLock('k').acquire();
      expect(next.fencingToken! > first).toBe(true);
      await next.release();
    }
  });
});

describe('keys', () => {
  it('yields the user keys under the default sha1 mangler (carried in the values)', async () => {
    const { store, backend } = await full();
    await store.setMany({ 'user:1': 1, 'user:2': null, 'ü🔑': 3 });
    expect((await collect(store.keys())).sort()).toStrictEqual(['user:1', 'user:2', 'ü🔑'].sort());
    expect([...backend.data.keys()].every((stored) => /^[0-9a-f]{40}$/.test(stored))).toBe(true);
  });

  it('yields stored keys as they are with keyMangler: null, without reading values', async () => {
    const { store, backend } = await full([], { keyMangler: null });
    await store.setMany({ a: 1, b: 2 });
    backend.calls.length = 0;
    expect((await collect(store.keys())).sort()).toStrictEqual(['a', 'b']);
    expect(backend.calls).toStrictEqual(['keys']);
  });

  it('writes values under unmangled keys as version 1 and mangled ones as version 2', async () => {
    const { store, backend } = await full([], { keyMangler: lengthConditionalMangler(10, sha1KeyMangler) });
    await store.setMany({ short: 1, 'a-long-key-that-is-hashed': 2 });
    expect(backend.data.get('short')!.value[1]).toBe(1);
    expect(backend.data.get(sha1KeyMangler('a-long-key-that-is-hashed'))!.value[1]).toBe(2);
    expect((await collect(store.keys())).sort()).toStrictEqual(['a-long-key-that-is-hashed', 'short']);
  });

  it('leaves out expired values, values of earlier releases under a hashing mangler, and bytes that are not values', async () => {
    const { store, backend } = await full();
    await store.set('live', 1);
    await store.set('short', 1, { ttlMs: 10 });
    backend.data.set(sha1KeyMangler('old'), { value: writtenByEarlierRelease('v1'), expiresAt: Infinity });
    backend.data.set('foreign', { value: Uint8Array.from([1, 2, 3]), expiresAt: Infinity });
    await sleep(30);
    backend.data.get(sha1KeyMangler('short'))!.expiresAt = Infinity; // a backend that has not dropped it yet
    expect(await collect(store.keys())).toStrictEqual(['live']);
    // The value of an earlier release is still readable, and listed once rewritten.
    expect(await store.get('old')).toBe('v1');
    await store.set('old', 'v2');
    expect((await collect(store.keys())).sort()).toStrictEqual(['live', 'old']);
  });

  it("leaves out another store's values whose key its own mangler maps elsewhere", async () => {
    const backend = new ListingMapBackend();
    const hashed = await over(backend);
    const plain = await over(backend, { keyMangler: null });
    await hashed.store.set('h', 1);
    await plain.store.set('p', 2);
    expect(await collect(hashed.store.keys())).toStrictEqual(['h']);
    // keyMangler null over exact expiry lists the backend's keys as they are.
    expect((await collect(plain.store.keys())).sort()).toStrictEqual([sha1KeyMangler('h'), 'p'].sort());
  });

  it('reads the values in pages of 100', async () => {
    const { store, backend } = await full();
    await store.setMany(Array.from({ length: 250 }, (_, index) => [`k${index}`, index] as const));
    backend.calls.length = 0;
    expect((await collect(store.keys())).length).toBe(250);
    expect(backend.calls.filter((call) => call.startsWith('getMany')).map((call) => call.split(',').length)).toStrictEqual([100, 100, 50]);
  });

  it("closes the backend's iterator when the caller stops early", async () => {
    const { store, backend } = await full([], { keyMangler: null });
    await store.setMany({ a: 1, b: 2, c: 3 });
    for await (const key of store.keys()) {
      expect(typeof key).toBe('string');
      break;
    }
    expect(backend.keysReturned).toBe(1);
  });

  it('rejects NotSupportedError from the first step when the backend cannot list', async () => {
    const { store } = await over(new MapBackend());
    const iterator = store.keys()[Symbol.asyncIterator]();
    const error = await iterator.next().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(NotSupportedError);
    expect((error as NotSupportedError).operation).toBe('keys');
  });

  it('rejects BackendError when the backend yields something that is not a stored key', async () => {
    const backend = new ListingMapBackend();
    backend.keys = () => ({
      [Symbol.asyncIterator]: () => ({ next: async () => ({ done: false, value: 42 as unknown as string }) }),
    });
    const { store } = await over(backend);
    await expect(collect(store.keys())).rejects.toBeInstanceOf(BackendError);
  });
});
