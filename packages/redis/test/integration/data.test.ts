import { randomUUID } from 'node:crypto';
import type { Lease } from '@latchkey/core';
import { afterAll, describe, expect, it } from 'vitest';
import { clusterSlot } from '../../src/internal/cluster-slot.js';
import { availableTargets, closeAll, commandCalls, sleep } from '../support/targets.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (value: Uint8Array | undefined): string | undefined => (value === undefined ? undefined : new TextDecoder().decode(value));

const unique = (): string => `data-${randomUUID().slice(0, 8)}:`;

afterAll(closeAll);

describe.each(availableTargets('RedisBackend data'))('RedisBackend data on $name', (target) => {
  describe('get / set / delete', () => {
    it('answers undefined for a missing key', async () => {
      expect(await target.create().get('missing')).toBeUndefined();
    });

    it('stores bytes exactly, empty and binary values included', async () => {
      const backend = target.create();
      const binary = Uint8Array.from([0, 255, 10, 13, 0, 1]);
      expect(await backend.set('bin', binary)).toBe('written');
      expect(await backend.set('empty', new Uint8Array())).toBe('written');
      expect(Uint8Array.from((await backend.get('bin')) ?? [])).toEqual(binary);
      expect((await backend.get('empty'))?.byteLength).toBe(0);
    });

    it("keeps its own copy of the caller's buffer", async () => {
      const backend = target.create();
      const value = bytes('abc');
      const pending = backend.set('k', value);
      value.fill(0);
      await pending;
      expect(text(await backend.get('k'))).toBe('abc');
    });

    it('overwrites and deletes, telling a missing key apart', async () => {
      const backend = target.create();
      await backend.set('k', bytes('1'));
      await backend.set('k', bytes('2'));
      expect(text(await backend.get('k'))).toBe('2');
      expect(await backend.delete('k')).toBe('deleted');
      expect(await backend.delete('k')).toBe('missing');
      expect(await backend.get('k')).toBeUndefined();
    });

    it('keeps keys with braces, lone surrogates and lookalikes apart', async () => {
      const backend = target.create();
      const keys = ['a{b}c', '{}', '}{', '\ud800', '\udc00', '&#55296;', 'plain', 'plain:lock'];
      for (const [i, key] of keys.entries()) await backend.set(key, bytes(String(i)));
      expect((await backend.getMany(keys)).map(text)).toEqual(keys.map((_, i) => String(i)));
    });

    it('namespaces data, lock and fence counter under keyPrefix', async () => {
      const prefix = unique();
      const backend = target.create({ keyPrefix: prefix });
      await backend.set('user', bytes('x'));
      const lease = await backend.acquireLock('user', { leaseMs: 1_000, waitMs: 0 });
      const admin = target.admin();
      expect(await admin.exists(`${prefix}{user}`, `${prefix}{user}:lock`, `${prefix}{user}:fence`)).toBe(3);
      expect(await target.create({ keyPrefix: unique() }).get('user')).toBeUndefined();
      if (lease !== undefined) await backend.releaseLock(lease);
    });
  });

  describe('expiry', () => {
    it('expires a value at its absolute expiry, to the millisecond', async () => {
      const prefix = unique();
      const backend = target.create({ keyPrefix: prefix });
      const admin = target.admin();
      await backend.set('k', bytes('v'), { expiresAt: Date.now() + 300 });
      const pttl = await admin.pttl(`${prefix}{k}`);
      expect(pttl).toBeGreaterThan(200);
      expect(pttl).toBeLessThanOrEqual(300);
      expect(text(await backend.get('k'))).toBe('v');
      await sleep(350);
      expect(await backend.get('k')).toBeUndefined();
    });

    it('deletes the key for a past expiry, in set, locked set and setMany alike (never "no expiry")', async () => {
      const prefix = unique();
      const backend = target.create({ keyPrefix: prefix });
      const admin = target.admin();
      const past = Date.now() - 1_000;
      for (const key of ['plain', 'locked', 'batch']) await backend.set(key, bytes('earlier'));
      expect(await backend.set('plain', bytes('v'), { expiresAt: past })).toBe('written');
      const lease = (await backend.acquireLock('locked', { leaseMs: 5_000, waitMs: 0 })) as Lease;
      expect(await backend.set('locked', bytes('v'), { lease, expiresAt: past })).toBe('written');
      await backend.setMany([['batch', bytes('v')]], { expiresAt: past });
      for (const key of ['plain', 'locked', 'batch']) {
        expect(await backend.get(key), key).toBeUndefined();
        expect(await admin.exists(`${prefix}{${key}}`), key).toBe(0);
      }
    });

    it('removes an expiry when a value is written again without one', async () => {
      const prefix = unique();
      const backend = target.create({ keyPrefix: prefix });
      await backend.set('k', bytes('v'), { expiresAt: Date.now() + 100 });
      await backend.set('k', bytes('w'));
      expect(await target.admin().pttl(`${prefix}{k}`)).toBe(-1);
    });

    it('applies one expiry to every entry of setMany', async () => {
      const backend = target.create();
      const keys = Array.from({ length: 20 }, (_, i) => `e${i}`);
      // Long enough that a loaded machine reads back well inside it; the timings are printed.
      const ttlMs = 1500;
      const expiresAt = Date.now() + ttlMs;
      await backend.setMany(
        keys.map((key) => [key, bytes(key)] as const),
        { expiresAt },
      );
      // The expiry goes out as a remaining time (PX), so a write that took a while to reach a
      // node counts from later: by at most the time the setMany took.
      const writeMs = Date.now() - (expiresAt - ttlMs);
      const found = await backend.getMany(keys);
      const readAt = Date.now();
      expect(readAt, `read back ${ttlMs - (expiresAt - readAt)} ms after the write`).toBeLessThan(expiresAt);
      expect(found.every((value) => value !== undefined)).toBe(true);
      await sleep(expiresAt - Date.now() + writeMs + 60);
      const after = await backend.getMany(keys);
      expect(
        after.every((value) => value === undefined),
        `${after.filter((value) => value !== undefined).length} of ${keys.length} still there ${Date.now() - expiresAt} ms after expiresAt (the setMany took ${writeMs} ms)`,
      ).toBe(true);
    });
  });

  describe('batches', () => {
    const keys = Array.from({ length: 100 }, (_, i) => `batch-${i}`);

    it('spreads a batch over many slots (the premise of the tests below)', () => {
      expect(new Set(keys.map((key) => clusterSlot(`{${key}}`))).size).toBeGreaterThan(90);
    });

    it('answers getMany in input order, with duplicates and missing keys', async () => {
      const backend = target.create();
      await backend.setMany(keys.map((key) => [key, bytes(key)] as const));
      const asked = [...keys].reverse().concat(['nope', 'batch-7', 'batch-7']);
      expect((await backend.getMany(asked)).map(text)).toEqual(asked.map((key) => (key === 'nope' ? undefined : key)));
    });

    it('lets later duplicates win in setMany', async () => {
      const backend = target.create();
      await backend.setMany([
        ['d', bytes('1')],
        ['e', bytes('x')],
        ['d', bytes('2')],
      ]);
      expect(text(await backend.get('d'))).toBe('2');
    });

    it('deletes across slots and ignores missing keys', async () => {
      const backend = target.create();
      await backend.setMany(keys.map((key) => [key, bytes(key)] as const));
      await backend.deleteMany([...keys.slice(0, 60), 'never-there']);
      const left = await backend.getMany(keys);
      expect(left.slice(0, 60).every((value) => value === undefined)).toBe(true);
      expect(left.slice(60).map(text)).toEqual(keys.slice(60));
    });

    it('sends one MGET per slot group (one in all on a single server)', async () => {
      const backend = target.create();
      await backend.setMany(keys.map((key) => [key, bytes(key)] as const));
      const masters = await target.masters();
      const before = await commandCalls(masters, 'mget');
      await backend.getMany(keys);
      const sent = (await commandCalls(masters, 'mget')) - before;
      expect(sent).toBe(target.name === 'standalone' ? 1 : new Set(keys.map((key) => clusterSlot(key))).size);
    });
  });
});
