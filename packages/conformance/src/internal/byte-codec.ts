import type { Codec } from '@latchkey/core';

/**
 * A codec whose values are `Uint8Array`s, passed through as they are. The value-size checks use
 * it so the size of what the store encodes is the size of the array the check built: no string
 * (V8 cannot build one of 512 MiB, a `RedisBackend`'s default `maxValueBytes`) and no second
 * copy of the payload inside the codec.
 */
export const byteCodec: Codec = {
  name: 'conformance-bytes',
  encode(value) {
    if (!(value instanceof Uint8Array)) throw new TypeError('the conformance byte codec encodes only Uint8Array values');
    return value;
  },
  decode: (bytes) => bytes,
};

/**
 * The largest value the exact-limit check writes (16 MiB, MongoDB's document limit). A backend
 * declaring more (RedisBackend: 512 MiB) is checked with a value of this size instead: writing
 * half a gigabyte to a test server costs more than it proves.
 */
export const MAX_WRITTEN_VALUE_BYTES = 16 * 1024 * 1024;
