import type { Socket } from 'node:net';
import { ServerFailure } from './errors.js';
import { ValidationError } from '@latchkey/core';
import type { MemjsClientInternals, MemjsResponse, MemjsServer } from './memjs-internals.js';
import { encodeRequest, requests, Status, statusText, type Reply, type Request } from './protocol.js';
import { localNow, ServerClock, type ClockReading } from './server-clock.js';

const EMPTY = Buffer.alloc(0);

/**
 * One memcached server, reached through memjs's raw request path (`Server#onResponse`,
 * `Server#onError`, `Server#write`) with opaque ids from the client's own sequence, so requests
 * can be pipelined and never collide with other users of a shared client.
 *
 * It also repairs three memjs 1.3 failure modes that would otherwise leave a request pending
 * forever or break the connection after a server restart:
 * - a socket that closes without an error (the server went away) leaves memjs's callbacks
 *   pending: they are failed at once;
 * - a socket memjs gave up on keeps delivering late bytes into the shared response buffer:
 *   it is destroyed, and the buffer starts empty on every new connection;
 * - the `close` of a socket memjs already replaced clears memjs's reference to the new one:
 *   the reference is restored.
 */
export class ServerChannel {
  /** `host:port`, as used on the hash ring and in error messages. */
  readonly name: string;
  /** The server's clock as measured from this channel (lease expiries are absolute once it is known). */
  readonly clock: ServerClock;
  readonly #server: MemjsServer;
  readonly #nextOpaque: () => number;
  readonly #responseTimeoutMs: number;
  readonly #sockets = new Set<Socket>();

  /**
   * @param nextOpaque - Gives a fresh opaque id (from the client's sequence).
   * @param responseTimeoutMs - memjs's own response timeout for this server, for messages.
   */
  constructor(server: MemjsServer, nextOpaque: () => number, responseTimeoutMs: number) {
    this.#server = server;
    this.#nextOpaque = nextOpaque;
    this.#responseTimeoutMs = responseTimeoutMs;
    this.name = `${server.host}:${server.port}`;
    this.clock = new ServerClock(() => this.readClock());
  }

  /**
   * Sends every request without waiting for any reply (one pipelined batch on one
   * connection; memcached answers a connection's requests in order) and resolves every reply
   * in request order. Rejects with a {@link ServerFailure} when the connection fails.
   */
  send(batch: readonly Request[]): Promise<Reply[]> {
    if (batch.length === 0) return Promise.resolve([]);
    this.#dropAbandonedSockets();
    return new Promise<Reply[]>((resolve, reject) => {
      const replies: Reply[] = new Array<Reply>(batch.length);
      let pending = batch.length;
      let settled = false;
      const fail = (error: unknown): void => {
        if (settled) return;
        settled = true;
        this.#dropAbandonedSockets();
        reject(new ServerFailure(this.name, this.#responseTimeoutMs, error));
      };
      const frames: Buffer[] = [];
      batch.forEach((request, index) => {
        const opaque = this.#nextOpaque();
        frames.push(encodeRequest(request, opaque));
        this.#server.onResponse(opaque, (response: MemjsResponse) => {
          if (settled) return;
          replies[index] = toReply(response);
          pending -= 1;
          if (pending === 0) {
            settled = true;
            resolve(replies);
          }
        });
        this.#server.onError(opaque, fail);
      });
      try {
        this.#write(frames);
      } catch (error) {
        fail(error);
      }
    });
  }

