import {
  hasDataMethod,
  NotFoundError,
  NotSupportedError,
  ProxyBackend,
  ValidationError,
  type Backend,
  type KeyValueStore,
  type StoredValue,
} from '@latchkey/core';
import { expect } from 'vitest';
import { bytes, expectBytes } from '../bytes.js';
import type { ConformanceEnvironment } from '../environment.js';
import { expectRejection } from '../expect-error.js';
import type { Harness } from '../harness.js';
import { checksFor } from '../register.js';
import { eventually, since, sleep } from '../timing.js';

/**
 * The optional data methods called on the backend directly (`clear`, `keys`, `has`,
 * `compareAndSet`): each check applies to a backend that has the method, and says so in its
 * name when it does not.
 *
 * `clear` must leave every other namespace alone, so these checks (and the store's) need
 * `create()` to give each backend a namespace of its own (a key prefix, table or collection),
 * as the suite's examples do.
 */
export function registerDataAdditionsChecks(env: ConformanceEnvironment): void {
  const { checkUnless, section } = checksFor(env);
  const { backendTtlMs, expiryGraceMs } = env.timings;
  section('optional data methods', () => {
    checkUnless(lacks(env, 'keys'), 'keys yields the stored key of every value, and no key of a lock or a deleted value', async (h) => {
      const backend = await h.backend();
      const [a, b, gone, locked] = [h.key('a'), h.key('b'), h.key('gone'), h.key('locked')];
      await backend.setMany([
        [a, bytes(1)],
        [b, bytes(2)],
        [gone, bytes(3)],
      ]);
      await backend.delete(gone);
      const lease = hasOwnLockMethods(backend) ? await backend.acquireLock!(locked, { leaseMs: 60_000, waitMs: 0 }) : undefined;
      const listed = await listKeys(backend);
      expect(listed).toContain(a);
      expect(listed).toContain(b);
      expect(listed).not.toContain(gone);
      expect(listed.filter((key) => key.includes(h.id)).sort(), 'only the values of this check').toStrictEqual([a, b].sort());
      if (lease !== undefined) await backend.releaseLock!(lease);
    });

    checkUnless(lacks(env, 'keys'), 'keys of a fresh backend lists nothing of another backend', async (h) => {
      const [first, second] = [await h.backend(), await h.backend()];
      const key = h.key();
      await first.set(key, bytes(1));
      expect(await listKeys(second)).not.toContain(key);
    });

    checkUnless(lacks(env, 'has'), 'has is true for a stored value, false for a missing one and once expiresAt has passed', async (h) => {
      const backend = (await h.backend()) as Backend & Required<Pick<Backend, 'has'>>;
      const [kept, short] = [h.key('kept'), h.key('short')];
      await backend.set(kept, bytes(1));
      const expiresAt = Date.now() + backendTtlMs;
      await backend.set(short, bytes(2), { expiresAt });
      expect(await backend.has(kept)).toBe(true);
      expect(await backend.has(h.key('missing'))).toBe(false);
      await sleep(expiresAt - Date.now());
      expect(await eventually(async () => !(await backend.has(short)), expiryGraceMs), `still there ${expiryGraceMs} ms after expiry`).toBe(
        true,
      );
    });

    checkUnless(lacks(env, 'compareAndSet'), 'compareAndSet writes only over exactly the expected bytes', async (h) => {
      const backend = (await h.backend()) as Backend & Required<Pick<Backend, 'compareAndSet'>>;
      const key = h.key();
      await backend.set(key, bytes(1, 2));
      expect(await backend.compareAndSet(key, bytes(1), bytes(9)), 'a prefix of the stored bytes').toBe(false);
      expect(await backend.compareAndSet(key, bytes(1, 3), bytes(9)), 'other bytes').toBe(false);
      expectBytes(await backend.get(key), bytes(1, 2), 'the value after refused swaps');
      expect(await backend.compareAndSet(key, bytes(1, 2), bytes(7))).toBe(true);
      expectBytes(await backend.get(key), bytes(7), 'the swapped value');
      expect(await backend.compareAndSet(h.key('missing'), bytes(1), bytes(2)), 'a missing key').toBe(false);
      expect(await backend.get(h.key('missing')), 'a refused swap writes nothing').toBeUndefined();
    });

    checkUnless(lacks(env, 'compareAndSet'), "compareAndSet sets the new value's expiresAt", async (h) => {
      const backend = (await h.backend()) as Backend & Required<Pick<Backend, 'compareAndSet'>>;
      const key = h.key();
      await backend.set(key, bytes(1));
      const expiresAt = Date.now() + backendTtlMs;
      expect(await backend.compareAndSet(key, bytes(1), bytes(2), { expiresAt })).toBe(true);
      await sleep(expiresAt - Date.now());
      expect(await eventually(async () => (await backend.get(key)) === undefined, expiryGraceMs)).toBe(true);
    });

    checkUnless(lacks(env, 'clear'), "clear removes every value of the backend's namespace and nothing of another", async (h) => {
      const [backend, other] = (await Promise.all([h.backend(), h.backend()])) as (Backend & Required<Pick<Backend, 'clear'>>)[];
      const [a, b, kept] = [h.key('a'), h.key('b'), h.key('kept')];
      await backend!.setMany([
        [a, bytes(1)],
        [b, bytes(2)],
      ]);
      await other!.set(kept, bytes(3));
      await backend!.clear();
      expect(await backend!.getMany([a, b])).toStrictEqual([undefined, undefined]);
      expectBytes(await other!.get(kept), bytes(3), "another backend's value");
    });

    checkUnless(
      lacks(env, 'clear') ?? (env.ownLocks ? undefined : 'the backend has no locks of its own'),
      'clear leaves leases alone: the holder still writes with its lease, nobody else acquires, fencing keeps increasing',
      async (h) => {
        const backend = await h.lockingBackend();
        const key = h.key();
        const lease = await backend.acquireLock(key, { leaseMs: 60_000, waitMs: 0 });
        expect(lease, 'the first acquire').toBeDefined();
        await backend.set(key, bytes(1), { lease: lease! });
        await backend.clear!();
        expect(await backend.acquireLock(key, { leaseMs: 60_000, waitMs: 0 }), 'an acquire after clear').toBeUndefined();
        expect(await backend.set(key, bytes(2), { lease: lease! })).toBe('written');
        expect(await backend.releaseLock(lease!)).toBe(true);
        const next = await backend.acquireLock(key, { leaseMs: 60_000, waitMs: 0 });
        expect(next!.fencingToken > lease!.fencingToken, `fencing ${next!.fencingToken} after ${lease!.fencingToken}`).toBe(true);
        await backend.releaseLock(next!);
      },
    );
  });
}

