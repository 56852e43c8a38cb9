/**
 * Child server processes that never outlive the test run.
 *
 * Every process is started with its output appended to a log file (so a failed start
 * can show the log tail), and registered so that it is SIGKILLed, and its temporary
 * directory removed, when this Node process exits or receives SIGINT, SIGTERM or SIGHUP.
 * Where util-linux `setpriv` exists, children are also started with a parent-death
 * signal (SIGKILL), so they die even if this process is itself SIGKILLed.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { which } from './which.js';

/** How a child process ended. */
export interface ExitStatus {
  /** Exit code, or `null` when a signal ended it. */
  readonly code: number | null;
  /** Signal that ended it, or `null`. */
  readonly signal: NodeJS.Signals | null;
}

/** What to run. */
export interface ProcessSpec {
  /** Executable path. */
  readonly command: string;
  /** Arguments. */
  readonly args: readonly string[];
  /** Working directory. */
  readonly cwd: string;
  /** File that receives stdout and stderr (appended, so restarts keep earlier output). */
  readonly logFile: string;
  /** Extra environment variables. */
  readonly env?: Readonly<Record<string, string>>;
}

const live = new Set<ManagedProcess>();
const tempDirs = new Set<string>();
let hooksInstalled = false;
const setpriv = which('setpriv');

function killAllNow(): void {
  for (const p of live) p.killNow();
  for (const dir of tempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort on the way out
    }
  }
  tempDirs.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  killAllNow();
  // If nobody else handles the signal, restore the default action (terminate).
  if (process.listenerCount(signal) === 1) {
    process.removeListener(signal, onSignal);
    process.kill(process.pid, signal);
  }
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAllNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);
}

const OWNER_FILE = '.latchkey-test-server-owner';
let staleSwept = false;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temp dirs left behind by test-server processes that were SIGKILLed (their
 * servers died with them, through the parent-death signal, but the dirs stayed).
 */
function sweepStaleDirs(): void {
  if (staleSwept) return;
  staleSwept = true;
  let names: string[];
  try {
    names = readdirSync(tmpdir()).filter((n) => n.startsWith('latchkey-'));
  } catch {
    return;
  }
  for (const name of names) {
    const dir = join(tmpdir(), name);
    try {
      const owner = Number(readFileSync(join(dir, OWNER_FILE), 'utf8'));
      if (Number.isInteger(owner) && owner > 0 && !pidAlive(owner)) rmSync(dir, { recursive: true, force: true });
    } catch {
      // not one of ours, or already gone
    }
  }
}

/**
 * A fresh temporary directory, removed on process exit unless released earlier with
 * {@link removeTempDir}. It records the owning pid, so a later run can remove it if this
 * process is SIGKILLed.
 *
 * @param prefix - Name prefix, e.g. `redis`.
 */
export function makeTempDir(prefix: string): string {
  installHooks();
  sweepStaleDirs();
  const dir = mkdtempSync(join(tmpdir(), `latchkey-${prefix}-`));
  writeFileSync(join(dir, OWNER_FILE), String(process.pid));
  tempDirs.add(dir);
  return dir;
}

/**
 * Removes a directory made by {@link makeTempDir}.
 *
 * @param dir - The directory.
 */
export function removeTempDir(dir: string): void {
  tempDirs.delete(dir);
  rmSync(dir, { recursive: true, force: true });
}

/**
 * The last `lines` lines of a log file ("" if it cannot be read).
 *
 * @param file - Log file path.
 * @param lines - How many lines; default 30.
 */
export function tailFile(file: string, lines = 30): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text
      .split('\n')
      .filter((l) => l.length > 0)
      .slice(-lines)
      .join('\n');
  } catch {
    return '';
  }
}

/**
 * One server process: started, signalled and awaited; restartable with the same spec.
 */
export class ManagedProcess {
  #child: ChildProcess | undefined;
  #exited: Promise<ExitStatus> = Promise.resolve({ code: null, signal: null });
  #status: ExitStatus | undefined;

  /** @param spec - What to run. */
  constructor(readonly spec: ProcessSpec) {}

  /** Process id of the current run (0 when it never started). */
  get pid(): number {
    return this.#child?.pid ?? 0;
  }

  /** Whether the current run has not exited yet. */
  get running(): boolean {
    return this.#child !== undefined && this.#status === undefined;
  }

  /** How the last run ended, or `undefined` while it runs. */
  get exitStatus(): ExitStatus | undefined {
    return this.#status;
  }

  /** Settles when the current run exits. */
  get exited(): Promise<ExitStatus> {
    return this.#exited;
  }

  /** The command line, for messages. */
  get commandLine(): string {
    return [this.spec.command, ...this.spec.args].map((a) => (a === '' || /\s/.test(a) ? JSON.stringify(a) : a)).join(' ');
  }

  /** The last lines of the log file. */
  logTail(lines = 30): string {
    return tailFile(this.spec.logFile, lines);
  }

  /**
   * Starts a new run. Resolves once the process is spawned (not once it is ready).
   *
   * @throws If it is already running or cannot be spawned.
   */
  async start(): Promise<void> {
    if (this.running) throw new Error(`already running: ${this.commandLine}`);
    installHooks();
    const fd = openSync(this.spec.logFile, 'a');
    let child: ChildProcess;
    try {
      const [command, args] =
        setpriv === undefined
          ? [this.spec.command, [...this.spec.args]]
          : [setpriv, ['--pdeathsig', 'SIGKILL', '--', this.spec.command, ...this.spec.args]];
      child = spawn(command, args, {
        cwd: this.spec.cwd,
        env: { ...process.env, ...this.spec.env },
        stdio: ['ignore', fd, fd],
      });
    } finally {
      closeSync(fd);
    }
    this.#child = child;
    this.#status = undefined;
    this.#exited = new Promise<ExitStatus>((resolve) => {
      child.once('exit', (code, signal) => {
        this.#status = { code, signal };
        live.delete(this);
        resolve(this.#status);
      });
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', (error) => {
        this.#status ??= { code: null, signal: null };
        live.delete(this);
        reject(new Error(`cannot start ${this.commandLine}: ${error.message}`));
      });
    });
    live.add(this);
  }

  /**
   * Sends `signal` and waits for the process to exit.
   *
   * @param signal - Default SIGKILL.
   * @param timeoutMs - After this long, SIGKILL is sent; default 5000.
   */
  async kill(signal: NodeJS.Signals = 'SIGKILL', timeoutMs = 5_000): Promise<ExitStatus> {
    const child = this.#child;
    if (child === undefined || !this.running) return this.#status ?? { code: null, signal: null };
    child.kill(signal);
    // A stopped (paused) process only acts on most signals once continued.
    if (signal !== 'SIGKILL' && signal !== 'SIGSTOP') child.kill('SIGCONT');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const result = await Promise.race([this.#exited, timedOut]);
    clearTimeout(timer);
    if (result === 'timeout') {
      child.kill('SIGKILL');
      return this.#exited;
    }
    return result;
  }

  /** Graceful stop: SIGTERM, then SIGKILL after `timeoutMs`. */
  stop(timeoutMs = 5_000): Promise<ExitStatus> {
    return this.kill('SIGTERM', timeoutMs);
  }

  /** Sends a signal without waiting (e.g. SIGSTOP / SIGCONT). */
  signal(signal: NodeJS.Signals): void {
    if (this.running) this.#child?.kill(signal);
  }

  /** Synchronous SIGKILL, for exit hooks. */
  killNow(): void {
    if (this.running) {
      try {
        this.#child?.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}
