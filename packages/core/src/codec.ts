import { deserialize, serialize } from 'node:v8';
import { SerializationError } from './errors.js';
import { seal, sealJsonText } from './internal/envelope.js';
import { decodeJsonPayload, encodeJsonPayload, isJsonExact, JSON_TAG } from './internal/tagged-json.js';

/**
 * Turns values into bytes and back. `encode` must throw (any error) for values it cannot
 * represent; `decode` must throw for bytes it cannot read. The store wraps both failures in
 * `SerializationError`.
 */
export interface Codec {
  /** A short name, shown in error messages. */
  readonly name: string;
  /** Encodes a value. */
  encode(value: unknown): Uint8Array;
  /** Decodes bytes produced by `encode` (possibly by another process or Node version). */
  decode(bytes: Uint8Array): unknown;
}

/**
 * V8's structured-clone serializer (`node:v8`). It round-trips `null`, `undefined`, booleans,
 * every number (`-0`, `NaN`, `±Infinity`), strings, arrays (also sparse, also with extra
 * properties), plain and nested objects (also with cycles and shared sub-objects), `Date`,
 * `RegExp`, `Uint8Array` and `Buffer` (each as its own type), `BigInt`, `Map`, `Set` and
 * `Error`; it refuses functions and symbols. Class instances come back as plain objects. Newer
 * Node versions read older payloads, which always start with the byte 0xFF.
 *
 * {@link taggedCodec} writes everything that is not plain JSON data with this serializer and
 * reads every payload this codec wrote; see the measurements in the core README.
 */
export const v8Codec: Codec = {
  name: 'v8',
  encode: (value) => serialize(value),
  decode: (bytes) => deserialize(bytes),
};

const V8_TAG = 0xff;

/**
 * The store's default codec: plain JSON data as tagged JSON, everything else through
 * {@link v8Codec}, with v8's fidelity at about JSON's speed.
 *
 * `encode` checks (one walk over the value) whether JSON gives the value back exactly: strings,
 * booleans, `null`, finite numbers other than `-0`, and plain objects and arrays of those, with
 * no `undefined`, holes, `toJSON` or cycles, at most 64 levels deep and 2^20 entries. Such a
 * value is written as the byte `J` (0x4A) and its UTF-8 JSON; anything else is written by
 * `v8.serialize`, whose output starts with 0xFF. So `-0`, `NaN`, `undefined`, `Date`, `Map`,
 * `Set`, `BigInt`, typed arrays, `RegExp`, `Error` and cycles round-trip exactly as with
 * {@link v8Codec}, and functions and symbols are refused ({@link SerializationError}).
 *
 * `decode` reads both formats, including everything {@link v8Codec} ever wrote, and rejects
 * with {@link SerializationError} any other first byte, bytes after the tag that are not valid
 * UTF-8 JSON, and corrupt v8 data.
 *
 * Unlike {@link v8Codec}, on the JSON path an object or array reachable twice in one value
 * comes back as two equal copies, an array's non-index properties are dropped, and getters are
 * read twice: keeping those would cost the speed this codec exists for (see the core README).
 */
export const taggedCodec: Codec = {
  name: 'tagged',
  encode: (value) => {
    try {
      return isJsonExact(value) ? encodeJsonPayload(value) : serialize(value);
    } catch (error) {
      throw new SerializationError(messageOf(error), { cause: error });
    }
  },
  decode: (bytes) => {
    const format = bytes[0];
    if (format === JSON_TAG) return decodeJsonPayload(bytes);
    if (format !== V8_TAG) {
      throw new SerializationError(
        format === undefined
          ? 'The payload is empty.'
          : `Unknown payload format 0x${format.toString(16).padStart(2, '0')} (expected 0x4a for JSON or 0xff for v8).`,
      );
    }
    try {
      return deserialize(bytes) as unknown;
    } catch (error) {
      throw new SerializationError(`The v8 payload does not deserialize: ${messageOf(error)}`, { cause: error });
    }
  },
};

/**
 * A JSON codec for interoperability with non-Node readers: only JSON values survive
 * (`undefined` in arrays becomes `null`, `Date` becomes a string). `BigInt` fails to encode.
 */
export const jsonCodec: Codec = {
  name: 'json',
  encode: (value) => {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError(`${typeof value} has no JSON representation`);
    return Buffer.from(text, 'utf8');
  },
  decode: (bytes) => JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as unknown,
};

/** Encodes with `codec`, wrapping any failure in {@link SerializationError}. */
export function encodeWith(codec: Codec, value: unknown): Uint8Array {
  try {
    return codec.encode(value);
  } catch (error) {
    throw encodeFailure(codec, error);
  }
}

/**
 * The encoded and sealed bytes of `value` (see `seal` in the envelope): with
 * {@link taggedCodec} and a value for JSON, the envelope and the payload are written in one
 * buffer; otherwise `seal(encodeWith(codec, value), …)`. The same bytes and errors either way.
 */
export function encodeSealed(codec: Codec, value: unknown, expiresAt: number | undefined, key: string | undefined): Uint8Array {
  if (codec !== taggedCodec) return seal(encodeWith(codec, value), expiresAt, key);
  let text: string | undefined;
  try {
    text = isJsonExact(value) ? JSON.stringify(value) : undefined;
  } catch (error) {
    // As taggedCodec.encode and encodeWith would have wrapped it.
    throw encodeFailure(codec, new SerializationError(messageOf(error), { cause: error }));
  }
  return text === undefined ? seal(encodeWith(codec, value), expiresAt, key) : sealJsonText(text, expiresAt, key);
}

function encodeFailure(codec: Codec, error: unknown): SerializationError {
  return new SerializationError(`The ${codec.name} codec cannot encode this value: ${messageOf(error)}`, { cause: error });
}

/** Decodes with `codec`, wrapping any failure in {@link SerializationError}. */
export function decodeWith(codec: Codec, bytes: Uint8Array): unknown {
  try {
    return codec.decode(bytes);
  } catch (error) {
    throw new SerializationError(`The ${codec.name} codec cannot decode the stored bytes: ${messageOf(error)}`, { cause: error });
  }
}

/**
 * {@link decodeWith} of the payload that starts at `at` of `bytes` (behind an envelope header):
 * a tagged-JSON payload is read in place, without a subarray; anything else as `decodeWith`.
 */
export function decodeAt(codec: Codec, bytes: Uint8Array, at: number): unknown {
  if (codec !== taggedCodec || bytes[at] !== JSON_TAG) return decodeWith(codec, at === 0 ? bytes : bytes.subarray(at));
  try {
    return decodeJsonPayload(bytes, at);
  } catch (error) {
    throw new SerializationError(`The ${codec.name} codec cannot decode the stored bytes: ${messageOf(error)}`, { cause: error });
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
