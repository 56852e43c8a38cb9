import type { Socket } from 'node:net';
import { ServerFailure } from './errors.js';
import { ValidationError } from '@latchkey/core';
import type { MemjsClientInternals, MemjsResponse, MemjsServer } from './memjs-internals.js';
import { encodeRequest, requests, stampOpaque, Status, statusText, type Reply, type Request } from './protocol.js';
import { localNow, ServerClock, type ClockReading } from './server-clock.js';

const EMPTY = Buffer.alloc(0);

/**
 * Up to this many bytes, a tick's frames are joined into one buffer for one write; above it,
 * copying would cost more than the writev corking gives.
 */
const MAX_JOINED_BYTES = 64 * 1024;

/** The replies of one `send`, filled in as they arrive. */
class PendingSend {
  readonly replies: Reply[];
  #pending: number;
  #settled = false;

  constructor(
    readonly size: number,
    readonly resolve: (replies: Reply[]) => void,
    readonly reject: (error: unknown) => void,
    readonly failure: (error: unknown) => unknown,
  ) {
    this.replies = new Array<Reply>(size);
    this.#pending = size;
  }

  receive(slot: number, reply: Reply): void {
    if (this.#settled) return;
    this.replies[slot] = reply;
    this.#pending -= 1;
    if (this.#pending === 0) {
      this.#settled = true;
      this.resolve(this.replies);
    }
  }

  /** Rejects with the channel's failure for `error` (memjs calls it for every request of a send). */
  readonly fail = (error: unknown): void => {
    if (this.#settled) return;
    this.#settled = true;
    this.reject(this.failure(error));
  };
}

/** The requests of one tick, in order, with the keys to read behind them. */
class SendQueue {
  readonly frames: Buffer[] = [];
  readonly owners: PendingSend[] = [];
  /** The index of each frame's reply among its send's replies. */
  readonly slots: number[] = [];
  readonly readsAfter = new Map<string, PendingSend[]>();

  push(frame: Buffer, owner: PendingSend, slot: number): void {
    this.frames.push(frame);
    this.owners.push(owner);
    this.slots.push(slot);
  }
}

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
  #queue = new SendQueue();
  #flushScheduled = false;

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
   * Sends every request without waiting for any reply and resolves every reply in request
   * order. Rejects with a {@link ServerFailure} when the connection fails.
   *
   * The requests are encoded at once (so the caller may reuse the value buffers when this
   * returns) and sent with every other request of this tick to this server: one socket write
   * per tick instead of one per call. memcached answers a connection's requests in order, and
   * a tick's requests go out in the order they were given.
   *
   * @param readAfter - A key to read behind these requests: its reply comes last. Calls of one
   *   tick that ask for the same key share one read of it, sent behind all of them.
   */
  send(batch: readonly Request[], readAfter?: string): Promise<Reply[]> {
    const frames = new Array<Buffer>(batch.length);
    for (let index = 0; index < batch.length; index++) frames[index] = encodeRequest(batch[index] as Request, 0);
    return this.sendFrames(frames, readAfter);
  }

  /**
   * {@link send} for frames encoded by `encodeRequest`: they belong to the channel from now on
   * (it writes their opaque ids) and must not be changed or sent again.
   */
  sendFrames(frames: readonly Buffer[], readAfter?: string): Promise<Reply[]> {
    const size = frames.length + (readAfter === undefined ? 0 : 1);
    if (size === 0) return Promise.resolve([]);
    return new Promise<Reply[]>((resolve, reject) => {
      const pending = new PendingSend(size, resolve, reject, this.#failure);
      for (let index = 0; index < frames.length; index++) this.#queue.push(frames[index] as Buffer, pending, index);
      if (readAfter !== undefined) {
        const readers = this.#queue.readsAfter.get(readAfter);
        if (readers === undefined) this.#queue.readsAfter.set(readAfter, [pending]);
        else readers.push(pending);
      }
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        // After the microtasks of this tick: the continuations that replies woke up send too.
        process.nextTick(this.#flush);
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

  /** Sends what this tick queued: registers every reply, then writes it all at once. */
  readonly #flush = (): void => {
    this.#flushScheduled = false;
    const queue = this.#queue;
    this.#queue = new SendQueue();
    this.#dropAbandonedSockets();
    const server = this.#server;
    const { frames, owners, slots } = queue;
    for (let index = 0; index < frames.length; index++) {
      const opaque = this.#nextOpaque();
      stampOpaque(frames[index] as Buffer, opaque);
      const owner = owners[index] as PendingSend;
      const slot = slots[index] as number;
      server.onResponse(opaque, (response: MemjsResponse) => owner.receive(slot, toReply(response)));
      server.onError(opaque, owner.fail);
    }
    for (const [key, readers] of queue.readsAfter) {
      const opaque = this.#nextOpaque();
      frames.push(encodeRequest(requests.get(key), opaque));
      server.onResponse(opaque, (response: MemjsResponse) => {
        const reply = toReply(response);
        for (const reader of readers) reader.receive(reader.size - 1, reply);
      });
      server.onError(opaque, (error: unknown) => {
        for (const reader of readers) reader.fail(error);
      });
    }
    try {
      this.#write(frames);
    } catch (error) {
      for (const owner of owners) owner.fail(error);
      for (const readers of queue.readsAfter.values()) for (const reader of readers) reader.fail(error);
    }
  };

  readonly #failure = (error: unknown): ServerFailure => {
    this.#dropAbandonedSockets();
    return new ServerFailure(this.name, this.#responseTimeoutMs, error);
  };

  #write(frames: readonly Buffer[]): void {
    const server = this.#server;
    const before = server._socket;
    let bytes = 0;
    for (const frame of frames) bytes += frame.length;
    if (frames.length > 1 && server.connected && before !== undefined && bytes <= MAX_JOINED_BYTES) {
      // One buffer, one write, one syscall. memjs records a response deadline per write and
      // drops one per answered request, so the other requests get theirs here.
      const deadlines = server.requestTimeouts;
      const recorded = deadlines.length;
      server.write(Buffer.concat(frames, bytes));
      if (server.requestTimeouts === deadlines && deadlines.length === recorded + 1) {
        const deadline = deadlines[recorded] as number;
        for (let index = 1; index < frames.length; index++) deadlines.push(deadline);
      }
    } else {
      // Not connected yet (memjs queues each write until it is) or large: corking still makes
      // one writev of the batch instead of one syscall per request.
      before?.cork();
      try {
        for (const frame of frames) server.write(frame);
      } finally {
        before?.uncork();
      }
    }
    const socket = server._socket;
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
