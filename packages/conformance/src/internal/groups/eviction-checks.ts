import type { Backend } from '@latchkey/core';
import { expect } from 'vitest';
import { bytes, expectBytes } from '../bytes.js';
import type { ConformanceEnvironment } from '../environment.js';
import type { Harness } from '../harness.js';
import { checksFor } from '../register.js';

/**
 * Entry-count eviction, for a backend run with {@link ConformanceOptions.maxEntries}: it keeps
 * at most that many entries and drops the least recently used one (read or written) first.
 * Each check fills a fresh backend to the bound, then shows which entry the next write drops.
 */
export function registerEvictionChecks(env: ConformanceEnvironment): void {
  const { checkUnless, section } = checksFor(env);
  const { maxEntries } = env;
  const reason = maxEntries === undefined ? 'no maxEntries option given (the backend is not run as a bounded LRU store)' : undefined;
  const bound = maxEntries ?? 0;
  const evictionCheck = (name: string, body: (h: Harness, backend: Backend, keys: readonly string[]) => Promise<void>): void =>
    checkUnless(reason, name, async (h) => {
      const backend = await h.backend();
      const keys = Array.from({ length: bound }, (_, i) => h.key(`entry-${i}`));
      // One write per key, oldest first, so the use order is the key order.
      for (const [i, key] of keys.entries()) await backend.set(key, bytes(i & 0xff));
      await body(h, backend, keys);
    });
  /** The keys of `keys` that read back missing, without reading any other (reads count as use). */
  const missing = async (backend: Backend, keys: readonly string[]): Promise<string[]> => {
    const values = await backend.getMany(keys);
    return keys.filter((_, i) => values[i] === undefined);
  };

  section(maxEntries === undefined ? 'eviction at maxEntries' : `eviction at maxEntries (${maxEntries})`, () => {
    checkUnless(reason, 'declares mayEvict: true', () => {
      expect(env.capabilities.mayEvict).toBe(true);
    });

    evictionCheck(
      'keeps every entry up to the bound, and a write beyond it drops only the least recently written',
      async (h, backend, keys) => {
        expect(await missing(backend, keys), 'entries dropped at the bound').toStrictEqual([]);
        // The getMany above read every key in order: key 0 is still the least recently used.
        const extra = h.key('extra');
        expect(await backend.set(extra, bytes(7))).toBe('written');
        expectBytes(await backend.get(extra), bytes(7), 'the entry written beyond the bound');
        expect(await missing(backend, keys), 'entries dropped by one write beyond the bound').toStrictEqual(keys.slice(0, 1));
      },
    );

    evictionCheck('a get marks its entry as recently used', async (h, backend, keys) => {
      const [first, second] = keys;
      expectBytes(await backend.get(first ?? ''), bytes(0), 'the oldest entry');
      await backend.set(h.key('extra'), bytes(7));
      expect(await missing(backend, keys), 'entries dropped after reading the oldest').toStrictEqual([second]);
    });

    evictionCheck('a getMany marks every entry it read as recently used', async (h, backend, keys) => {
      await backend.getMany(keys.slice(0, 2));
      await backend.set(h.key('extra'), bytes(7));
      expect(await missing(backend, keys), 'entries dropped after reading the two oldest').toStrictEqual(keys.slice(2, 3));
    });

    evictionCheck('overwriting an entry at the bound drops nothing and marks it as recently used', async (h, backend, keys) => {
      const [first, second] = keys;
      await backend.set(first ?? '', bytes(8));
      await backend.setMany([[keys.at(-1) ?? '', bytes(8)]]);
      // No read in between: a read would mark every entry as used again.
      await backend.set(h.key('extra'), bytes(7));
      expect(await missing(backend, keys), 'entries dropped after overwriting the oldest, then one write beyond the bound').toStrictEqual([
        second,
      ]);
      expectBytes(await backend.get(first ?? ''), bytes(8), 'the overwritten oldest entry');
    });

    evictionCheck('a delete frees a place: the next write drops nothing', async (h, backend, keys) => {
      const [first] = keys;
      expect(await backend.delete(first ?? '')).toBe('deleted');
      await backend.set(h.key('extra'), bytes(7));
      expect(await missing(backend, keys.slice(1)), 'entries dropped after a delete made room').toStrictEqual([]);
    });

    evictionCheck('a setMany beyond the bound keeps its own entries and drops the least recently used', async (h, backend, keys) => {
      const batch = [h.key('batch-a'), h.key('batch-b')];
      await backend.setMany(batch.map((key) => [key, bytes(5)] as const));
      expect(await missing(backend, batch), 'entries of the batch itself').toStrictEqual([]);
      expect(await missing(backend, keys), 'entries dropped by a two-entry batch at the bound').toStrictEqual(keys.slice(0, 2));
    });
  });
}
