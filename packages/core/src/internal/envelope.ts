import { SerializationError } from '../errors.js';

// Stored layout: [MAGIC, VERSION, flags, (f64 BE expiresAt if flags & HAS_EXPIRY), payload…].
// The expiry travels with the value so the core can refuse an expired value whatever the
// backend's own expiry resolution (memcached: whole seconds; Mongo's TTL monitor: 60 s).
const MAGIC = 0x6c; // 'l'
const VERSION = 1;
const HAS_EXPIRY = 1;
const HEADER = 3;
const EXPIRY_BYTES = 8;

/** A decoded envelope: the codec payload and its absolute expiry, if any. */
export interface Opened {
  readonly payload: Uint8Array;
  readonly expiresAt: number | undefined;
}

/** Wraps a codec payload with the envelope header. */
export function seal(payload: Uint8Array, expiresAt: number | undefined): Uint8Array {
  const extra = expiresAt === undefined ? 0 : EXPIRY_BYTES;
  // allocUnsafe draws small buffers from Node's shared pool (far less GC than a fresh
  // ArrayBuffer per value); every byte is written below, so nothing uninitialised escapes.
  const out = Buffer.allocUnsafe(HEADER + extra + payload.byteLength);
  out[0] = MAGIC;
  out[1] = VERSION;
  out[2] = expiresAt === undefined ? 0 : HAS_EXPIRY;
  if (expiresAt !== undefined) out.writeDoubleBE(expiresAt, HEADER);
  out.set(payload, HEADER + extra);
  return out;
}

/** Reads the envelope header. @throws {SerializationError} when the bytes are not an envelope. */
export function open(bytes: Uint8Array): Opened {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength < HEADER || bytes[0] !== MAGIC) {
    throw new SerializationError('Stored bytes are not a latchkey value (bad header).');
  }
  if (bytes[1] !== VERSION) {
    throw new SerializationError(`Stored value has envelope version ${String(bytes[1])}; this latchkey reads version ${VERSION}.`);
  }
  const flags = bytes[2] ?? 0;
  if ((flags & HAS_EXPIRY) === 0) return { payload: bytes.subarray(HEADER), expiresAt: undefined };
  if (bytes.byteLength < HEADER + EXPIRY_BYTES) throw new SerializationError('Stored value is truncated.');
  const expiresAt = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getFloat64(HEADER);
  return { payload: bytes.subarray(HEADER + EXPIRY_BYTES), expiresAt };
}