/**
 * `clear`, `keys`, `has`, `ttl`, `touch`, `find`, a partial `getMany` and per-entry TTLs
 * through `KeyValueStore`. They run on every backend: where the backend cannot list, the
 * checks hold `keys()` (and `clear()` without a `clear` of its own) to `NotSupportedError`.
 */
export function registerStoreAdditionsChecks(env: ConformanceEnvironment): void {
  const { check, checkUnless, section } = checksFor(env);
  const { shortTtlMs } = env.timings;
  const canList = !lacksMethod(env, 'keys');
  const canClear = canList || !lacksMethod(env, 'clear');

  section('find, has, ttl, touch and a partial getMany', () => {
    check('find resolves the value, a stored null, and undefined for a missing key', async (h) => {
      const { store } = await h.store();
      const [key, nothing] = [h.key(), h.key('null')];
      await store.set(key, { n: 1 });
      await store.set(nothing, null);
      expect(await store.find(key)).toStrictEqual({ n: 1 });
      expect(await store.find(nothing)).toBeNull();
      expect(await store.find(h.key('missing'))).toBeUndefined();
    });

    check('getMany with allowMissing puts undefined in the place of each missing key', async (h) => {
      const { store } = await h.store();
      const [a, b, missing] = [h.key('a'), h.key('b'), h.key('missing')];
      await store.setMany([
        [a, 1],
        [b, 2],
      ]);
      expect(await store.getMany([a, missing, b, missing], { allowMissing: true })).toStrictEqual([1, undefined, 2, undefined]);
      await expectRejection(store.getMany([a, missing]), NotFoundError);
    });

    check('has is true for a stored undefined and false for a missing key', async (h) => {
      const { store } = await h.store();
      const key = h.key();
      await store.set(key, undefined);
      expect(await store.has(key)).toBe(true);
      expect(await store.has(h.key('missing'))).toBe(false);
      await store.delete(key);
      expect(await store.has(key)).toBe(false);
    });

    check('ttl is undefined for a value that never expires, the time left otherwise, NotFoundError when missing', async (h) => {
      const { store } = await h.store();
      const [forever, minute] = [h.key('forever'), h.key('minute')];
      await store.set(forever, 1);
      const startedAt = performance.now();
      await store.set(minute, 1, { ttlMs: 60_000 });
      expect(await store.ttl(forever)).toBeUndefined();
      const left = await store.ttl(minute);
      const elapsed = since(startedAt);
      expect(left, `ttl ${left} ms, ${Math.round(elapsed)} ms after the set started`).toBeLessThanOrEqual(60_000);
      expect(left, `ttl ${left} ms, ${Math.round(elapsed)} ms after the set started`).toBeGreaterThan(60_000 - elapsed - 1);
      await expectRejection(store.ttl(h.key('missing')), NotFoundError);
    });

    check('setMany gives an entry [key, value, { ttlMs }] its own expiry', async (h) => {
      const { store } = await h.store();
      const ttlMs = await ttlOutlasting(shortTtlMs, h, store);
      const [short, kept] = [h.key('short'), h.key('kept')];
      await store.setMany([
        [short, 1, { ttlMs }],
        [kept, 2],
      ]);
      const writtenAt = performance.now();
      expect(await store.getMany([short, kept]), `read back ${Math.round(since(writtenAt))} ms after, ttlMs ${ttlMs}`).toStrictEqual([
        1, 2,
      ]);
      await sleep(ttlMs - since(writtenAt) + 20);
      expect(await store.getMany([short, kept], { allowMissing: true })).toStrictEqual([undefined, 2]);
      expect(await store.has(short)).toBe(false);
    });

    check('touch keeps a value past its first expiry and gives it the new one; the value is unchanged', async (h) => {
      const { store } = await h.store();
      const ttlMs = await ttlOutlasting(shortTtlMs, h, store);
      const key = h.key();
      await store.set(key, { v: 'kept' }, { ttlMs });
      const writtenAt = performance.now();
      await store.touch(key, 60_000);
      expect(since(writtenAt), `the touch took longer than the ttlMs ${ttlMs}`).toBeLessThan(ttlMs);
      await sleep(ttlMs - since(writtenAt) + 20);
      expect(await store.get(key)).toStrictEqual({ v: 'kept' });
      expect(await store.ttl(key)).toBeGreaterThan(60_000 - since(writtenAt) - 1);
    });

    check('touch can shorten an expiry', async (h) => {
      const { store } = await h.store();
      const ttlMs = await ttlOutlasting(shortTtlMs, h, store);
      const key = h.key();
      await store.set(key, 'v');
      await store.touch(key, ttlMs);
      const touchedAt = performance.now();
      await sleep(ttlMs - since(touchedAt) + 20);
      expect(await store.has(key)).toBe(false);
      await expectRejection(store.get(key), NotFoundError);
    });

    checkUnless(
      lacks(env, 'compareAndSet'),
      'touch never undoes a write that lands between its read and its write-back (compareAndSet)',
      async (h) => {
        const backend = await h.backend();
        const key = h.key();
        const { store: writer } = await h.store({}, backend);
        let concurrent: (() => Promise<void>) | undefined;
        /** Lets another store write the key right after the touching store's read. */
        class WriteAfterRead extends ProxyBackend {
          override async get(stored: string): Promise<StoredValue | undefined> {
            const read = await super.get(stored);
            const write = concurrent;
            concurrent = undefined;
            if (write !== undefined) await write();
            return read;
          }
        }
        const { store } = await h.store({ proxies: [new WriteAfterRead()] }, backend);
        await store.set(key, 'old');
        concurrent = () => writer.set(key, 'new', { ttlMs: 60_000 });
        await store.touch(key, 120_000);
        expect(concurrent, 'the concurrent write ran').toBeUndefined();
        expect(await writer.get(key), 'the value after the touch').toBe('new');
        expect(await writer.ttl(key), "the concurrent write's own expiry").toBeLessThanOrEqual(60_000);
      },
    );

    check('touch rejects NotFoundError for a missing key and ValidationError for a bad ttlMs', async (h) => {
      const { store } = await h.store();
      const key = h.key();
      await expectRejection(store.touch(key, 1000), NotFoundError);
      await store.set(key, 1);
      await expectRejection(store.touch(key, 0), ValidationError);
      await expectRejection(store.touch(key, -5), ValidationError);
      expect(await store.ttl(key)).toBeUndefined();
    });
  });

  section('keys and clear', () => {
    checkUnless(
      canList ? undefined : 'the backend cannot list (no keys method)',
      "keys yields this store's user keys under the default mangler, and not deleted or expired ones",
      async (h) => {
        const { store } = await h.store();
        const ttlMs = await ttlOutlasting(shortTtlMs, h, store);
        const [a, b, gone, short] = [h.key('a'), h.key('b:ü'), h.key('gone'), h.key('short')];
        await store.setMany([
          [a, 1],
          [b, null],
          [gone, 3],
          [short, 4, { ttlMs }],
        ]);
        await store.delete(gone);
        const writtenAt = performance.now();
        await sleep(ttlMs - since(writtenAt) + 20);
        const listed = (await collect(store.keys())).filter((key) => key.includes(h.id)).sort();
        // The probe key is the one ttlOutlasting wrote.
        expect(listed).toStrictEqual([a, b, h.key('probe')].sort());
      },
    );

    checkUnless(
      canList ? undefined : 'the backend cannot list (no keys method)',
      'keys yields user keys with keyMangler: null too, and not the key of a lock without a value',
      async (h) => {
        const { store } = await h.store({ keyMangler: null });
        const [a, locked] = [h.key('a'), h.key('locked')];
        await store.set(a, 1);
        await store.withLock(locked, async () => {
          const listed = (await collect(store.keys())).filter((key) => key.includes(h.id));
          expect(listed).toStrictEqual([a]);
        });
      },
    );

    checkUnless(
      canList ? 'the backend can list' : undefined,
      'keys rejects with NotSupportedError where the backend cannot list',
      async (h) => {
        const { store } = await h.store();
        await store.set(h.key(), 1);
        const error = await expectRejection(collect(store.keys()), NotSupportedError);
        expect(error.code).toBe('NOT_SUPPORTED');
      },
    );

    checkUnless(
      canClear ? undefined : 'the backend can neither clear nor list',
      "clear removes every value of the store and nothing of a store over another backend; a peer's store sees it",
      async (h) => {
        const backend = await h.backend();
        const { store } = await h.store({}, backend);
        const { store: peerStore } = await h.store({}, await h.peer(backend));
        const { store: other } = await h.store();
        const [a, b, kept] = [h.key('a'), h.key('b'), h.key('kept')];
        await store.setMany([
          [a, 1],
          [b, 2],
        ]);
        await other.set(kept, 3);
        await store.clear();
        expect(await store.getMany([a, b], { allowMissing: true })).toStrictEqual([undefined, undefined]);
        expect(await peerStore.has(a), 'the peer still sees a cleared value').toBe(false);
        expect(await other.get(kept)).toBe(3);
        if (canList) expect((await collect(store.keys())).filter((key) => key.includes(h.id))).toStrictEqual([]);
      },
    );

    checkUnless(
      canClear ? undefined : 'the backend can neither clear nor list',
      'clear leaves locks alone: the holder keeps its lock and writes under it, fencing keeps increasing',
      async (h) => {
        const { store } = await h.store();
        const key = h.key();
        const lock = await store.getLock(key).acquire();
        await store.set(key, 1, { lock });
        await store.clear();
        expect(await store.getLock(key).tryAcquire(), 'another lock of the key after clear').toBe(false);
        await store.set(key, 2, { lock });
        expect(await store.get(key)).toBe(2);
        const first = lock.fencingToken!;
        await lock.release();
        const next = await store.getLock(key).acquire();
        expect(next.fencingToken! > first, `fencing ${next.fencingToken} after ${first}`).toBe(true);
        await next.release();
      },
    );

    checkUnless(
      canClear ? 'the backend can clear' : undefined,
      'clear rejects with NotSupportedError where the backend can neither clear nor list, and removes nothing',
      async (h) => {
        const { store } = await h.store();
        const key = h.key();
        await store.set(key, 1);
        await expectRejection(store.clear(), NotSupportedError);
        expect(await store.get(key)).toBe(1);
      },
    );
  });
}

