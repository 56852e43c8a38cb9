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
  const keyBytes = key === undefined ? 0 : Buffer.byteLength(key, 'utf8');
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
    out.write(key, at + KEY_LENGTH_BYTES, keyBytes, 'utf8');
    at += keyField;
  }
  out.set(payload, at);
  return out;
}

/** Reads the envelope header. @throws {SerializationError} when the bytes are not an envelope. */
export function open(bytes: Uint8Array): Opened {
  const { expiresAt, payloadAt } = layout(bytes);
  return { payload: bytes.subarray(payloadAt), expiresAt };
}

/**
 * The user key a version-2 envelope carries; `undefined` for version 1 (whose stored key is
 * the user key, or which an earlier release wrote without it).
 * @throws {SerializationError} when the bytes are not an envelope.
 */
export function carriedKey(bytes: Uint8Array): string | undefined {
  const { keyAt, payloadAt } = layout(bytes);
  if (keyAt === undefined) return undefined;
  return Buffer.from(bytes.buffer, bytes.byteOffset + keyAt, payloadAt - keyAt).toString('utf8');
}

/**
 * The same value with a new expiry: the payload and any carried key unchanged. For `touch`.
 * @throws {SerializationError} when the bytes are not an envelope.
 */
export function reseal(bytes: Uint8Array, expiresAt: number | undefined): Uint8Array {
  const key = carriedKey(bytes);
  return seal(open(bytes).payload, expiresAt, key);
}

interface Layout {
  readonly expiresAt: number | undefined;
  /** Where the carried key's UTF-8 starts (version 2 only). */
  readonly keyAt: number | undefined;
  readonly payloadAt: number;
}

function layout(bytes: Uint8Array): Layout {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength < HEADER || bytes[0] !== MAGIC) {
    throw new SerializationError('Stored bytes are not a latchkey value (bad header).');
  }
  const version = bytes[1];
  if (version !== VERSION_1 && version !== VERSION_2) {
    throw new SerializationError(
      `Stored value has envelope version ${String(version)}; this latchkey reads versions ${VERSION_1} and ${VERSION_2}.`,
    );
  }
  const flags = bytes[2] ?? 0;
  let at = HEADER;
  let expiresAt: number | undefined;
  if ((flags & HAS_EXPIRY) !== 0) {
    if (bytes.byteLength < HEADER + EXPIRY_BYTES) throw new SerializationError('Stored value is truncated.');
    expiresAt = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getFloat64(HEADER);
    at += EXPIRY_BYTES;
  }
  if (version === VERSION_1) return { expiresAt, keyAt: undefined, payloadAt: at };
  if (bytes.byteLength < at + KEY_LENGTH_BYTES) throw new SerializationError('Stored value is truncated.');
  const keyBytes = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(at);
  const keyAt = at + KEY_LENGTH_BYTES;
  if (bytes.byteLength < keyAt + keyBytes) throw new SerializationError('Stored value is truncated.');
  return { expiresAt, keyAt, payloadAt: keyAt + keyBytes };
}
