/**
 * A small TCP proxy for network-fault tests: it listens on a loopback port and forwards to a
 * server, and can add latency, black-hole traffic, reset every connection, or refuse them.
 *
 * The black hole stalls both directions and keeps what it holds: when the network "heals"
 * (back to `pass`), the held bytes are delivered in order, as TCP retransmission would. Bytes
 * are never silently dropped mid-stream, because real TCP never does that either — a stream
 * either arrives in order or the connection dies (use `reset`, or
 * {@link TcpFaultProxy.resetConnections}, for that).
 *
 * Independently of the mode, the client → server direction alone can be held
 * ({@link TcpFaultProxy.holdToServer}): what clients send queues until
 * {@link TcpFaultProxy.releaseToServer} while the server's replies keep flowing — a request
 * held up in the network after its sender had every reason to send it.
 *
 * @module
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

/** What the proxy does with traffic. */
export type FaultProxyMode =
  /** Forward at once. */
  | { readonly kind: 'pass' }
  /** Forward each chunk `ms` after it arrived, in order. */
  | { readonly kind: 'latency'; readonly ms: number }
  /** Reset (RST) every open connection now, and every new one as it arrives. */
  | { readonly kind: 'reset' }
  /** Accept connections but deliver nothing, in either direction, until the mode changes. */
  | { readonly kind: 'blackhole' }
  /**
   * Reset every open connection and stop listening, so that connecting is refused
   * (`ECONNREFUSED`); the proxy listens again, on the same port, when the mode changes.
   */
  | { readonly kind: 'refuse' };

/** Traffic counters. */
export interface FaultProxyStats {
  /** Connections accepted (including those reset at once in `reset` mode). */
  readonly connections: number;
  /** Connections the proxy reset. */
  readonly resets: number;
  /** Bytes delivered to the server. */
  readonly bytesToServer: number;
  /** Bytes delivered to clients. */
  readonly bytesToClient: number;
}

/** Where a {@link TcpFaultProxy} forwards to. */
export interface ProxyTarget {
  /** The server's host name or IP address. @default '127.0.0.1' */
  readonly host?: string;
  /** The server's TCP port. */
  readonly port: number;
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
    private readonly proxy: TcpFaultProxy,
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
    if (mode.kind === 'blackhole' || mode.kind === 'reset' || mode.kind === 'refuse' || this.to.destroyed) return;
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
 * A loopback TCP proxy with switchable faults, for putting a network between a backend and
 * its server. The conformance suite's `faults` group puts one in front of the server a backend
 * author names; fault tests can use it directly.
 *
 * @example
 * const proxy = await TcpFaultProxy.start({ host: '127.0.0.1', port: 6379 })
 * // point the client at proxy.host:proxy.port
 * await proxy.setMode({ kind: 'blackhole' })
 * await proxy.setMode({ kind: 'pass' })
 * await proxy.close()
 */
export class TcpFaultProxy {
  readonly #server: Server;
  readonly #target: { readonly host: string; readonly port: number };
  readonly #connections = new Set<Connection>();
  #port = 0;
  #closed = false;
  #mode: FaultProxyMode = { kind: 'pass' };
  /** 'off', 'held', or 'after-reply' (held from the next server → client chunk on). */
  #toServerHold: 'off' | 'held' | 'after-reply' = 'off';
  #stats = { connections: 0, resets: 0, bytesToServer: 0, bytesToClient: 0 };

  private constructor(server: Server, target: ProxyTarget) {
    this.#server = server;
    this.#target = { host: target.host ?? LOOPBACK, port: target.port };
  }

  /**
   * Starts a proxy on a free loopback port forwarding to `target` (a port on `127.0.0.1`, or
   * a host and port).
   * @throws {Error} when the port cannot be bound.
   * @throws {RangeError} when the target port is not a TCP port number.
   */
  static async start(target: ProxyTarget | number): Promise<TcpFaultProxy> {
    const resolved = typeof target === 'number' ? { port: target } : target;
    if (!Number.isInteger(resolved.port) || resolved.port <= 0 || resolved.port > 65_535)
      throw new RangeError(`the proxy's target port must be a TCP port number, got ${String(resolved.port)}`);
    const server = createServer();
    const proxy = new TcpFaultProxy(server, resolved);
    server.on('connection', (client) => proxy.#accept(client));
    await proxy.#listen(0);
    return proxy;
  }

  /** The loopback port clients connect to (the same port before and after `refuse`). */
  get port(): number {
    return this.#port;
  }

  /** Always `127.0.0.1`. */
  get host(): string {
    return LOOPBACK;
  }

  /** Where the proxy forwards to. */
  get target(): { readonly host: string; readonly port: number } {
    return this.#target;
  }

  /** The current mode. */
  get mode(): FaultProxyMode {
    return this.#mode;
  }

  /** Traffic so far. */
  get stats(): FaultProxyStats {
    return { ...this.#stats };
  }

  /** Open connections. */
  get openConnections(): number {
    return this.#connections.size;
  }

  /**
   * Switches mode; takes effect at once on every open connection. Resolves once the mode is in
   * force: leaving `refuse` means listening again, which is the only step that waits.
   * @throws {RangeError} for a negative latency.
   * @throws {Error} when the proxy is closed, or cannot listen on its port again after `refuse`.
   */
  async setMode(mode: FaultProxyMode): Promise<void> {
    if (this.#closed) throw new Error('the TcpFaultProxy is closed');
    if (mode.kind === 'latency' && !(Number.isFinite(mode.ms) && mode.ms >= 0))
      throw new RangeError(`latency must be a non-negative number of ms, got ${mode.ms}`);
    const wasRefusing = this.#mode.kind === 'refuse';
    this.#mode = mode;
    if (mode.kind === 'refuse') {
      this.resetConnections();
      if (!wasRefusing) await this.#stopListening();
      return;
    }
    if (wasRefusing) await this.#listen(this.#port);
    if (mode.kind === 'reset') {
      this.resetConnections();
      return;
    }
    for (const connection of this.#connections) {
      connection.up.pump();
      connection.down.pump();
    }
  }

  /**
   * Resets (RST) every open connection now, whatever the mode, dropping what they hold: a
   * fault that outlived the connections open during it (after a long black hole, a real
   * network's TCP gives up on them).
   */
  resetConnections(): void {
    for (const connection of [...this.#connections]) this.#reset(connection);
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

  /** Stops listening and resets every connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.resetConnections();
    if (this.#server.listening) await this.#stopListening();
  }

  async #listen(port: number): Promise<void> {
    try {
      await new Promise<void>((resolve, reject) => {
        this.#server.once('error', reject);
        this.#server.listen(port, LOOPBACK, () => {
          this.#server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      // Listening again after `refuse` can fail only if another process took the port meanwhile.
      if (port === 0) throw error;
      throw new Error(`the TcpFaultProxy could not listen on ${LOOPBACK}:${port} again after refusing connections`, { cause: error });
    }
    const address = this.#server.address();
    if (address === null || typeof address === 'string') throw new Error('the TcpFaultProxy is not listening on a TCP port');
    this.#port = address.port;
  }

  /** Resolves once the listening socket is closed (connections are reset by the caller). */
  #stopListening(): Promise<void> {
    return new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    this.#stats.connections += 1;
    client.setNoDelay(true);
    if (this.#mode.kind === 'reset' || this.#mode.kind === 'refuse' || this.#closed) {
      this.#stats.resets += 1;
      client.on('error', () => undefined);
      client.resetAndDestroy();
      return;
    }
    const server = connect({ host: this.#target.host, port: this.#target.port });
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
