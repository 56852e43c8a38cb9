import { describe, expect, it } from 'vitest';
import { KeyValueStore, SerializationError, sha1KeyMangler } from '../../src/index.js';
import { seal } from '../../src/internal/envelope.js';
import { MapBackend, uniqueName } from '../support/map-backend.js';

// The store reads a tagged-JSON payload in place behind the envelope header (no subarray):
// these values are written by hand so that the payload starts at every offset the envelope
// allows (version 1 and 2, with and without expiry), each from a Buffer and a plain Uint8Array.
const FUTURE = Date.now() + 3_600_000;
const json = (text: string): Buffer => Buffer.concat([Buffer.from([0x4a]), Buffer.from(text, 'utf8')]);

async function storeHolding(bytes: Uint8Array, key = 'k'): Promise<KeyValueStore> {
  const backend = new MapBackend();
  const store = new KeyValueStore(uniqueName());
  await store.configure(backend, { keyMangler: sha1KeyMangler });
  backend.data.set(sha1KeyMangler(key), { value: bytes, expiresAt: Infinity });
  return store;
}

const layouts: [string, number | undefined, string | undefined][] = [
  ['version 1, no expiry', undefined, undefined],
  ['version 1, expiry', FUTURE, undefined],
  ['version 2, no expiry', undefined, 'k'],
  ['version 2, expiry', FUTURE, 'k'],
];

describe('reading a tagged-JSON payload in place', () => {
  for (const [layout, expiresAt, carried] of layouts) {
    for (const plain of [false, true]) {
      const kind = plain ? 'Uint8Array' : 'Buffer';
      it(`${layout} (${kind}): decodes get and getMany`, async () => {
        const sealed = seal(json('{"a":[1,"é",null]}'), expiresAt, carried);
        const store = await storeHolding(plain ? Uint8Array.from(sealed) : sealed);
        await expect(store.get('k')).resolves.toEqual({ a: [1, 'é', null] });
        await expect(store.getMany(['k', 'k'])).resolves.toEqual([{ a: [1, 'é', null] }, { a: [1, 'é', null] }]);
      });

      it(`${layout} (${kind}): refuses text that is not JSON with SerializationError and its cause`, async () => {
        const sealed = seal(json('{"a":'), expiresAt, carried);
        const store = await storeHolding(plain ? Uint8Array.from(sealed) : sealed);
        const error = await store.get('k').catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(SerializationError);
        expect((error as Error).message).toMatch(/tagged codec cannot decode.*does not parse/);
        expect((error as Error).cause).toBeInstanceOf(SerializationError);
      });

      it(`${layout} (${kind}): refuses bytes that are not UTF-8 after the tag`, async () => {
        const payload = Buffer.concat([json('"x'), Buffer.from([0xff]), Buffer.from('"')]);
        const sealed = seal(payload, expiresAt, carried);
        const store = await storeHolding(plain ? Uint8Array.from(sealed) : sealed);
        await expect(store.getMany(['k'])).rejects.toThrow(/not valid UTF-8/);
      });
    }
  }

  it('reads a v8 payload behind a version-2 header with expiry', async () => {
    const store = await storeHolding(new Uint8Array(0));
    await store.set('k', new Map([[1, new Date(0)]]), { ttlMs: 60_000 });
    await expect(store.get('k')).resolves.toEqual(new Map([[1, new Date(0)]]));
  });

  it('treats an expired value as missing', async () => {
    const store = await storeHolding(seal(json('1'), Date.now() - 1, 'k'));
    await expect(store.getMany(['k'], { allowMissing: true })).resolves.toEqual([undefined]);
  });
});
