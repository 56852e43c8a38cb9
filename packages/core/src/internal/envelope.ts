import { SerializationError } from '../errors.js';
import { JSON_TAG } from './tagged-json.js';

// Stored layout:
//   version 1: [MAGIC, 1, flags, (f64 BE expiresAt if flags & HAS_EXPIRY), payload…]
//   version 2: [MAGIC, 2, flags, (f64 BE expiresAt if flags & HAS_EXPIRY), u32 BE keyBytes, key (UTF-8), payload…]
// The expiry travels with the value so the core can refuse an expired value whatever the
// backend's own expiry resolution (memcached: whole seconds; Mongo's TTL monitor: 60 s).
// Version 2 also carries the user key, written only when the stored key differs from it (a
// hashing mangler), so that `keys()` can name the value. A value whose stored key is its user
// key is still written as version 1, byte for byte what earlier releases wrote and read; a
// release that reads only version 1 refuses version 2 with SerializationError instead of
// decoding the key as part of the payload.
const MAGIC = 0x6c; // 'l'
const VERSION_1 = 1;
const VERSION_2 = 2;
const HAS_EXPIRY = 1;
const HEADER = 3;
const EXPIRY_BYTES = 8;
const KEY_LENGTH_BYTES = 4;

/** A decoded envelope: the codec payload and its absolute expiry, if any. */
export interface Opened {
  readonly payload: Uint8Array;
  readonly expiresAt: number | undefined;
}

/**
 * Wraps a codec payload with the envelope header; with `key`, as version 2 carrying it.
 * Pass `key` only when the stored key is not the user key.
 */
export function seal(payload: Uint8Array, expiresAt: number | undefined, key?: string): Uint8Array {
  const keyBytes = key === undefined ? 0 : utf8Length(key);
  // allocUnsafe draws small buffers from Node's shared pool (far less GC than a fresh
  // ArrayBuffer per value); every byte is written below, so nothing uninitialised escapes.
  const out = Buffer.allocUnsafe(headerLength(expiresAt, key, keyBytes) + payload.byteLength);
  out.set(payload, writeHeader(out, expiresAt, key, keyBytes));
  return out;
}

/**
 * {@link seal} of the tagged-JSON payload of `text` (the tag `J`, then `text` as UTF-8), made
 * in one step: the same bytes as `seal(encodeJsonPayload(value), expiresAt, key)`, without the
 * payload's own buffer and its copy. `text` is `JSON.stringify` of a value `isJsonExact` passed.
 */
export function sealJsonText(text: string, expiresAt: number | undefined, key?: string): Uint8Array {
  const keyBytes = key === undefined ? 0 : utf8Length(key);
  const at = headerLength(expiresAt, key, keyBytes);
  if (text.length < CONCAT_LIMIT) {
    // One string, one UTF-8 write: the header's fixed bytes are ASCII, the binary fields are
    // placeholders overwritten below, and the key is UTF-8 like the text (as writeKey writes it).
    const prefix =
      expiresAt === undefined ? (key === undefined ? PREFIX_1 : PREFIX_2) : key === undefined ? PREFIX_1_EXPIRY : PREFIX_2_EXPIRY;
    const out = Buffer.from(key === undefined ? prefix + JSON_TAG_CHAR + text : prefix + key + JSON_TAG_CHAR + text, 'utf8');
    if (expiresAt !== undefined) out.writeDoubleBE(expiresAt, HEADER);
    if (key !== undefined) out.writeUInt32BE(keyBytes, at - keyBytes - KEY_LENGTH_BYTES);
    return out;
  }
  const textBytes = Buffer.byteLength(text, 'utf8');
  // Every byte is written below, so nothing uninitialised escapes.
  const out = Buffer.allocUnsafe(at + 1 + textBytes);
  writeHeader(out, expiresAt, key, keyBytes);
  out[at] = JSON_TAG;
  out.write(text, at + 1, textBytes, 'utf8');
  return out;
}

/** Texts shorter than this are sealed by concatenation (cheapest for short strings); longer ones are written in place, sparing a flattened copy. */
const CONCAT_LIMIT = 1024;
const JSON_TAG_CHAR = String.fromCharCode(JSON_TAG);
const EXPIRY_PLACEHOLDER = '\0'.repeat(EXPIRY_BYTES);
const KEY_LENGTH_PLACEHOLDER = '\0'.repeat(KEY_LENGTH_BYTES);
const PREFIX_1 = String.fromCharCode(MAGIC, VERSION_1, 0);
const PREFIX_1_EXPIRY = String.fromCharCode(MAGIC, VERSION_1, HAS_EXPIRY) + EXPIRY_PLACEHOLDER;
const PREFIX_2 = String.fromCharCode(MAGIC, VERSION_2, 0) + KEY_LENGTH_PLACEHOLDER;
const PREFIX_2_EXPIRY = String.fromCharCode(MAGIC, VERSION_2, HAS_EXPIRY) + EXPIRY_PLACEHOLDER + KEY_LENGTH_PLACEHOLDER;

/** Bytes before the payload: the header, the expiry if any, the carried key's length and bytes if any. */
function headerLength(expiresAt: number | undefined, key: string | undefined, keyBytes: number): number {
  return HEADER + (expiresAt === undefined ? 0 : EXPIRY_BYTES) + (key === undefined ? 0 : KEY_LENGTH_BYTES + keyBytes);
}

