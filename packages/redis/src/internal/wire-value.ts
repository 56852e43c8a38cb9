import { isAscii } from 'node:buffer';
import type { StoredValue } from '@latchkey/core';

/**
 * Up to this size an all-ASCII value is sent as a string. Measured on ioredis 6 (a `SET` of a
 * 50-byte key): building the command costs about half as much for a string as for a Buffer
 * argument at 200 B to 4 KB, and about the same at 10 KB, where copying a Buffer is cheap.
 */
const STRING_MAX_BYTES = 4096;

/**
 * The argument that sends `value`'s bytes as the value of a plain write. A small all-ASCII
 * value (the store's JSON envelopes without expiry are) goes as a string: ioredis then builds
 * the command as one string instead of assembling a Buffer, and the string is encoded back to
 * exactly the same bytes (each ASCII character is one UTF-8 byte). A string is also a
 * snapshot, so it never needs a copy. Anything else goes as a Buffer: the caller's bytes, or
 * a private copy when `copy` is set (see `toBuffer` in the backend for when that is needed).
 */
export function wireValue(value: StoredValue, copy: boolean): string | Buffer {
  const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (bytes.byteLength <= STRING_MAX_BYTES && isAscii(bytes)) return bytes.toString('latin1');
  return copy ? Buffer.from(bytes) : bytes;
}