/** Why a check of the optional `method` does not apply, or `undefined` when the backend has it. */
function lacks(env: ConformanceEnvironment, method: 'clear' | 'keys' | 'has' | 'compareAndSet'): string | undefined {
  return lacksMethod(env, method) ? `the backend has no ${method} method` : undefined;
}

function lacksMethod(env: ConformanceEnvironment, method: 'clear' | 'keys' | 'has' | 'compareAndSet'): boolean {
  return !env.dataMethods.includes(method);
}

function hasOwnLockMethods(backend: Backend): boolean {
  return typeof backend.acquireLock === 'function' && typeof backend.releaseLock === 'function';
}

async function listKeys(backend: Backend): Promise<string[]> {
  if (!hasDataMethod(backend, 'keys')) throw new Error('create() returned a backend without keys, unlike the probe backend');
  return collect(backend.keys());
}

async function collect(keys: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const key of keys) out.push(key);
  return out;
}

/** A store TTL long enough that a set and a read back finish well inside it on this backend. */
async function ttlOutlasting(shortTtlMs: number, h: Harness, store: KeyValueStore): Promise<number> {
  const startedAt = performance.now();
  await store.set(h.key('probe'), 'p');
  await store.get(h.key('probe'));
  return Math.max(shortTtlMs, Math.ceil(4 * since(startedAt)));
}
