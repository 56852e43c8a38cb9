/** Binary-protocol opcodes the backend sends. */
export const Opcode = {
  get: 0x00,
  set: 0x01,
  add: 0x02,
  delete: 0x04,
  increment: 0x05,
  append: 0x0e,
  stat: 0x10,
} as const;

/** Binary-protocol response statuses the backend tells apart. */
export const Status = {
  ok: 0x0000,
  notFound: 0x0001,
  exists: 0x0002,
  tooLarge: 0x0003,
  notStored: 0x0005,
  nonNumeric: 0x0006,
} as const;

const STATUS_TEXT: Readonly<Record<number, string>> = {
  0x0001: 'key not found',
  0x0002: 'key exists',
  0x0003: 'value too large',
  0x0004: 'invalid arguments',
  0x0005: 'item not stored',
  0x0006: 'incr/decr on a non-numeric value',
  0x0008: 'authentication error',
  0x0081: 'unknown command',
  0x0082: 'out of memory',
  0x0083: 'not supported',
  0x0084: 'internal error',
  0x0085: 'busy',
  0x0086: 'temporary failure',
};

/** A human-readable name of a response status. */
export function statusText(status: number): string {
  return STATUS_TEXT[status] ?? `status 0x${status.toString(16).padStart(4, '0')}`;
}

/**
 * Item flags. memcached stores 32 opaque flag bits per item and returns them with every get;
 * the backend uses them to tell its own items apart from user values without touching the
 * value bytes.
 */
export const ItemFlags = {
  /** A user value. */
  value: 0,
  /** A lock item (value: the owner token). */
  lock: 0x4c4b0001,
  /**
   * An empty item added by `acquireLock` when the data key was missing, so that the lease
   * has a CAS value to fence; reads treat it as missing.
   */
  placeholder: 0x4c4b0002,
} as const;

/** One request to send. */
export interface Request {
  readonly opcode: number;
  /** The stored key (ASCII; validated by the key scheme). */
  readonly key: string;
  /** Extras other than a storage command's (see {@link Request.storage}). */
  readonly extras?: Buffer;
  /** The item flags and expiry of a set/add, written as its extras. */
  readonly storage?: { readonly flags: number; readonly exptime: number };
  readonly value?: Uint8Array;
  /** Compare-and-swap value: the request applies only if the item's CAS still equals it. */
  readonly cas?: bigint | undefined;
}

/** One response, reduced to what the backend reads. */
export interface Reply {
  readonly status: number;
  readonly cas: bigint;
  /** The item flags (gets only; 0 otherwise). */
  readonly flags: number;
  /** The response body: the value of a get, the counter of an increment, an error text. */
  readonly value: Buffer;
}

/** Size of a binary-protocol header. */
export const HEADER_BYTES = 24;
/** Offset of the opaque in a header. */
const OPAQUE_OFFSET = 12;
const REQUEST_MAGIC = 0x80;
const STORAGE_EXTRAS_BYTES = 8;

/**
 * Encodes `request` as one binary-protocol frame in a single allocation: header, extras, key
 * and value written in place (no intermediate buffers), with `opaque` and the CAS in the header.
 * The frame holds its own copy of the value, so the caller may reuse the value's buffer at once.
 */
export function encodeRequest(request: Request, opaque: number): Buffer {
  const { key, extras, storage, value, cas } = request;
  const extrasLength = storage === undefined ? (extras?.length ?? 0) : STORAGE_EXTRAS_BYTES;
  const bodyLength = extrasLength + key.length + (value?.byteLength ?? 0);
  // Every byte is written below, so the allocation need not be zeroed.
  const frame = Buffer.allocUnsafe(HEADER_BYTES + bodyLength);
  frame[0] = REQUEST_MAGIC;
  frame[1] = request.opcode;
  frame.writeUInt16BE(key.length, 2);
  frame[4] = extrasLength;
  // Data type (0) and vbucket id (0).
  frame.writeUInt8(0, 5);
  frame.writeUInt16BE(0, 6);
  frame.writeUInt32BE(bodyLength, 8);
  frame.writeUInt32BE(opaque, OPAQUE_OFFSET);
  frame.writeBigUInt64BE(cas ?? 0n, 16);
  let offset = HEADER_BYTES;
  if (storage !== undefined) {
    frame.writeUInt32BE(storage.flags, offset);
    frame.writeUInt32BE(storage.exptime, offset + 4);
  } else if (extras !== undefined) extras.copy(frame, offset);
  offset += extrasLength;
  // Stored keys are printable ASCII (checked by the key scheme): one byte per character.
  offset += frame.write(key, offset, 'latin1');
  if (value !== undefined) frame.set(value, offset);
  return frame;
}

/** Writes `opaque` into `frame`'s header. */
export function stampOpaque(frame: Buffer, opaque: number): void {
  frame.writeUInt32BE(opaque, OPAQUE_OFFSET);
}

/**
 * A copy of `frame` whose item flags are `flags` when it is a set or add (which carry them in
 * their extras); a plain copy of any other frame.
 */
export function withItemFlags(frame: Buffer, flags: number): Buffer {
  const copy = Buffer.from(frame);
  const opcode = copy[1];
  if ((opcode === Opcode.set || opcode === Opcode.add) && copy[4] === STORAGE_EXTRAS_BYTES) copy.writeUInt32BE(flags, HEADER_BYTES);
  return copy;
}

/**
 * Extras of increment: amount, the initial value when the item is missing (64-bit, which
 * memjs's own helper cannot write), and the expiry of a created item.
 */
export function incrementExtras(amount: bigint, initial: bigint, exptime: number): Buffer {
  const extras = Buffer.alloc(20);
  extras.writeBigUInt64BE(amount, 0);
  extras.writeBigUInt64BE(initial, 8);
  extras.writeUInt32BE(exptime, 16);
  return extras;
}

/** Builders for the requests the backend sends. */
export const requests = {
  get: (key: string): Request => ({ opcode: Opcode.get, key }),
  set: (key: string, value: Uint8Array, flags: number, exptime: number, cas?: bigint): Request => ({
    opcode: Opcode.set,
    key,
    value,
    storage: { flags, exptime },
    cas,
  }),
  add: (key: string, value: Uint8Array, flags: number, exptime: number): Request => ({
    opcode: Opcode.add,
    key,
    value,
    storage: { flags, exptime },
  }),
  delete: (key: string, cas?: bigint): Request => ({ opcode: Opcode.delete, key, cas }),
  /** Appending nothing changes no byte of the item but gives it a new CAS value. */
  touchCas: (key: string): Request => ({ opcode: Opcode.append, key }),
  increment: (key: string, initial: bigint): Request => ({ opcode: Opcode.increment, key, extras: incrementExtras(1n, initial, 0) }),
  /** The general statistics: one reply per statistic, then an empty one (see `ServerChannel#readClock`). */
  stats: (): Request => ({ opcode: Opcode.stat, key: '' }),
};
