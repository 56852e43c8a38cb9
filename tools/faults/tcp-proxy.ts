/**
 * A small TCP proxy for network-fault tests: it listens on a loopback port and forwards to a
 * loopback server, and can add latency, reset every connection, or black-hole traffic.
 *
 * The black hole stalls both directions and keeps what it holds: when the network "heals"
 * (back to `pass`), the held bytes are delivered in order, as TCP retransmission would. Bytes
 * are never silently dropped mid-stream, because real TCP never does that either — a stream
 * either arrives in order or the connection dies (use `reset` for that).
 *
 * Independently of the mode, the client → server direction alone can be held
 * ({@link TcpProxy.holdToServer}): what clients send queues until
 * {@link TcpProxy.releaseToServer} while the server's replies keep flowing — a request held
 * up in the network after its sender had every reason to send it.
 *
 * @module
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

/** What the proxy does with traffic. */
export type ProxyMode =
  /** Forward at once. */
  | { readonly kind: 'pass' }
  /** Forward each chunk `ms` after it arrived, in order. */
  | { readonly kind: 'latency'; readonly ms: number }
  /** Reset (RST) every open connection now, and every new one as it arrives. */
  | { readonly kind: 'reset' }
  /** Accept connections but deliver nothing, in either direction, until the mode changes. */
  | { readonly kind: 'blackhole' };

/** Traffic counters. */
export interface ProxyStats {
  readonly connections: number;
  readonly resets: number;
  readonly bytesToServer: number;
  readonly bytesToClient: number;
}

const LOOPBACK = '127.0.0.1';

interface Chunk {
  readonly data: Buffer;
  readonly arrivedAt: number;
}

/** One direction of one connection: an ordered queue released according to the mode. */
class Lane {
  readonly #queue: Chunk[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly proxy: TcpProxy,
    private readonly to: Socket,
    private readonly count: (bytes: number) => void,
    /** Whether this lane is held regardless of the mode (client → server holds). */
    private readonly held: () => boolean = () => false,
    /** Called after each chunk this lane delivered. */
    private readonly forwarded: () => void = () => undefined,
  ) {}

  push(data: Buffer): void {
    this.#queue.push({ data, arrivedAt: performance.now() });
    this.pump();
  }

  pump(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const mode = this.proxy.mode;
    if (mode.kind === 'blackhole' || mode.kind === 'reset' || this.to.destroyed) return;
    if (this.held()) return;
    const delay = mode.kind === 'latency' ? mode.ms : 0;
    const now = performance.now();
    while (this.#queue.length > 0) {
      const head = this.#queue[0] as Chunk;
      const due = head.arrivedAt + delay;
      if (due > now) {
        this.#timer = setTimeout(() => this.pump(), Math.ceil(due - now));
        return;
      }
      this.#queue.shift();
      this.count(head.data.byteLength);
      this.to.write(head.data);
      this.forwarded();
    }
  }

  clear(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queue.length = 0;
  }
}

interface Connection {
  readonly client: Socket;
  readonly server: Socket;
  readonly up: Lane;
  readonly down: Lane;
}

/**
 * A loopback TCP proxy with switchable faults.
 *
 * @example
 * const proxy = await TcpProxy.start(6379)
 * // point the client at proxy.port
 * proxy.setMode({ kind: 'blackhole' })
 * proxy.setMode({ kind: 'pass' })
 * await proxy.close()
 */
export class TcpProxy {
  readonly #server: Server;
  readonly #targetPort: number;
  readonly #connections = new Set<Connection>();
  #mode: ProxyMode = { kind: 'pass' };
  /** 'off', 'held', or 'after-reply' (held from the next server → client chunk on). */
  #toServerHold: 'off' | 'held' | 'after-reply' = 'off';
  #stats = { connections: 0, resets: 0, bytesToServer: 0, bytesToClient: 0 };

  private constructor(server: Server, targetPort: number) {
    this.#server = server;
    this.#targetPort = targetPort;
  }

