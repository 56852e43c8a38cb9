/**
 * A group of fault-suite workers sharing one backend: forked OS processes for the server
 * backends, in-process workers (separate stores over one `MemoryBackend`) for memory. The
 * scenarios drive both through {@link FaultWorker}, so each is written once.
 *
 * @module
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Backend, BackendCapabilities } from '@latchkey/core';
import { MemoryBackend } from '@latchkey/memory';
import type { BackendTarget } from './backends.js';
import { SharedBackendProxy } from './proxies.js';
import { createCommands, type CloseReport, type Commands, type StoreSettings } from './worker/commands.js';
import { sleep } from './worker/outcome.js';
import { EXIT_KEPT_ALIVE, NATURAL_EXIT_GRACE_MS, type Ready, type Request, type Response } from './worker/protocol.js';

/** What a worker left behind when it shut down. */
export interface ShutdownReport extends CloseReport {
  /** The worker had been crashed on purpose ({@link FaultWorker.crash}). */
  readonly crashed: boolean;
  /** Forked: the process exited by itself once its IPC channel closed. In-process: always true. */
  readonly exitedByItself: boolean;
  /** Exit code and signal, or `in-process`. */
  readonly exit: string;
}

/** The arguments of command `K` of `C`. */
export type CommandArgs<C, K extends keyof C> = C[K] extends (...args: infer A) => unknown ? A : never;
/** The result of command `K` of `C`. */
export type CommandResult<C, K extends keyof C> = C[K] extends (...args: never[]) => infer R ? R : never;

/** A worker's commands: every one takes at most one plain-data argument; `close` ends it. */
export interface WorkerCommands {
  close(): Promise<CloseReport>;
}

/** One worker running commands `C`: a forked process or (memory) an in-process store. */
export interface Worker<C extends WorkerCommands> {
  /** For messages, e.g. `redis#2 (pid 1234)`. */
  readonly label: string;
  /** Runs a command in the worker. */
  call<K extends keyof C>(command: K, ...args: CommandArgs<C, K>): CommandResult<C, K>;
  /**
   * Freezes the worker for `ms`, then runs `during` while it is still frozen, then thaws it.
   * Forked: SIGSTOP … SIGCONT. In-process: the event loop is blocked for `ms` (everything in
   * the process stops, as in a long GC pause), then `during` runs.
   */
  freeze(ms: number, during: () => Promise<void>): Promise<void>;
  /** Dies without releasing anything: SIGKILL, or (in-process) abandons its store and locks. */
  crash(): Promise<void>;
  /** Closes the store and ends the worker; reports what was left behind. */
  shutdown(): Promise<ShutdownReport>;
}

/** A fault-suite worker. */
export type FaultWorker = Worker<Commands>;

/** The fault-suite worker's entry point. */
export const WORKER_MAIN = fileURLToPath(new URL('./worker/main.ts', import.meta.url));
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
// Maps @latchkey/* to package sources, as vitest's aliases do for the test process: forked
// and in-process workers run the same code, never a stale build.
const WORKER_TSCONFIG = fileURLToPath(new URL('./worker/tsconfig.json', import.meta.url));

/** A forked worker process serving commands `C` (see worker/serve.ts). */
export class ForkedWorker<C extends WorkerCommands> implements Worker<C> {
  readonly label: string;
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  readonly #exited: Promise<string>;
  #nextId = 0;
  #exitStatus: string | undefined;
  #crashed = false;

