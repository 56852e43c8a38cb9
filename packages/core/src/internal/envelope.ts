import { SerializationError } from '../errors.js';

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
  const expiryBytes = expiresAt === undefined ? 0 : EXPIRY_BYTES;
  const keyBytes = key === undefined ? 0 : utf8Length(key);
  const keyField = key === undefined ? 0 : KEY_LENGTH_BYTES + keyBytes;
  // allocUnsafe draws small buffers from Node's shared pool (far less GC than a fresh
  // ArrayBuffer per value); every byte is written below, so nothing uninitialised escapes.
  const out = Buffer.allocUnsafe(HEADER + expiryBytes + keyField + payload.byteLength);
  out[0] = MAGIC;
  out[1] = key === undefined ? VERSION_1 : VERSION_2;
  out[2] = expiresAt === undefined ? 0 : HAS_EXPIRY;
  if (expiresAt !== undefined) out.writeDoubleBE(expiresAt, HEADER);
  let at = HEADER + expiryBytes;
  if (key !== undefined) {
    out.writeUInt32BE(keyBytes, at);
    writeKey(out, key, keyBytes, at + KEY_LENGTH_BYTES);
    at += keyField;
  }
  out.set(payload, at);
  return out;
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
