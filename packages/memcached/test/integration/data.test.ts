import { BackendUnavailableError, InvalidKeyError, ValueTooLargeError } from '@latchkey/core';
import { Client } from 'memjs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { MemcachedBackend } from '../../src/index.js';
import { backendOn, bytes, rawClients, sleep, targets, text, uniquePrefix } from '../support/targets.js';

const ITEM_SIZE_LIMIT = 1_048_576;
const MAX_VALUE = ITEM_SIZE_LIMIT - 512;

describe.each(targets('MemcachedBackend data'))('MemcachedBackend data on $name', (target) => {
  const opened: MemcachedBackend[] = [];
  const open = (options?: Parameters<typeof backendOn>[1]): MemcachedBackend => {
    const backend = backendOn(target, options);
    opened.push(backend);
    return backend;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((backend) => backend.close()));
  });

  describe('values', () => {
    it('stores and returns every byte value, and the empty value', async () => {
      const backend = open();
      const all = Uint8Array.from({ length: 256 }, (_, i) => i);
      await backend.set('all', all);
      await backend.set('empty', new Uint8Array(0));
      expect(await backend.get('all')).toStrictEqual(all);
      expect(await backend.get('empty')).toStrictEqual(new Uint8Array(0));
      expect(await backend.get('missing')).toBeUndefined();
    });

    it('keeps stored bytes apart from the buffers passed in and handed out', async () => {
      const backend = open();
      const input = bytes('abc');
      await backend.set('k', input);
      input[0] = 0;
      const output = (await backend.get('k')) as Uint8Array;
      output[1] = 0;
      expect(text(await backend.get('k'))).toBe('abc');
    });

    it('answers getMany in input order, duplicates included, undefined for missing keys', async () => {
      const backend = open();
      await backend.setMany([
        ['a', bytes('1')],
        ['b', bytes('2')],
      ]);
      const found = await backend.getMany(['b', 'x', 'a', 'b']);
      expect(found.map(text)).toStrictEqual(['2', undefined, '1', '2']);
      (found[0] as Uint8Array)[0] = 0;
      expect(text(found[3])).toBe('2');
      expect(await backend.getMany([])).toStrictEqual([]);
    });

    it('lets later duplicates win in setMany', async () => {
      const backend = open();
      await backend.setMany([
        ['k', bytes('first')],
        ['j', bytes('j')],
        ['k', bytes('last')],
      ]);
      expect(text(await backend.get('k'))).toBe('last');
    });

    it('reports whether delete found the key, and deleteMany ignores missing keys', async () => {
      const backend = open();
      await backend.setMany([
        ['a', bytes('1')],
        ['b', bytes('2')],
      ]);
      expect(await backend.delete('a')).toBe('deleted');
      expect(await backend.delete('a')).toBe('missing');
      await backend.deleteMany(['b', 'never', 'b']);
      await backend.deleteMany([]);
      expect(await backend.getMany(['a', 'b'])).toStrictEqual([undefined, undefined]);
    });
  });

  describe('keys', () => {
    const awkward = [
      'with space',
      'tab\tand\nnewline',
      'café ☕',
      '\ud800 lone',
      '\udc00 lone',
      '\ufffd lone',
      '#not-hashed',
      '~internal',
      'k'.repeat(1024),
    ];

    it('stores keys memcached would refuse, each under its own item', async () => {
      const backend = open();
      await backend.setMany(awkward.map((key, i) => [key, bytes(String(i))]));
      expect((await backend.getMany(awkward)).map(text)).toStrictEqual(awkward.map((_, i) => String(i)));
      expect(await backend.delete(awkward[0] as string)).toBe('deleted');
      expect(text(await backend.get(awkward[1] as string))).toBe('1');
    });

    it('rejects an empty or non-string key with InvalidKeyError', async () => {
      const backend = open();
      await expect(backend.get('')).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(backend.getMany(['ok', 7 as never])).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(backend.set(null as never, bytes('x'))).rejects.toBeInstanceOf(InvalidKeyError);
    });

    it('keeps short printable keys readable on the server', async () => {
      const backend = open();
      await backend.set('user:42', bytes('v'));
      const raw = rawClients(target.servers).get(backend.serverFor('user:42')) as Client;
      const { value } = await raw.get(`${backend.keyPrefix}user:42`);
      raw.close();
      expect(value?.toString()).toBe('v');
    });
  });

  describe('value size', () => {
    it.each([
      ['limit − 1', MAX_VALUE - 1],
      ['limit', MAX_VALUE],
    ])('stores a value at %s (%i bytes) under the longest stored key', async (_what, size) => {
      const backend = open({ keyPrefix: `${uniquePrefix()}${'p'.repeat(100)}` });
      // The longest key stored as given: its lock item (two more bytes) fills all 250 bytes.
      const key = 'k'.repeat(250 - backend.keyPrefix.length - 2);
      expect(backend.keyMangler(key)).toBe(key);
      const value = new Uint8Array(size).fill(7);
      expect(await backend.set(key, value)).toBe('written');
      expect((await backend.get(key))?.byteLength).toBe(size);
    });

    it.each([
      ['limit + 1', MAX_VALUE + 1],
      ['item size − 1', ITEM_SIZE_LIMIT - 1],
      ['item size', ITEM_SIZE_LIMIT],
      ['item size + 1', ITEM_SIZE_LIMIT + 1],
    ])('refuses a value at %s (%i bytes) with ValueTooLargeError, writing nothing', async (_what, size) => {
      const backend = open();
      await backend.set('k', bytes('before'));
      const error = await backend.set('k', new Uint8Array(size)).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ValueTooLargeError);
      expect(error).toMatchObject({ size, limit: MAX_VALUE });
      await expect(
        backend.setMany([
          ['a', bytes('a')],
          ['k', new Uint8Array(size)],
        ]),
      ).rejects.toBeInstanceOf(ValueTooLargeError);
      expect(text(await backend.get('k'))).toBe('before');
      expect(await backend.get('a')).toBeUndefined();
    });

    it('refuses an oversized value before any I/O (even with no server to reach)', async () => {
      const backend = new MemcachedBackend({ servers: '127.0.0.1:1', operationTimeoutMs: 500 });
      opened.push(backend);
      await expect(backend.set('k', new Uint8Array(MAX_VALUE + 1))).rejects.toBeInstanceOf(ValueTooLargeError);
      await expect(backend.set('k', bytes('small'))).rejects.toBeInstanceOf(BackendUnavailableError);
    });
  });

  describe.concurrent('expiry in whole seconds', () => {
    it('keeps a value until about its expiry and drops it within a second after it', async ({ onTestFinished }) => {
      const backend = backendOn(target);
      onTestFinished(() => backend.close());
      const startedAt = Date.now();
      await backend.set('k', bytes('v'), { expiresAt: startedAt + 2000 });
      // Expiry 3 s: memcached keeps it over 2 s, or over 1 s if its clock tick runs late.
      await sleep(Math.max(0, startedAt + 900 - Date.now()));
      expect(text(await backend.get('k'))).toBe('v');
      await sleep(Math.max(0, startedAt + 3100 - Date.now()));
      expect(await backend.get('k')).toBeUndefined();
    });

    it('never turns an expiry 1 ms away into "never expires"', async ({ onTestFinished }) => {
      const backend = backendOn(target);
      onTestFinished(() => backend.close());
      await backend.set('k', bytes('v'), { expiresAt: Date.now() + 1 });
      await backend.setMany([['m', bytes('v')]], { expiresAt: Date.now() + 1 });
      await sleep(2100);
      expect(await backend.getMany(['k', 'm'])).toStrictEqual([undefined, undefined]);
    });

    it('removes the key when the expiry has already passed', async ({ onTestFinished }) => {
      const backend = backendOn(target);
      onTestFinished(() => backend.close());
      await backend.setMany([
        ['k', bytes('old')],
        ['m', bytes('old')],
      ]);
      expect(await backend.set('k', bytes('new'), { expiresAt: Date.now() - 1 })).toBe('written');
      await backend.setMany([['m', bytes('new')]], { expiresAt: Date.now() - 1 });
      expect(await backend.getMany(['k', 'm'])).toStrictEqual([undefined, undefined]);
    });

    it('applies defaultTtlMs to writes without an expiry, except to noExpiryKeys (as given or mangled)', async ({ onTestFinished }) => {
      const backend = backendOn(target, { defaultTtlMs: 300, noExpiryKeys: ['keep', 'keep me too'] });
      onTestFinished(() => backend.close());
      await backend.setMany([
        ['drop', bytes('v')],
        ['keep', bytes('v')],
        [backend.keyMangler('keep me too'), bytes('v')],
      ]);
      await backend.set('explicit', bytes('v'), { expiresAt: Date.now() + 60_000 });
      await sleep(2100);
      const found = await backend.getMany(['drop', 'keep', backend.keyMangler('keep me too'), 'explicit']);
      expect(found.map(text)).toStrictEqual([undefined, 'v', 'v', 'v']);
    });
  });

  describe('lock placeholders', () => {
    it('reads a key that is missing but locked as missing everywhere', async () => {
      const backend = open();
      const lease = await backend.acquireLock('k', { leaseMs: 5000, waitMs: 0 });
      expect(lease).toBeDefined();
      expect(await backend.get('k')).toBeUndefined();
      expect(await backend.getMany(['k', 'k'])).toStrictEqual([undefined, undefined]);
      expect(await backend.delete('k')).toBe('missing');
      await backend.releaseLock(lease as NonNullable<typeof lease>);
    });

    it('removes the placeholder on release when nothing was written', async () => {
      const backend = open();
      const lease = await backend.acquireLock('k', { leaseMs: 5000, waitMs: 0 });
      const raw = rawClients(target.servers).get(backend.serverFor('k')) as Client;
      const dataKey = `${backend.keyPrefix}k`;
      const during = await raw.get(dataKey);
      expect(during.value).not.toBeNull();
      expect(await backend.releaseLock(lease as NonNullable<typeof lease>)).toBe(true);
      const after = await raw.get(dataKey);
      raw.close();
      expect(after.value).toBeNull();
    });
  });

  describe('pipelining', () => {
    it('sends every request of a batch to a server in one write before the first reply arrives', async () => {
      const client = Client.create(target.servers, { logger: { log: () => undefined } });
      const events: string[] = [];
      /** Requests per write, by server port. */
      const written = new Map<number, number[]>();
      for (const server of client.servers) {
        const mutable = server as unknown as { write: (blob: Buffer) => void; responseHandler: (data: Buffer) => void };
        const write = mutable.write.bind(server);
        const onData = mutable.responseHandler.bind(server);
        mutable.write = (blob) => {
          events.push(`write ${server.port}`);
          written.get(server.port)?.push(countFrames(blob));
          write(blob);
        };
        mutable.responseHandler = (data) => {
          events.push(`reply ${server.port}`);
          onData(data);
        };
      }
      const backend = new MemcachedBackend({ client, keyPrefix: uniquePrefix() });
      const keys = Array.from({ length: 50 }, (_, i) => `key:${i}`);
      await backend.setMany(keys.map((key) => [key, bytes(key)]));
      for (const batch of ['getMany', 'deleteMany'] as const) {
        events.length = 0;
        for (const server of client.servers) written.set(server.port, []);
        if (batch === 'getMany') expect((await backend.getMany(keys)).map(text)).toStrictEqual(keys);
        else await backend.deleteMany(keys);
        for (const server of client.servers) {
          const ours = events.filter((event) => event.endsWith(` ${server.port}`));
          const firstReply = ours.findIndex((event) => event.startsWith('reply'));
          const writes = ours.filter((event) => event.startsWith('write')).length;
          expect(writes).toBeGreaterThan(0);
          expect(ours.slice(0, firstReply).every((event) => event.startsWith('write'))).toBe(true);
          expect(ours.slice(firstReply).some((event) => event.startsWith('write'))).toBe(false);
        }
        // getMany reads each server's generation counter in the same batch: one request more per server.
        const extra = batch === 'getMany' ? client.servers.length : 0;
        const perWrite = [...written.values()];
        expect(perWrite.every((counts) => counts.length === 1)).toBe(true);
        expect(perWrite.flat().reduce((sum, count) => sum + count, 0)).toBe(keys.length + extra);
      }
      await backend.close();
      client.close();
    });
  });
});

/** The binary-protocol requests in one socket write. */
function countFrames(blob: Buffer): number {
  let count = 0;
  for (let offset = 0; offset < blob.length; offset += 24 + blob.readUInt32BE(offset + 8)) count += 1;
  return count;
}

describe.each(targets('MemcachedBackend placement', 'two servers'))('MemcachedBackend placement on $name', (target) => {
  const raw = rawClients(target.servers);
  afterAll(() => {
    for (const client of raw.values()) client.close();
  });

  it('spreads keys over both servers and stores each where the ring says', async () => {
    const backend = backendOn(target);
    const keys = Array.from({ length: 40 }, (_, i) => `spread:${i}`);
    await backend.setMany(keys.map((key) => [key, bytes(key)]));
    const owners = keys.map((key) => backend.serverFor(key));
    expect(new Set(owners)).toStrictEqual(new Set(backend.servers));
    for (const [i, key] of keys.entries()) {
      for (const [server, client] of raw) {
        const { value } = await client.get(`${backend.keyPrefix}${key}`);
        expect(value === null ? undefined : value.toString()).toBe(server === owners[i] ? key : undefined);
      }
    }
    await backend.close();
  });
});