  /**
   * One `stats` round trip, reduced to the server's clock (`time`) and identity (`pid`, start
   * time). Rejects with a {@link ServerFailure} when the connection fails.
   */
  readClock(): Promise<ClockReading> {
    this.#dropAbandonedSockets();
    return new Promise<ClockReading>((resolve, reject) => {
      const stats = new Map<string, string>();
      let settled = false;
      const fail = (error: unknown): void => {
        if (settled) return;
        settled = true;
        reject(new ServerFailure(this.name, this.#responseTimeoutMs, error));
      };
      const opaque = this.#nextOpaque();
      // One reply per statistic, then an empty one: memjs keeps a quiet callback until then.
      const onReply = Object.assign(
        (response: MemjsResponse): void => {
          if (settled) return;
          if (response.header.status !== Status.ok) return fail(new Error(`stats answered ${statusText(response.header.status)}`));
          if (response.header.totalBodyLength > 0) {
            stats.set(response.key.toString('latin1'), response.val.toString('latin1'));
            return;
          }
          settled = true;
          const reading = clockReading(stats, sentAt, localNow());
          if (typeof reading === 'string') reject(new ServerFailure(this.name, this.#responseTimeoutMs, new Error(reading)));
          else resolve(reading);
        },
        { quiet: true },
      );
      this.#server.onResponse(opaque, onReply);
      this.#server.onError(opaque, fail);
      const sentAt = localNow();
      try {
        this.#write([encodeRequest(requests.stats(), opaque)]);
      } catch (error) {
        fail(error);
      }
    });
  }

  /** Destroys every socket this channel saw (for a backend that owns its client). */
  async destroySockets(): Promise<void> {
    const closing = [...this.#sockets].map(
      (socket) =>
        new Promise<void>((resolve) => {
          if (socket.closed) resolve();
          else socket.once('close', () => resolve());
          socket.destroy();
        }),
    );
    await Promise.all(closing);
  }

  #write(frames: readonly Buffer[]): void {
    const before = this.#server._socket;
    // Corking turns a batch into one writev instead of one syscall per request.
    before?.cork();
    try {
      for (const frame of frames) this.#server.write(frame);
    } finally {
      before?.uncork();
    }
    const socket = this.#server._socket;
    if (socket !== undefined && !this.#sockets.has(socket)) this.#track(socket);
  }

  #track(socket: Socket): void {
    // A brand-new connection has received nothing yet: whatever the buffer holds is a partial
    // reply from a dead connection that would corrupt every reply on this one.
    if (socket.connecting) this.#server.responseBuffer = EMPTY;
    // A new connection may reach a restarted server, whose clock is another one.
    this.clock.forget();
    this.#sockets.add(socket);
    let before: { readonly socket: Socket | undefined; readonly connected: boolean } | undefined;
    // Runs before memjs's own close handler, which clears memjs's socket reference (and its
    // connected flag) even when that reference is already a newer socket.
    socket.prependOnceListener('close', () => {
      before = { socket: this.#server._socket, connected: this.#server.connected };
    });
    socket.once('close', () => this.#closed(socket, before?.socket, before?.connected ?? false));
  }

  #closed(socket: Socket, before: Socket | undefined, connected: boolean): void {
    this.#sockets.delete(socket);
    if (this.#server._socket !== undefined) return;
    if (before !== undefined && before !== socket) {
      // An old socket closed and memjs dropped its newer one: give it back as it was.
      this.#server._socket = before;
      this.#server.connected = connected;
      return;
    }
    if (before !== socket) return;
    this.#server.responseBuffer = EMPTY;
    // The current connection is gone: requests still waiting on it can never be answered.
    this.#server.error(new ConnectionClosedError(this.name));
  }

  #dropAbandonedSockets(): void {
    for (const socket of this.#sockets) {
      if (socket !== this.#server._socket && !socket.destroyed) socket.destroy();
    }
  }
}

/**
 * One channel per server of `client`, with opaque ids from the client's own sequence.
 * @param defaultTimeoutMs - memjs's response timeout of a server that does not say its own.
 * @throws {ValidationError} when the client lists a server twice.
 */
export function openChannels(client: MemjsClientInternals, defaultTimeoutMs: number): ServerChannel[] {
  const nextOpaque = (): number => {
    client.incrSeq();
    // memjs wraps its sequence into a signed 32-bit number; the protocol's opaque is unsigned.
    return client.seq >>> 0;
  };
  const channels = client.servers.map((server) => {
    const timeout = (server as { options?: { timeout?: unknown } }).options?.timeout;
    return new ServerChannel(server, nextOpaque, typeof timeout === 'number' ? timeout * 1000 : defaultTimeoutMs);
  });
  if (new Set(channels.map((channel) => channel.name)).size !== channels.length) {
    throw new ValidationError('MemcachedBackend: the client lists a server twice.');
  }
  return channels;
}

/** The connection to a server closed while requests were waiting for replies. */
export class ConnectionClosedError extends Error {
  constructor(server: string) {
    super(`connection to ${server} closed`);
    this.name = 'ConnectionClosedError';
  }
}

/** The clock reading in a `stats` answer, or what is missing from it. */
function clockReading(stats: ReadonlyMap<string, string>, sentAt: number, receivedAt: number): ClockReading | string {
  const [time, uptime, pid] = ['time', 'uptime', 'pid'].map((name) => Number(stats.get(name)));
  if (!Number.isSafeInteger(time) || !Number.isSafeInteger(uptime)) return 'stats without a time and uptime';
  return { serverTime: time as number, instance: `${String(pid)}@${(time as number) - (uptime as number)}`, sentAt, receivedAt };
}

function toReply(response: MemjsResponse): Reply {
  const { header, extras, val } = response;
  return {
    status: header.status,
    cas: header.cas.length === 8 ? header.cas.readBigUInt64BE(0) : 0n,
    flags: extras.length >= 4 ? extras.readUInt32BE(0) : 0,
    value: val,
  };
}
