import { expect } from 'vitest';

/** Bytes from numbers. */
export function bytes(...values: number[]): Uint8Array {
  return Uint8Array.from(values);
}

/** `length` bytes of a repeating, position-dependent pattern (so truncation or shifts show). */
export function patterned(length: number, seed = 7): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

/** Asserts `actual` is a `Uint8Array` holding exactly `expected`'s bytes. */
export function expectBytes(actual: unknown, expected: Uint8Array, what = 'the stored value'): void {
  if (!(actual instanceof Uint8Array)) {
    expect.fail(`expected ${what} to be ${expected.byteLength} bytes, got ${actual === undefined ? 'undefined' : typeof actual}`);
  }
  if (
    Buffer.compare(
      Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength),
      Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength),
    ) !== 0
  ) {
    expect.fail(`expected ${what} to be ${hexPreview(expected)}, got ${hexPreview(actual)}`);
  }
}

/** "5 bytes 01 02 03 04 05" (at most 16 shown). */
export function hexPreview(value: Uint8Array): string {
  const shown = Buffer.from(value.buffer, value.byteOffset, Math.min(value.byteLength, 16))
    .toString('hex')
    .replace(/(..)(?!$)/g, '$1 ');
  return `${value.byteLength} bytes ${shown}${value.byteLength > 16 ? ' …' : ''}`;
}