  private constructor(child: ChildProcess, label: string) {
    this.#child = child;
    this.label = `${label} (pid ${child.pid ?? '?'})`;
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exitStatus = `code ${code ?? 'null'}, signal ${signal ?? 'none'}`;
        for (const { reject } of this.#pending.values()) reject(new Error(`${this.label} exited (${this.#exitStatus}) during a command`));
        this.#pending.clear();
        resolve(this.#exitStatus);
      });
    });
    child.on('message', (message: Response | Ready) => {
      if ('ready' in message) return;
      const waiter = this.#pending.get(message.id);
      if (waiter === undefined) return;
      this.#pending.delete(message.id);
      if (message.ok) waiter.resolve(message.result);
      else {
        const error = new Error(`${this.label}: ${message.error.message}`);
        error.name = message.error.name;
        if (message.error.stack !== undefined) error.stack = `${error.name}: ${error.message}\n--- in worker ---\n${message.error.stack}`;
        waiter.reject(error);
      }
    });
  }

  /** Forks `entry` (a module that calls `serve`) and waits until it is ready. */
  static async start<C extends WorkerCommands>(label: string, entry: string = WORKER_MAIN): Promise<ForkedWorker<C>> {
    const child = fork(entry, [], {
      execArgv: ['--import', TSX_LOADER],
      env: { ...process.env, TSX_TSCONFIG_PATH: WORKER_TSCONFIG },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    const worker = new ForkedWorker<C>(child, label);
    await new Promise<void>((resolve, reject) => {
      const onMessage = (message: Response | Ready): void => {
        if ('ready' in message) {
          child.off('message', onMessage);
          resolve();
        }
      };
      child.on('message', onMessage);
      child.once('error', reject);
      void worker.#exited.then((status) => reject(new Error(`${label} exited before it was ready (${status})`)));
    });
    return worker;
  }

  call<K extends keyof C>(command: K, ...args: CommandArgs<C, K>): CommandResult<C, K> {
    return this.#request(String(command), args[0]) as CommandResult<C, K>;
  }

  #request<T>(command: string, args: unknown): Promise<T> {
    const id = ++this.#nextId;
    return new Promise<T>((resolve, reject) => {
      if (this.#exitStatus !== undefined) {
        reject(new Error(`${this.label} has exited (${this.#exitStatus})`));
        return;
      }
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      const request: Request = { id, command, args };
      this.#child.send(request);
    });
  }

  async freeze(ms: number, during: () => Promise<void>): Promise<void> {
    this.#signal('SIGSTOP');
    try {
      await sleep(ms);
      await during();
    } finally {
      this.#signal('SIGCONT');
    }
  }

  async crash(): Promise<void> {
    this.#crashed = true;
    this.#signal('SIGKILL');
    await this.#exited;
  }

  async shutdown(): Promise<ShutdownReport> {
    if (this.#exitStatus !== undefined)
      return { crashed: this.#crashed, unhandledRejections: [], resources: [], exitedByItself: false, exit: this.#exitStatus };
    let report: CloseReport;
    try {
      report = await this.#request<CloseReport>('close', undefined);
    } catch (error) {
      this.#signal('SIGKILL');
      throw error;
    }
    this.#child.disconnect();
    const timer = sleep(NATURAL_EXIT_GRACE_MS + 2000).then(() => 'timeout');
    const exit = await Promise.race([this.#exited, timer]);
    if (exit === 'timeout') {
      this.#signal('SIGKILL');
      return { ...report, crashed: false, exitedByItself: false, exit: await this.#exited };
    }
    return {
      ...report,
      crashed: false,
      exitedByItself: exit === 'code 0, signal none',
      exit: exit === `code ${EXIT_KEPT_ALIVE}, signal none` ? `${exit} (kept alive)` : exit,
    };
  }

  /** Kills it if it is still running (for cleanup after a failed test). */
  kill(): void {
    this.#signal('SIGCONT');
    this.#signal('SIGKILL');
  }

  #signal(signal: NodeJS.Signals): void {
    if (this.#exitStatus === undefined) this.#child.kill(signal);
  }
}

class InProcessWorker implements FaultWorker {
  readonly label: string;
  readonly #commands: Commands;
  #crashed = false;

  constructor(label: string, shared: Backend) {
    this.label = label;
    this.#commands = createCommands({
      backend: async () => shared,
      proxies: () => [new SharedBackendProxy()],
      unhandledRejections: () => [],
    });
  }

  call<K extends keyof Commands>(command: K, ...args: CommandArgs<Commands, K>): CommandResult<Commands, K> {
    if (this.#crashed) return Promise.reject(new Error(`${this.label} has crashed`)) as CommandResult<Commands, K>;
    const handler = this.#commands[command] as (...a: unknown[]) => CommandResult<Commands, K>;
    return handler(...args);
  }

  async freeze(ms: number, during: () => Promise<void>): Promise<void> {
    const until = performance.now() + ms;
    while (performance.now() < until) {
      // Busy-wait: the whole process stands still, as under a long GC pause or a hot loop.
    }
    await during();
  }

  async crash(): Promise<void> {
    this.#crashed = true;
  }

  async shutdown(): Promise<ShutdownReport> {
    if (this.#crashed) return { crashed: true, unhandledRejections: [], resources: [], exitedByItself: true, exit: 'in-process (crashed)' };
    const report = await this.#commands.close();
    return { ...report, crashed: false, resources: [], exitedByItself: true, exit: 'in-process' };
  }
}

/** Workers over one backend. */
export class Cluster {
  readonly #forked: ForkedWorker<Commands>[] = [];
  readonly #shared: MemoryBackend | undefined;
  readonly #target: BackendTarget;
  readonly #settings: StoreSettings;
  #started = 0;
  #capabilities: BackendCapabilities | undefined;
  /** The workers, in start order. */
  readonly workers: FaultWorker[] = [];

  private constructor(target: BackendTarget, settings: StoreSettings) {
    this.#target = target;
    this.#settings = settings;
    this.#shared = target.kind === 'memory' ? new MemoryBackend() : undefined;
  }

  /**
   * Starts `size` workers for `target`, each with an open store configured with `settings`.
   * Memory: in-process workers over one shared `MemoryBackend`; others: forked processes.
   */
  static async start(target: BackendTarget, settings: StoreSettings, size: number): Promise<Cluster> {
    const cluster = new Cluster(target, settings);
    try {
      await Promise.all(Array.from({ length: size }, () => cluster.add()));
    } catch (error) {
      await cluster.destroy();
      throw error;
    }
    return cluster;
  }

  /** What the backend promises (as the first worker's backend reported it). */
  get capabilities(): BackendCapabilities {
    if (this.#capabilities === undefined) throw new Error('no worker has opened the backend');
    return this.#capabilities;
  }

  /** The shared in-process backend (memory only). */
  get sharedMemoryBackend(): MemoryBackend | undefined {
    return this.#shared;
  }

  /** Starts one more worker (with its store open) and adds it to {@link workers}. */
  async add(settings: StoreSettings = this.#settings): Promise<FaultWorker> {
    const label = `${this.#target.kind}#${++this.#started}`;
    let worker: FaultWorker;
    if (this.#shared !== undefined) worker = new InProcessWorker(label, this.#shared);
    else {
      const forked = await ForkedWorker.start<Commands>(label);
      this.#forked.push(forked);
      worker = forked;
    }
    this.workers.push(worker);
    const { capabilities } = await worker.call('open', { target: this.#target, store: settings });
    this.#capabilities ??= capabilities;
    return worker;
  }

  /** Shuts every worker down and reports each. */
  async shutdown(): Promise<ShutdownReport[]> {
    const reports = await Promise.all(this.workers.map((worker) => worker.shutdown()));
    await this.#shared?.close();
    return reports;
  }

  /** Kills whatever is still running (cleanup after a failure); never throws. */
  async destroy(): Promise<void> {
    for (const worker of this.#forked) worker.kill();
    await this.#shared?.close().catch(() => undefined);
  }
}
