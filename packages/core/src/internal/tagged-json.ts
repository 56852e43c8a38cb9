import { isUtf8 } from 'node:buffer';
import { SerializationError } from '../errors.js';

/** First byte of a JSON payload: `J`. V8 payloads start with 0xFF, and no JSON text starts with `J`. */
export const JSON_TAG = 0x4a;

/**
 * Containers nested deeper than this take the v8 path. It bounds the recursion of the check
 * (real JSON data is rarely a tenth as deep) and is how the check notices a cycle, with no
 * visited set to pay for on every value: the walk follows the cycle down to this depth and
 * stops there, as it stops at any first failure (so a cycle costs at most this many passes
 * over the entries before it, within the entry budget below).
 */
const MAX_DEPTH = 64;

/**
 * Values with more entries than this (about 10 MB of JSON) take the v8 path. The check walks a
 * sub-object shared by several parents once per parent, as `JSON.stringify` would copy it once
 * per parent, so without a budget a value that shares sub-objects many times over could keep
 * the check (and JSON) busy for exponentially long, where v8 writes each object once.
 */
const MAX_ENTRIES = 1 << 20;

const OBJECT_PROTOTYPE: object = Object.prototype;
const ARRAY_PROTOTYPE: object = Array.prototype;

/** Entries the current check may still visit (module state: the check is synchronous). */
let budget = 0;

/**
 * Whether `JSON.parse(JSON.stringify(value))` gives back what `v8.deserialize(v8.serialize(value))`
 * would: true only for strings, booleans, `null`, finite numbers other than `-0`, and plain
 * objects (prototype `Object.prototype`) and arrays (prototype `Array.prototype`) made of
 * those, with no `toJSON`, no holes, no cycles, at most {@link MAX_DEPTH} levels and
 * {@link MAX_ENTRIES} entries. Anything else (`undefined`, `NaN`, `-0`, `BigInt`, `Date`,
 * `Map`, class instances, functions, symbols…) makes it false, so the caller uses v8, which
 * keeps those or refuses them.
 *
 * Known differences that remain, and are accepted for speed (see the core README): an object
 * reachable twice comes back as two equal copies, not one shared object; an array's own
 * non-index properties (as on a `RegExp` match) are dropped; a getter runs twice (here and
 * in `JSON.stringify`); a `Proxy` of a plain object is stored as the data it shows, where v8
 * refuses proxies.
 */
export function isJsonExact(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return isExactEntry(value, 0);
  budget = MAX_ENTRIES;
  return isExactContainer(value, 0);
}

function isExactEntry(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      // Finite (NaN and ±Infinity fail `x - x === 0`) and not -0 (JSON writes both as `0`).
      return value - value === 0 && (value !== 0 || 1 / value > 0);
    case 'object':
      return value === null || isExactContainer(value, depth + 1);
    default:
      return false;
  }
}

function isExactContainer(container: object, depth: number): boolean {
  // An own or inherited `toJSON` (even a non-enumerable one) makes JSON write something else.
  if (depth === MAX_DEPTH || (container as { toJSON?: unknown }).toJSON !== undefined) return false;
  const prototype: unknown = Object.getPrototypeOf(container);
  if (prototype === OBJECT_PROTOTYPE) {
    // for…in visits every own enumerable string key, the keys JSON.stringify writes (and v8
    // writes); an inherited enumerable key is checked too, which is merely cautious.
    for (const key in container) {
      if (--budget < 0 || !isExactEntry((container as Record<string, unknown>)[key], depth)) return false;
    }
    return true;
  }
  if (prototype === ARRAY_PROTOTYPE && Array.isArray(container)) {
    const length = container.length;
    if ((budget -= length) < 0) return false;
    // A hole reads as undefined and fails, as undefined does (JSON would write `null` for both).
    for (let i = 0; i < length; i++) if (!isExactEntry(container[i], depth)) return false;
    return true;
  }
  return false;
}

/**
 * Texts shorter than this are prefixed by concatenation (cheapest for short strings); longer
 * ones are written behind the tag in place, which spares flattening a long concatenated string.
 */
const CONCAT_LIMIT = 1024;
const JSON_TAG_CHAR = String.fromCharCode(JSON_TAG);

/** The JSON payload of a value for which {@link isJsonExact} holds: the tag, then UTF-8 JSON. */
export function encodeJsonPayload(value: unknown): Uint8Array {
  const text = JSON.stringify(value);
  if (text.length < CONCAT_LIMIT) return Buffer.from(JSON_TAG_CHAR + text, 'utf8');
  const length = Buffer.byteLength(text, 'utf8');
  // Every byte is written below, so nothing uninitialised escapes.
  const bytes = Buffer.allocUnsafe(length + 1);
  bytes[0] = JSON_TAG;
  bytes.write(text, 1, length, 'utf8');
  return bytes;
}

/**
 * Reads a payload written by {@link encodeJsonPayload} that starts at `start` of `bytes` (the
 * caller has seen the tag there): the store reads it in place behind the envelope header.
 *
 * @throws {SerializationError} when the bytes after the tag are not valid UTF-8 or not JSON.
 */
export function decodeJsonPayload(bytes: Uint8Array, start = 0): unknown {
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = buffer.toString('utf8', start + 1);
  // Invalid UTF-8 decodes to U+FFFD, which JSON.parse would accept inside a string. Only when
  // the text holds one (rare; V8 rules it out at once for text without characters above
  // U+00FF) are the bytes validated.
  if (text.includes('\uFFFD') && !isUtf8(buffer.subarray(start + 1))) {
    throw new SerializationError('The JSON payload is not valid UTF-8.');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new SerializationError(`The JSON payload does not parse: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
}
