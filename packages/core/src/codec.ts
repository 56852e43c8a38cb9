import { deserialize, serialize } from 'node:v8';
import { SerializationError } from './errors.js';

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
 * The default codec: V8's structured-clone serializer (`node:v8`). It round-trips `null`,
 * `undefined`, booleans, every number (`-0`, `NaN`, `±Infinity`), strings, arrays, plain and
 * nested objects (also with cycles), `Date`, `RegExp`, `Uint8Array` and `Buffer` (each as its
 * own type), `BigInt`, `Map`, `Set` and `Error`; it refuses functions and symbols. Class
 * instances come back as plain objects. Newer Node versions read older payloads.
 *
 * Chosen for fidelity over msgpackr (faster on small values, but with the options that keep
 * `Map` it turns `-0` into `0` and silently drops functions instead of refusing them) and JSON
 * (no `Date`/`Map`/`BigInt`/`undefined`): see the measurements in the core README.
 */
export const v8Codec: Codec = {
  name: 'v8',
  encode: (value) => serialize(value),
  decode: (bytes) => deserialize(bytes),
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
    throw new SerializationError(`The ${codec.name} codec cannot encode this value: ${messageOf(error)}`, { cause: error });
  }
}

/** Decodes with `codec`, wrapping any failure in {@link SerializationError}. */
export function decodeWith(codec: Codec, bytes: Uint8Array): unknown {
  try {
    return codec.decode(bytes);
  } catch (error) {
    throw new SerializationError(`The ${codec.name} codec cannot decode the stored bytes: ${messageOf(error)}`, { cause: error });
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