  /**
   * Starts a proxy on a free loopback port forwarding to `127.0.0.1:targetPort`.
   * @throws {Error} when the port cannot be bound.
   */
  static async start(targetPort: number): Promise<TcpProxy> {
    const server = createServer();
    const proxy = new TcpProxy(server, targetPort);
    server.on('connection', (client) => proxy.#accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, LOOPBACK, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return proxy;
  }

  /** The loopback port clients connect to. */
  get port(): number {
    const address = this.#server.address();
    if (address === null || typeof address === 'string') throw new Error('TcpProxy is not listening');
    return address.port;
  }

  /** Always `127.0.0.1`. */
  get host(): string {
    return LOOPBACK;
  }

  /** The current mode. */
  get mode(): ProxyMode {
    return this.#mode;
  }

  /** Traffic so far. */
  get stats(): ProxyStats {
    return { ...this.#stats };
  }

  /** Open connections. */
  get openConnections(): number {
    return this.#connections.size;
  }

  /** Switches mode; takes effect at once on every open connection. */
  setMode(mode: ProxyMode): void {
    if (mode.kind === 'latency' && !(Number.isFinite(mode.ms) && mode.ms >= 0))
      throw new RangeError(`latency must be a non-negative number of ms, got ${mode.ms}`);
    this.#mode = mode;
    if (mode.kind === 'reset') {
      for (const connection of [...this.#connections]) this.#reset(connection);
      return;
    }
    for (const connection of this.#connections) {
      connection.up.pump();
      connection.down.pump();
    }
  }

  /** Whether client → server bytes are being held (see {@link holdToServer}). */
  get holdingToServer(): boolean {
    return this.#toServerHold === 'held';
  }

  /**
   * Holds everything clients send (on every connection, open or new) until
   * {@link releaseToServer}; the server's replies still flow. Works in any mode.
   */
  holdToServer(): void {
    this.#toServerHold = 'held';
  }

  /**
   * Like {@link holdToServer}, starting once the proxy has forwarded the next chunk from the
   * server (on any connection): a request already on its way goes through and gets its reply,
   * and what the client sends in answer to that reply is held (the second step of a two-step
   * write).
   */
  holdToServerAfterNextReply(): void {
    this.#toServerHold = 'after-reply';
  }

  /** Delivers the held client → server bytes, in order, and stops holding. */
  releaseToServer(): void {
    this.#toServerHold = 'off';
    for (const connection of this.#connections) connection.up.pump();
  }

  /** Stops listening and resets every connection. */
  async close(): Promise<void> {
    for (const connection of [...this.#connections]) this.#reset(connection);
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    this.#stats.connections += 1;
    client.setNoDelay(true);
    if (this.#mode.kind === 'reset') {
      this.#stats.resets += 1;
      client.on('error', () => undefined);
      client.resetAndDestroy();
      return;
    }
    const server = connect({ host: LOOPBACK, port: this.#targetPort });
    server.setNoDelay(true);
    const connection: Connection = {
      client,
      server,
      up: new Lane(
        this,
        server,
        (n) => (this.#stats.bytesToServer += n),
        () => this.holdingToServer,
      ),
      down: new Lane(
        this,
        client,
        (n) => (this.#stats.bytesToClient += n),
        () => false,
        () => {
          if (this.#toServerHold === 'after-reply') this.#toServerHold = 'held';
        },
      ),
    };
    this.#connections.add(connection);
    // Until the server side is connected, writes to it are buffered by the socket itself.
    client.on('data', (data: Buffer) => connection.up.push(data));
    server.on('data', (data: Buffer) => connection.down.push(data));
    const end = (reset: boolean): void => {
      if (!this.#connections.delete(connection)) return;
      connection.up.clear();
      connection.down.clear();
      if (reset) {
        client.resetAndDestroy();
        server.resetAndDestroy();
      } else {
        client.destroy();
        server.destroy();
      }
    };
    client.on('error', () => end(true));
    server.on('error', () => end(true));
    client.on('close', () => end(false));
    server.on('close', () => end(false));
  }

  #reset(connection: Connection): void {
    if (!this.#connections.delete(connection)) return;
    this.#stats.resets += 1;
    connection.up.clear();
    connection.down.clear();
    connection.client.resetAndDestroy();
    connection.server.resetAndDestroy();
  }
}
