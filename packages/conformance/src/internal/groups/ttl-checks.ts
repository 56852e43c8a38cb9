import { NotFoundError } from '@latchkey/core';
import { expect } from 'vitest';
import { bytes, expectBytes } from '../bytes.js';
import type { ConformanceEnvironment } from '../environment.js';
import { expectRejection } from '../expect-error.js';
import { checksFor } from '../register.js';
import { eventually, since, sleep } from '../timing.js';

/** Expiry, directly and through `KeyValueStore`, paced by the backend's expiry resolution. */
export function registerTtlChecks(env: ConformanceEnvironment): void {
  const { check, section } = checksFor(env);
  const { backendTtlMs, expiryGraceMs, shortTtlMs } = env.timings;
  const resolution = `ttlResolutionMs ${env.capabilities.ttlResolutionMs}`;

  section('backend expiry', () => {
    check('a value is readable before its expiresAt', async (h) => {
      const backend = await h.backend();
      const key = h.key();
      await backend.set(key, bytes(1), { expiresAt: Date.now() + backendTtlMs + 1_000 });
      expectBytes(await backend.get(key), bytes(1));
    });

    check(`get resolves undefined once expiresAt has passed (within ${resolution})`, async (h) => {
      const backend = await h.backend();
      const key = h.key();
      const expiresAt = Date.now() + backendTtlMs;
      await backend.set(key, bytes(1), { expiresAt });
      expectBytes(await backend.get(key), bytes(1), 'the value before its expiresAt');
      await sleep(expiresAt - Date.now());
      expect(
        await eventually(async () => (await backend.get(key)) === undefined, expiryGraceMs),
        `still readable ${expiryGraceMs} ms after expiry`,
      ).toBe(true);
    });

    check('getMany answers undefined for an expired key and the value for a live one', async (h) => {
      const backend = await h.backend();
      const [gone, kept] = [h.key('gone'), h.key('kept')];
      const expiresAt = Date.now() + backendTtlMs;
      await backend.set(gone, bytes(1), { expiresAt });
      await backend.set(kept, bytes(2));
      await sleep(expiresAt - Date.now());
      expect(await eventually(async () => (await backend.getMany([gone]))[0] === undefined, expiryGraceMs)).toBe(true);
      const [first, second] = await backend.getMany([gone, kept]);
      expect(first).toBeUndefined();
      expectBytes(second, bytes(2));
    });

    check("setMany's expiresAt applies to every entry", async (h) => {
      const backend = await h.backend();
      const keys = [h.key('a'), h.key('b'), h.key('c')];
      const expiresAt = Date.now() + backendTtlMs;
      await backend.setMany(
        keys.map((key) => [key, bytes(1)] as const),
        { expiresAt },
      );
      expect((await backend.getMany(keys)).every((value) => value !== undefined)).toBe(true);
      await sleep(expiresAt - Date.now());
      expect(await eventually(async () => (await backend.getMany(keys)).every((value) => value === undefined), expiryGraceMs)).toBe(true);
    });

    check("delete of an expired key resolves 'missing'", async (h) => {
      const backend = await h.backend();
      const key = h.key();
      const expiresAt = Date.now() + backendTtlMs;
      await backend.set(key, bytes(1), { expiresAt });
      expectBytes(await backend.get(key), bytes(1), 'the value before its expiresAt');
      await sleep(expiresAt - Date.now());
      await eventually(async () => (await backend.get(key)) === undefined, expiryGraceMs);
      expect(await backend.delete(key)).toBe('missing');
    });

    // Far enough in the past that rounding up to the backend's resolution keeps it in the past.
    const pastMs = Math.max(60_000, 2 * env.capabilities.ttlResolutionMs);

    check(
      "set with an expiresAt already in the past resolves 'written' and leaves nothing readable, not even the earlier value",
      async (h) => {
        const backend = await h.backend();
        const [key, fresh] = [h.key(), h.key('fresh')];
        await backend.set(key, bytes(1));
        expectBytes(await backend.get(key), bytes(1), 'the earlier value');
        expect(await backend.set(key, bytes(2), { expiresAt: Date.now() - pastMs })).toBe('written');
        expect(await backend.set(fresh, bytes(3), { expiresAt: Date.now() - pastMs })).toBe('written');
        expect(await backend.getMany([key, fresh]), 'readable after a write that expired before it was made').toStrictEqual([
          undefined,
          undefined,
        ]);
      },
    );

    check('setMany with an expiresAt already in the past leaves none of its entries readable', async (h) => {
      const backend = await h.backend();
      const [earlier, fresh] = [h.key('earlier'), h.key('fresh')];
      await backend.set(earlier, bytes(1));
      expectBytes(await backend.get(earlier), bytes(1), 'the earlier value');
      await backend.setMany(
        [
          [earlier, bytes(2)],
          [fresh, bytes(3)],
        ],
        { expiresAt: Date.now() - pastMs },
      );
      expect(await backend.getMany([earlier, fresh]), 'readable after a batch that expired before it was made').toStrictEqual([
        undefined,
        undefined,
      ]);
    });

    check('overwriting without expiresAt removes the earlier expiry', async (h) => {
      const backend = await h.backend();
      const key = h.key();
      const expiresAt = Date.now() + backendTtlMs;
      await backend.set(key, bytes(1), { expiresAt });
      await backend.set(key, bytes(2));
      await sleep(expiresAt - Date.now() + expiryGraceMs);
      expectBytes(await backend.get(key), bytes(2));
    });

    check('overwriting with a later expiresAt extends the value', async (h) => {
      const backend = await h.backend();
      const key = h.key();
      const expiresAt = Date.now() + backendTtlMs;
      await backend.set(key, bytes(1), { expiresAt });
      await backend.set(key, bytes(2), { expiresAt: expiresAt + expiryGraceMs + 60_000 });
      await sleep(expiresAt - Date.now() + expiryGraceMs);
      expectBytes(await backend.get(key), bytes(2));
    });
  });

  section('store expiry', () => {
    check("the store's ttlMs: readable before it passes, NotFoundError after", async (h) => {
      const ttlMs = await ttlOutlasting(shortTtlMs, async () => {
        const { store: probe } = await h.store();
        await probe.set(h.key('probe'), 'p');
        await probe.get(h.key('probe'));
      });
      const { store } = await h.store({ ttlMs });
      const key = h.key();
      const startedAt = performance.now();
      await store.set(key, 'v');
      // The expiry counts from inside the set: at the latest from when it resolved.
      const writtenAt = performance.now();
      expect(await store.get(key), `read back ${Math.round(since(startedAt))} ms after the set started, ttlMs ${ttlMs}`).toBe('v');
      await sleep(ttlMs - since(writtenAt) + 20);
      await expectRejection(store.get(key), NotFoundError);
    });

    check("a per-call ttlMs shorter than the store's wins: readable before it passes, NotFoundError after", async (h) => {
      const { store } = await h.store({ ttlMs: 60_000 });
      const ttlMs = await ttlOutlasting(shortTtlMs, async () => {
        await store.set(h.key('probe'), 'p', { ttlMs: 60_000 });
        await store.get(h.key('probe'));
      });
      const key = h.key();
      await store.set(key, 'v', { ttlMs });
      const writtenAt = performance.now();
      expect(await store.get(key), `read back ${Math.round(since(writtenAt))} ms after the set resolved, ttlMs ${ttlMs}`).toBe('v');
      await sleep(ttlMs - since(writtenAt) + 20);
      await expectRejection(store.get(key), NotFoundError);
    });

    check("a per-call ttlMs longer than the store's wins", async (h) => {
      const { store } = await h.store({ ttlMs: shortTtlMs });
      const key = h.key();
      await store.set(key, 'v', { ttlMs: 60_000 });
      await sleep(shortTtlMs + 20);
      expect(await store.get(key)).toBe('v');
    });

    check("setMany's ttlMs applies to every entry", async (h) => {
      const { store } = await h.store();
      const [a, b] = [h.key('a'), h.key('b')];
      await store.setMany({ [a]: 1, [b]: 2 }, { ttlMs: shortTtlMs });
      expect(await store.getMany([a, b])).toStrictEqual([1, 2]);
      await sleep(shortTtlMs + 20);
      await expectRejection(store.get(a), NotFoundError);
      await expectRejection(store.get(b), NotFoundError);
    });

    check('getMany reports expired keys as missing', async (h) => {
      const { store } = await h.store();
      const [gone, kept] = [h.key('gone'), h.key('kept')];
      await store.set(gone, 1, { ttlMs: shortTtlMs });
      await store.set(kept, 2);
      await sleep(shortTtlMs + 20);
      const error = await expectRejection(store.getMany([kept, gone]), NotFoundError);
      expect(error.target).toStrictEqual([gone]);
    });

    check(`an expired value is never returned, even while the backend still holds it (${resolution})`, async (h) => {
      const { store, backend } = await h.store();
      const key = h.key();
      const startedAt = performance.now();
      await store.set(key, 'v', { ttlMs: shortTtlMs });
      // The value reached the backend: a backend that stored nothing would pass the rest trivially.
      const held = await backend.get(h.storedKey(key));
      const readAfter = since(startedAt);
      expect(
        held !== undefined || readAfter >= shortTtlMs,
        `nothing on the backend ${Math.round(readAfter)} ms after the set started`,
      ).toBe(true);
      await sleep(shortTtlMs - since(startedAt) + 5);
      await expectRejection(store.get(key), NotFoundError);
      await expectRejection(store.getMany([key]), NotFoundError);
    });

    check('delete of a key whose value expired rejects with NotFoundError', async (h) => {
      const { store, backend } = await h.store();
      const key = h.key();
      await store.set(key, 'v', { ttlMs: backendTtlMs });
      expect(await backend.get(h.storedKey(key)), 'the value on the backend before its ttlMs passed').toBeDefined();
      await sleep(backendTtlMs);
      await eventually(async () => (await backend.get(h.storedKey(key))) === undefined, expiryGraceMs);
      const error = await expectRejection(store.delete(key), NotFoundError);
      expect(error.target).toBe(key);
    });

    check(`the backend drops a value written through the store once its ttlMs has passed (${resolution})`, async (h) => {
      const { store, backend } = await h.store();
      const key = h.key();
      await store.set(key, 'v', { ttlMs: backendTtlMs });
      expect(await backend.get(h.storedKey(key))).toBeDefined();
      await sleep(backendTtlMs);
      expect(
        await eventually(async () => (await backend.get(h.storedKey(key))) === undefined, expiryGraceMs),
        `the backend still held it ${expiryGraceMs} ms after expiry`,
      ).toBe(true);
    });

    check('a value written without ttlMs outlives its expiring neighbours', async (h) => {
      const { store } = await h.store();
      const [gone, kept] = [h.key('gone'), h.key('kept')];
      await store.set(gone, 1, { ttlMs: shortTtlMs });
      await store.set(kept, 2);
      await sleep(shortTtlMs + 20);
      await expectRejection(store.get(gone), NotFoundError);
      expect(await store.get(kept)).toBe(2);
    });

    check("getOrCreate's ttlMs applies to the created value", async (h) => {
      const { store } = await h.store();
      const key = h.key();
      // A getOrCreate takes the key's lock, reads and writes: several round trips.
      const ttlMs = await ttlOutlasting(shortTtlMs, async () => {
        await store.getOrCreate(h.key('probe'), () => 'p', { ttlMs: 60_000 });
        await store.get(h.key('probe'));
      });
      const startedAt = performance.now();
      expect(await store.getOrCreate(key, () => 'made', { ttlMs })).toBe('made');
      // The expiry counts from the write inside getOrCreate: at the latest from when it resolved.
      const createdAt = performance.now();
      expect(await store.get(key), `read back ${Math.round(since(startedAt))} ms after getOrCreate started, ttlMs ${ttlMs}`).toBe('made');
      await sleep(ttlMs - since(createdAt) + 20);
      await expectRejection(store.get(key), NotFoundError);
    });
  });
}

/**
 * A TTL for a "readable before it passes" step: `shortTtlMs`, or four times what `work` (the
 * same calls on another key) took here when that is longer — on a loaded machine the calls alone
 * can outlast a short TTL, and the value would then rightly be gone before it is read.
 */
async function ttlOutlasting(shortTtlMs: number, work: () => Promise<void>): Promise<number> {
  const startedAt = performance.now();
  await work();
  return Math.max(shortTtlMs, Math.ceil(4 * since(startedAt)));
}
