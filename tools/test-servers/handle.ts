/**
 * The handle every started server returns, and its single-process implementation.
 *
 * @module
 */
import { waitUntil } from './probe.js';
import { ManagedProcess, makeTempDir, removeTempDir, type ProcessSpec } from './process.js';

/** Kinds of throwaway server. */
export type ServerKind = 'redis' | 'redis-cluster' | 'redis-sentinel' | 'memcached' | 'mongo' | 'postgres';

/** A running throwaway server (or group of servers) and the controls fault tests need. */
export interface ServerHandle {
  /** What it is. */
  readonly kind: ServerKind;
  /** Always 127.0.0.1. */
  readonly host: string;
  /** Client port (first node for a cluster, the sentinel for a sentinel setup). */
  readonly port: number;
  /**
   * How clients reach it: `redis://127.0.0.1:P`, `mongodb://127.0.0.1:P/`, or for
   * memcached the servers string `127.0.0.1:P` (what memjs takes).
   */
  readonly url: string;
  /** Process id of the current run (first node for a cluster, the sentinel for a sentinel setup). */
  readonly pid: number;
  /** Its temporary directory (removed by {@link ServerHandle.stop}). */
  readonly dir: string;
  /** Graceful stop (SIGTERM, SIGKILL after 5 s), then removes the directory. Idempotent; final. */
  stop(): Promise<void>;
  /** Hard kill for fault tests (default SIGKILL); waits for the exit; keeps the directory. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts again on the same port with the same options (stopping it first if running) and waits until ready. */
  restart(): Promise<void>;
  /** Freezes the process (SIGSTOP): connections stay open but nothing answers. */
  pause(): Promise<void>;
  /** Undoes {@link ServerHandle.pause} (SIGCONT). */
  resume(): Promise<void>;
  /** The last lines of its log. */
  logTail(lines?: number): string;
  /** Same as {@link ServerHandle.stop}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Default startup deadline. */
export const DEFAULT_START_TIMEOUT_MS = 10_000;

/** What a {@link SingleServer} needs. */
export interface SingleServerOptions {
  readonly kind: ServerKind;
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  readonly spec: ProcessSpec;
  /** Resolves `true` once the server answers. */
  readonly ready: () => Promise<boolean>;
  readonly startTimeoutMs: number;
  /** Name for messages, e.g. `redis-server 127.0.0.1:12345`. */
  readonly label: string;
  /**
   * Signal for a graceful stop; default SIGTERM. (memcached uses SIGKILL: it has nothing
   * to flush and takes up to a second to act on SIGTERM.)
   */
  readonly stopSignal?: NodeJS.Signals;
}

/** A server that is one process. */
export class SingleServer implements ServerHandle {
  readonly kind: ServerKind;
  readonly host = '127.0.0.1';
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  /** The process, for composite servers. */
  readonly process: ManagedProcess;
  #stopped = false;
  readonly #options: SingleServerOptions;

  /** Use the `start…` functions instead. */
  constructor(options: SingleServerOptions) {
    this.#options = options;
    this.kind = options.kind;
    this.port = options.port;
    this.url = options.url;
    this.dir = options.dir;
    this.process = new ManagedProcess(options.spec);
  }

  get pid(): number {
    return this.process.pid;
  }

  /** Spawns the process and waits until it answers; on failure kills it and throws with the log tail. */
  async launch(): Promise<void> {
    if (this.#stopped) throw new Error(`${this.#options.label}: already stopped`);
    await this.process.start();
    try {
      await waitReady(this);
    } catch (error) {
      await this.process.kill('SIGKILL');
      throw error;
    }
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.process.kill(this.#options.stopSignal ?? 'SIGTERM');
    removeTempDir(this.dir);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.process.kill(signal);
  }

  async restart(): Promise<void> {
    if (this.process.running) await this.process.kill(this.#options.stopSignal ?? 'SIGTERM');
    await this.launch();
  }

  async pause(): Promise<void> {
    this.process.signal('SIGSTOP');
  }

  async resume(): Promise<void> {
    this.process.signal('SIGCONT');
  }

  logTail(lines?: number): string {
    return this.process.logTail(lines);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  /** @internal */
  get options(): SingleServerOptions {
    return this.#options;
  }
}

async function waitReady(server: SingleServer): Promise<void> {
  await waitUntil(server.options.ready, {
    what: server.options.label,
    timeoutMs: server.options.startTimeoutMs,
    process: server.process,
  });
}

/**
 * Makes the temp dir, builds the server with `build(dir)`, launches it, and removes the
 * dir again if the launch fails.
 *
 * @param prefix - Temp dir name prefix.
 * @param build - Creates the (not yet started) server for a directory.
 */
export async function launchInTempDir<T extends SingleServer>(prefix: string, build: (dir: string) => T): Promise<T> {
  const dir = makeTempDir(prefix);
  let server: T;
  try {
    server = build(dir);
    await server.launch();
  } catch (error) {
    removeTempDir(dir);
    throw error;
  }
  return server;
}