/** Writes everything before the payload into `out`; returns where the payload starts. */
function writeHeader(out: Buffer, expiresAt: number | undefined, key: string | undefined, keyBytes: number): number {
  out[0] = MAGIC;
  out[1] = key === undefined ? VERSION_1 : VERSION_2;
  out[2] = expiresAt === undefined ? 0 : HAS_EXPIRY;
  let at = HEADER;
  if (expiresAt !== undefined) {
    out.writeDoubleBE(expiresAt, HEADER);
    at += EXPIRY_BYTES;
  }
  if (key !== undefined) {
    out.writeUInt32BE(keyBytes, at);
    writeKey(out, key, keyBytes, at + KEY_LENGTH_BYTES);
    at += KEY_LENGTH_BYTES + keyBytes;
  }
  return at;
}

// Keys are short and mostly ASCII: a JS loop beats a call into the UTF-8 encoder for them.
const SHORT_KEY = 64;

function utf8Length(key: string): number {
  if (key.length <= SHORT_KEY) {
    let ascii = true;
    for (let i = 0; i < key.length && ascii; i++) ascii = key.charCodeAt(i) < 0x80;
    if (ascii) return key.length;
  }
  return Buffer.byteLength(key, 'utf8');
}

function writeKey(out: Buffer, key: string, keyBytes: number, at: number): void {
  if (keyBytes === key.length && key.length <= SHORT_KEY) {
    for (let i = 0; i < key.length; i++) out[at + i] = key.charCodeAt(i);
  } else {
    out.write(key, at, keyBytes, 'utf8');
  }
}

/** Reads the envelope header. @throws {SerializationError} when the bytes are not an envelope. */
export function open(bytes: Uint8Array): Opened {
  const expiresAt = expiryOf(bytes);
  return { payload: bytes.subarray(payloadStart(bytes, expiresAt === undefined ? HEADER : HEADER + EXPIRY_BYTES)), expiresAt };
}

/**
 * The user key a version-2 envelope carries; `undefined` for version 1 (whose stored key is
 * the user key, or which an earlier release wrote without it).
 * @throws {SerializationError} when the bytes are not an envelope.
 */
export function carriedKey(bytes: Uint8Array): string | undefined {
  const keyLengthAt = expiryOf(bytes) === undefined ? HEADER : HEADER + EXPIRY_BYTES;
  if (bytes[1] === VERSION_1) return undefined;
  const payloadAt = payloadStart(bytes, keyLengthAt);
  const keyAt = keyLengthAt + KEY_LENGTH_BYTES;
  return Buffer.from(bytes.buffer, bytes.byteOffset + keyAt, payloadAt - keyAt).toString('utf8');
}

/**
 * The same value with a new expiry: the payload and any carried key unchanged. For `touch`.
 * @throws {SerializationError} when the bytes are not an envelope.
 */
export function reseal(bytes: Uint8Array, expiresAt: number | undefined): Uint8Array {
  return seal(open(bytes).payload, expiresAt, carriedKey(bytes));
}

/**
 * Where the payload of `bytes` starts, whose expiry {@link expiryOf} read: {@link open} without
 * the object and the subarray, for the read path, which decodes in place.
 * @throws {SerializationError} when a version-2 envelope is truncated.
 */
export function payloadOffset(bytes: Uint8Array, expiresAt: number | undefined): number {
  return payloadStart(bytes, expiresAt === undefined ? HEADER : HEADER + EXPIRY_BYTES);
}

/**
 * Checks the header and reads the expiry. The hot path of every read: no allocation but the DataView of an expiry.
 * @throws {SerializationError} when the bytes are not an envelope.
 */
export function expiryOf(bytes: Uint8Array): number | undefined {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength < HEADER || bytes[0] !== MAGIC) {
    throw new SerializationError('Stored bytes are not a latchkey value (bad header).');
  }
  const version = bytes[1];
  if (version !== VERSION_1 && version !== VERSION_2) {
    throw new SerializationError(
      `Stored value has envelope version ${String(version)}; this latchkey reads versions ${VERSION_1} and ${VERSION_2}.`,
    );
  }
  if (((bytes[2] ?? 0) & HAS_EXPIRY) === 0) return undefined;
  if (bytes.byteLength < HEADER + EXPIRY_BYTES) throw new SerializationError('Stored value is truncated.');
  return new DataView(bytes.buffer, bytes.byteOffset, HEADER + EXPIRY_BYTES).getFloat64(HEADER);
}

/** Where the payload starts: at `at` for version 1; after the carried key (whose length is at `at`) for version 2. */
function payloadStart(bytes: Uint8Array, at: number): number {
  if (bytes[1] === VERSION_1) return at;
  if (bytes.byteLength < at + KEY_LENGTH_BYTES) throw new SerializationError('Stored value is truncated.');
  // Read by hand: a DataView per read would be an allocation on every get.
  const keyBytes =
    (((bytes[at] as number) << 24) | ((bytes[at + 1] as number) << 16) | ((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number)) >>>
    0;
  const payloadAt = at + KEY_LENGTH_BYTES + keyBytes;
  if (bytes.byteLength < payloadAt) throw new SerializationError('Stored value is truncated.');
  return payloadAt;
}
