import { BackendClosedError, hasOwnLocks } from '@latchkey/core';
import { expect } from 'vitest';
import { bytes, expectBytes, patterned } from '../bytes.js';
import type { ConformanceEnvironment } from '../environment.js';
import { describeError, describeValue } from '../expect-error.js';
import { checksFor } from '../register.js';
import { describeTypes, ResourceTracker } from '../resources.js';
import { eventually, settleWithin, since } from '../timing.js';

/** The backend's data calls, called directly. */
export function registerDataChecks(env: ConformanceEnvironment): void {
  const { check, checkUnless, section } = checksFor(env);
  const { capabilities } = env;

  section('values', () => {
    check('get of a key never written resolves undefined, while a key written beside it reads back', async (h) => {
      const backend = await h.backend();
      await backend.set(h.key('written'), bytes(7));
      expect(await backend.get(h.key())).toBeUndefined();
      expectBytes(await backend.get(h.key('written')), bytes(7), 'the key written beside it');
    });

    check("set resolves 'written' and get returns the same bytes", async (h) => {
      const backend = await h.backend();
      const key = h.key();
      expect(await backend.set(key, bytes(1, 2, 3))).toBe('written');
      expectBytes(await backend.get(key), bytes(1, 2, 3));
    });

    check('get answers a buffer of its own: changing it changes nothing stored', async (h) => {
      const backend = await h.backend();
      const key = h.key();
      await backend.set(key, bytes(1, 2, 3));
      const read = await backend.get(key);
      expectBytes(read, bytes(1, 2, 3), 'the first read');
      if (read !== undefined) read.fill(0);
      expectBytes(await backend.get(key), bytes(1, 2, 3), 'the stored value after the caller changed what get answered');
    });

    check('set replaces the earlier value', async (h) => {
      const backend = await h.backend();
      const key = h.key();
      await backend.set(key, bytes(1, 2, 3, 4));
      await backend.set(key, bytes(9));
      expectBytes(await backend.get(key), bytes(9));
    });

    check('stores an empty value as zero bytes, not as missing', async (h) => {
      const backend = await h.backend();
      const key = h.key();
      await backend.set(key, new Uint8Array(0));
      expectBytes(await backend.get(key), new Uint8Array(0));
    });

    check('stores every byte value 0–255 unchanged', async (h) => {
      const backend = await h.backend();
      const key = h.key();
      const all = Uint8Array.from({ length: 256 }, (_, i) => i);
      await backend.set(key, all);
      expectBytes(await backend.get(key), all);
    });

    const large = Math.min(capabilities.maxValueBytes ?? Infinity, 256 * 1024);
    check(`stores a ${large}-byte value unchanged`, async (h) => {
      const backend = await h.backend();
      const key = h.key();
      const value = patterned(large);
      await backend.set(key, value);
      expectBytes(await backend.get(key), value);
    });

    check('stores exactly the bytes of a Uint8Array view into a larger buffer', async (h) => {
      const backend = await h.backend();
      const key = h.key();
      const view = patterned(64).subarray(5, 12);
      await backend.set(key, view);
      expectBytes(await backend.get(key), patterned(64).subarray(5, 12));
    });

    check('keeps no reference to the buffer passed to set', async (h) => {
      const backend = await h.backend();
      const key = h.key();
      const input = bytes(1, 2, 3);
      await backend.set(key, input);
      input.fill(0);
      expectBytes(await backend.get(key), bytes(1, 2, 3));
    });

    check('set and setMany store the bytes a buffer held when called, though the caller changes it before the call settles', async (h) => {
      const backend = await h.backend();
      const [key, batched] = [h.key(), h.key('batched')];
      const single = bytes(1, 2, 3);
      const writing = backend.set(key, single);
      single.fill(0);
      await writing;
      const batch = bytes(4, 5, 6);
      const batchWriting = backend.setMany([[batched, batch]]);
      batch.fill(0);
      await batchWriting;
      expectBytes(await backend.get(key), bytes(1, 2, 3), 'the value written by set');
      expectBytes(await backend.get(batched), bytes(4, 5, 6), 'the value written by setMany');
    });

    check('hands out buffers that do not change the stored value when mutated', async (h) => {
      const backend = await h.backend();
      const key = h.key();
      await backend.set(key, bytes(1, 2, 3));
      const first = await backend.get(key);
      first?.fill(0);
      expectBytes(await backend.get(key), bytes(1, 2, 3));
    });

    check('keeps keys apart that differ only in case, spacing or punctuation', async (h) => {
      const backend = await h.backend();
      const base = h.key('k');
      const keys = [base, base.toUpperCase(), `${base} `, ` ${base}`, `${base}:`, `${base}/`, `${base}.`];
      await backend.setMany(keys.map((key, i) => [key, bytes(i)] as const));
      const found = await backend.getMany(keys);
      keys.forEach((key, i) => expectBytes(found[i], bytes(i), `the value of ${JSON.stringify(key)}`));
    });

    check('stores keys with non-ASCII characters, spaces, braces and newlines', async (h) => {
      const backend = await h.backend();
      const id = h.id;
      const keys = [`café ☕ ${id}`, `{tag}:${id}`, `a b\tc\n${id}`, `日本語-${id}`, `emoji-😀-${id}`];
      for (const [i, key] of keys.entries()) await backend.set(key, bytes(i));
      for (const [i, key] of keys.entries()) expectBytes(await backend.get(key), bytes(i), `the value of ${JSON.stringify(key)}`);
    });

    const longKeyBytes = capabilities.maxKeyBytes ?? 1024;
    check(
      capabilities.maxKeyBytes === undefined
        ? 'stores a 1024-byte key (no maxKeyBytes declared)'
        : `stores a key of maxKeyBytes (${longKeyBytes}) bytes`,
      async (h) => {
        const backend = await h.backend();
        const prefix = `${h.id}-`;
        const key = prefix + 'k'.repeat(longKeyBytes - prefix.length);
        const sibling = `${key.slice(0, -1)}j`;
        await backend.set(key, bytes(1));
        await backend.set(sibling, bytes(2));
        expectBytes(await backend.get(key), bytes(1));
        expectBytes(await backend.get(sibling), bytes(2));
      },
    );
  });

  section('getMany', () => {
    check('answers in input order', async (h) => {
      const backend = await h.backend();
      const [a, b, c] = [h.key('a'), h.key('b'), h.key('c')];
      await backend.setMany([
        [a, bytes(1)],
        [b, bytes(2)],
        [c, bytes(3)],
      ]);
      const found = await backend.getMany([c, a, b]);
      expect(found).toHaveLength(3);
      expectBytes(found[0], bytes(3), 'the first answer');
      expectBytes(found[1], bytes(1), 'the second answer');
      expectBytes(found[2], bytes(2), 'the third answer');
    });

    check('answers each duplicate key', async (h) => {
      const backend = await h.backend();
      const [a, b] = [h.key('a'), h.key('b')];
      await backend.setMany([
        [a, bytes(1)],
        [b, bytes(2)],
      ]);
      const found = await backend.getMany([a, b, a, a]);
      expect(found).toHaveLength(4);
      [1, 2, 1, 1].forEach((value, i) => expectBytes(found[i], bytes(value), `answer ${i}`));
    });

    check('answers undefined in place of each missing key', async (h) => {
      const backend = await h.backend();
      const [a, b] = [h.key('a'), h.key('b')];
      await backend.set(a, bytes(1));
      const found = await backend.getMany([h.key('x'), a, b]);
      expect(found).toHaveLength(3);
      expect(found[0]).toBeUndefined();
      expectBytes(found[1], bytes(1));
      expect(found[2]).toBeUndefined();
    });

    check('answers 1,000 keys in random order, duplicates included, in input order', async (h) => {
      const backend = await h.backend();
      const keys = Array.from({ length: 400 }, (_, i) => h.key(`k${i}`));
      await backend.setMany(keys.map((key, i) => [key, bytes(i % 256, i >> 8)] as const));
      // A fixed shuffle (so a failure repeats) of 1,000 picks among the 400 keys and 40 missing ones.
      let seed = 12_345;
      const next = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648);
      const picks = Array.from({ length: 1_000 }, () => next() % 440);
      const found = await backend.getMany(picks.map((i) => (i < 400 ? (keys[i] as string) : h.key(`missing${i}`))));
      expect(found).toHaveLength(1_000);
      const wrong = picks.flatMap((i, at) => {
        const value = found[at];
        const expected = i < 400 ? [i % 256, i >> 8] : undefined;
        const actual = value === undefined ? undefined : [...value];
        return JSON.stringify(actual) === JSON.stringify(expected) ? [] : [`answer ${at} (key ${i}): ${JSON.stringify(actual)}`];
      });
      expect(wrong.slice(0, 5), `${wrong.length} of 1,000 answers were wrong`).toStrictEqual([]);
    });

    check('answers each duplicate key with a buffer of its own: changing one changes neither the other nor the stored value', async (h) => {
      const backend = await h.backend();
      const key = h.key();
      await backend.set(key, bytes(1, 2));
      const [first, second] = await backend.getMany([key, key]);
      expectBytes(first, bytes(1, 2), 'the first answer');
      if (first !== undefined) first[0] = 99;
      expectBytes(second, bytes(1, 2), 'the second answer after the first was changed');
      expectBytes(await backend.get(key), bytes(1, 2), 'the stored value after an answer was changed');
    });

    check('resolves [] for [], and a stored key in a one-key batch', async (h) => {
      const backend = await h.backend();
      const key = h.key();
      await backend.set(key, bytes(4));
      expect(await backend.getMany([])).toStrictEqual([]);
      const found = await backend.getMany([key]);
      expect(found).toHaveLength(1);
      expectBytes(found[0], bytes(4));
    });
  });

  section('setMany', () => {
    check('stores every entry', async (h) => {
      const backend = await h.backend();
      const keys = Array.from({ length: 20 }, (_, i) => h.key(`k${i}`));
      await backend.setMany(keys.map((key, i) => [key, bytes(i, i)] as const));
      const found = await backend.getMany(keys);
      keys.forEach((_, i) => expectBytes(found[i], bytes(i, i), `entry ${i}`));
    });

    check('lets the later of duplicate entries win', async (h) => {
      const backend = await h.backend();
      const key = h.key();
      await backend.setMany([
        [key, bytes(1)],
        [h.key('other'), bytes(5)],
        [key, bytes(2)],
      ]);
      expectBytes(await backend.get(key), bytes(2));
    });

    check('resolves for an empty batch, stores nothing and leaves stored values alone', async (h) => {
      const backend = await h.backend();
      const kept = h.key('kept');
      await backend.set(kept, bytes(3));
      await backend.setMany([]);
      expect(await backend.get(h.key())).toBeUndefined();
      expectBytes(await backend.get(kept), bytes(3), 'the value stored before');
    });
  });

  section('delete', () => {
    check("delete of a stored key resolves 'deleted' and removes it", async (h) => {
      const backend = await h.backend();
      const key = h.key();
      await backend.set(key, bytes(1));
      expect(await backend.delete(key)).toBe('deleted');
      expect(await backend.get(key)).toBeUndefined();
    });

    check("delete of a key never written resolves 'missing' and leaves a stored key alone", async (h) => {
      const backend = await h.backend();
      const kept = h.key('kept');
      await backend.set(kept, bytes(5));
      expect(await backend.delete(h.key())).toBe('missing');
      expectBytes(await backend.get(kept), bytes(5), 'the stored key');
    });

    check("a second delete of the same key resolves 'missing'", async (h) => {
      const backend = await h.backend();
      const key = h.key();
      await backend.set(key, bytes(1));
      expect(await backend.delete(key), 'the first delete').toBe('deleted');
      expect(await backend.delete(key)).toBe('missing');
    });

    check('delete removes only its key', async (h) => {
      const backend = await h.backend();
      const [a, b] = [h.key('a'), h.key('b')];
      await backend.setMany([
        [a, bytes(1)],
        [b, bytes(2)],
      ]);
      await backend.delete(a);
      expectBytes(await backend.get(b), bytes(2));
    });

    check('deleteMany removes every listed key and leaves the others', async (h) => {
      const backend = await h.backend();
      const [a, b, c] = [h.key('a'), h.key('b'), h.key('c')];
      await backend.setMany([
        [a, bytes(1)],
        [b, bytes(2)],
        [c, bytes(3)],
      ]);
      await backend.deleteMany([a, c]);
      expect(await backend.getMany([a, b, c])).toStrictEqual([undefined, expect.anything(), undefined]);
      expectBytes(await backend.get(b), bytes(2));
    });

    check('deleteMany ignores missing and duplicate keys', async (h) => {
      const backend = await h.backend();
      const [a, kept] = [h.key('a'), h.key('kept')];
      await backend.setMany([
        [a, bytes(1)],
        [kept, bytes(2)],
      ]);
      expectBytes(await backend.get(a), bytes(1), 'the value before deleteMany');
      await backend.deleteMany([h.key('missing'), a, a]);
      expect(await backend.get(a)).toBeUndefined();
      expectBytes(await backend.get(kept), bytes(2), 'the key not listed');
    });

    check('deleteMany resolves for an empty batch', async (h) => {
      const backend = await h.backend();
      const a = h.key('a');
      await backend.set(a, bytes(1));
      await backend.deleteMany([]);
      expectBytes(await backend.get(a), bytes(1));
    });
  });

  section('capabilities', () => {
    check("declares lockScope as 'distributed' or 'in-process'", () => {
      expect(['distributed', 'in-process']).toContain(capabilities.lockScope);
    });

    check("a backend declaring lockScope 'distributed' is given createPeer, so its locks are checked across handles", () => {
      if (capabilities.lockScope === 'distributed' && !env.hasPeer)
        expect.fail(
          "the backend declares lockScope 'distributed', but no createPeer is given: createPeer is required for distributed backends (a second handle on the same data and locks), or the cross-instance checks run on one handle and prove nothing about other processes",
        );
    });

    check('declares atomicLeaseWrites, fencingTokens and mayEvict as booleans', () => {
      expect(typeof capabilities.atomicLeaseWrites).toBe('boolean');
      expect(typeof capabilities.fencingTokens).toBe('boolean');
      expect(typeof capabilities.mayEvict).toBe('boolean');
    });

    check('declares ttlResolutionMs and minLeaseMs as positive finite numbers', () => {
      for (const name of ['ttlResolutionMs', 'minLeaseMs'] as const) {
        const value = capabilities[name];
        expect(typeof value === 'number' && Number.isFinite(value) && value > 0, `${name} = ${String(value)}`).toBe(true);
      }
    });

    check('declares size limits, when it has them, as positive integers', () => {
      for (const name of ['maxKeyBytes', 'maxValueBytes'] as const) {
        const value = capabilities[name];
        if (value !== undefined) expect(Number.isInteger(value) && value > 0, `${name} = ${String(value)}`).toBe(true);
      }
    });

    check('declares the same capabilities on every backend create() returns, and keeps them', async (h) => {
      const backend = await h.backend();
      expect({ ...backend.capabilities }).toStrictEqual({ ...capabilities });
      await backend.set(h.key(), bytes(1));
      await backend.getMany([h.key()]);
      expect({ ...backend.capabilities }).toStrictEqual({ ...capabilities });
    });

    check('implements the lock methods all together or not at all', () => {
      expect([0, 3], `lock methods present: ${env.lockMethods.join(', ') || 'none'}`).toContain(env.lockMethods.length);
    });

    checkUnless(
      env.ownLocks ? 'the backend has locks of its own' : undefined,
      "a backend without locks of its own declares lockScope 'in-process' and no atomic lease writes",
      () => {
        expect(capabilities.lockScope).toBe('in-process');
        expect(capabilities.atomicLeaseWrites).toBe(false);
      },
    );

    checkUnless(
      env.keyMangler === undefined ? 'the backend has no key mangler of its own (stores use sha1KeyMangler)' : undefined,
      "the backend's key mangler is deterministic and returns non-empty strings",
      () => {
        const mangle = env.keyMangler;
        expect(typeof mangle).toBe('function');
        for (const key of ['k', 'café', 'a b', 'x'.repeat(500)]) {
          const stored = mangle?.(key);
          expect(typeof stored === 'string' && stored.length > 0, `mangled ${JSON.stringify(key)} → ${String(stored)}`).toBe(true);
          expect(mangle?.(key)).toBe(stored);
        }
      },
    );
  });

  section('close', () => {
    check('close leaves nothing running: every timer, socket and handle the backend made is gone once close resolves', async (h) => {
      const { promptMs } = env.timings;
      const tracker = new ResourceTracker();
      try {
        await tracker.record(async () => {
          const backend = await h.backend();
          const key = h.key();
          await backend.set(key, bytes(1));
          await backend.getMany([key, h.key('missing')]);
          await backend.setMany([[h.key('batched'), bytes(2)]]);
          await backend.delete(key);
          if (hasOwnLocks(backend)) {
            const lease = await backend.acquireLock(h.key('locked'), { leaseMs: 60_000, waitMs: 0 });
            // A wait that runs out, and a lease left held for close to give back.
            await backend.acquireLock(h.key('locked'), { leaseMs: 60_000, waitMs: 20 });
            if (lease === undefined) expect.fail('the free key could not be locked');
          }
          await backend.close();
        });
        // A socket may finish closing a moment after close resolved; the bound is the measured round trip's.
        const closedAt = performance.now();
        const gone = await tracker.unrecorded(() => eventually(() => tracker.alive().length === 0, promptMs));
        expect(
          gone,
          `still running ${Math.round(since(closedAt))} ms after close resolved (the bound is ${Math.round(promptMs)} ms): ${describeTypes(tracker.alive())}`,
        ).toBe(true);
      } finally {
        tracker.dispose();
      }
    });

    check('close is idempotent', async (h) => {
      const backend = await h.backend();
      await backend.close();
      await expect(backend.close()).resolves.toBeUndefined();
    });

    check(
      'every call after close rejects with BackendClosedError (lock calls too, when the backend has them), and close again resolves',
      async (h) => {
        const backend = await h.backend();
        const key = h.key();
        // A real lease from before close, so the lock calls after it are well-formed.
        const lease = hasOwnLocks(backend) ? await backend.acquireLock(h.key('locked'), { leaseMs: 60_000, waitMs: 0 }) : undefined;
        await backend.close();
        const calls: [string, () => Promise<unknown>][] = [
          ['get', () => backend.get(key)],
          ['getMany', () => backend.getMany([key])],
          ['set', () => backend.set(key, bytes(1))],
          ['setMany', () => backend.setMany([[key, bytes(1)]])],
          ['delete', () => backend.delete(key)],
          ['deleteMany', () => backend.deleteMany([key])],
        ];
        if (hasOwnLocks(backend)) {
          if (lease === undefined) expect.fail('the free key could not be locked before close');
          calls.push(
            ['acquireLock', () => backend.acquireLock(h.key('free'), { leaseMs: 1_000, waitMs: 0 })],
            ['releaseLock', () => backend.releaseLock(lease)],
            ['extendLock', () => backend.extendLock(lease, 1_000)],
          );
        }
        const wrong: string[] = [];
        for (const [name, call] of calls) {
          const outcome = await settleWithin(call, 5_000);
          if (outcome === 'hung') wrong.push(`${name} hung for 5 s`);
          else if (outcome.ok) wrong.push(`${name} resolved ${describeValue(outcome.value)}`);
          else if (!(outcome.error instanceof BackendClosedError)) wrong.push(`${name} rejected with ${describeError(outcome.error)}`);
        }
        expect(wrong, 'calls after close that did not reject with BackendClosedError').toStrictEqual([]);
        const again = await settleWithin(() => backend.close(), 5_000);
        expect(again === 'hung' ? 'hung for 5 s' : again.ok ? 'resolved' : describeError(again.error), 'a second close').toBe('resolved');
      },
    );
  });
}
