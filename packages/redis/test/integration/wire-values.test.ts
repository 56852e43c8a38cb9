import { afterAll, describe, expect, it } from 'vitest';
import { availableTargets, closeAll } from '../support/targets.js';

afterAll(closeAll);

/** Values on both sides of each way `set` and `setMany` send bytes (a string for small ASCII, else a Buffer). */
const VALUES: readonly (readonly [string, Uint8Array])[] = [
  ['every ASCII byte, NUL included', Uint8Array.from({ length: 128 }, (_, i) => i)],
  ['empty', new Uint8Array(0)],
  ['4096 ASCII bytes', new Uint8Array(4096).fill(0x7e)],
  ['4097 ASCII bytes', new Uint8Array(4097).fill(0x7e)],
  ['every byte value', Uint8Array.from({ length: 256 }, (_, i) => 255 - i)],
  ['UTF-8 beyond ASCII', new TextEncoder().encode('{"name":"Zoë ✓"}')],
  ['a view into a larger buffer', Uint8Array.from([0xff, 0x41, 0x42, 0xff]).subarray(1, 3)],
];

describe.each(availableTargets('RedisBackend value bytes'))('RedisBackend value bytes on $name', (target) => {
  it.each(VALUES)('stores %s byte for byte with set and with setMany', async (_, value) => {
    const backend = target.create();
    await backend.get('warm');
    expect(await backend.set('one', value)).toBe('written');
    await backend.setMany([
      ['many-a', value],
      ['many-b', value],
    ]);
    const expected = Buffer.from(value);
    for (const read of [await backend.get('one'), ...(await backend.getMany(['many-a', 'many-b']))]) {
      expect(read).toBeDefined();
      expect(Buffer.from(read as Uint8Array).equals(expected)).toBe(true);
    }
  });
});
