import type { Socket } from 'node:net';

/**
 * The parts of a memjs 1.3 `Server` this package drives directly. memjs exposes them as
 * plain properties (its own `Client#perform` uses them); `@types/memjs` marks some readonly
 * and omits the socket, so the backend reads them through this narrower view.
 */
export interface MemjsServer {
  readonly host: string;
  readonly port: number;
  /** The current socket; memjs replaces it after a connection dies. */
  _socket?: Socket | undefined;
  /** True once the current socket is connected (and authenticated). */
  connected: boolean;
  /** Bytes of a partly received response. */
  responseBuffer: Buffer;
  /** Per-request deadlines memjs uses for its own response timeout. */
  requestTimeouts: number[];
  readonly responseCallbacks: Record<number, unknown>;
  readonly errorCallbacks: Record<number, unknown>;
  /**
   * Registers the reply callback of request `seq`. memjs drops it after the first reply, or,
   * when `fn.quiet` is true, after the first reply with an empty body (multi-reply answers).
   */
  onResponse(seq: number, fn: ((response: MemjsResponse) => void) & { quiet?: boolean }): void;
  onError(seq: number, fn: (error: unknown) => void): void;
  /** Fails every pending request of this server with `error` and drops its socket. */
  error(error: unknown): void;
  /** Sends one request (connecting, and authenticating with SASL, first when needed). */
  write(blob: Buffer): void;
  close(): void;
}

/** A parsed binary-protocol response, as memjs hands it to response callbacks. */
export interface MemjsResponse {
  readonly header: {
    readonly opcode: number;
    readonly status: number;
    readonly opaque: number;
    readonly cas: Buffer;
    /** Extras + key + value length: 0 ends a multi-reply answer such as `stat`'s. */
    readonly totalBodyLength: number;
  };
  readonly key: Buffer;
  readonly extras: Buffer;
  readonly val: Buffer;
}

/** The parts of a memjs 1.3 `Client` this package uses. */
export interface MemjsClientInternals {
  readonly servers: readonly MemjsServer[];
  seq: number;
  incrSeq(): void;
  close(): void;
}
