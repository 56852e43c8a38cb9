/**
 * Throwaway PostgreSQL: a fresh cluster made by `initdb` in a temp dir, served by `postgres`
 * on a free loopback port with trust authentication. Never the machine's own server on 5432.
 *
 * @module
 */
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { getFreePort } from './free-port.js';
import { launchInTempDir, SingleServer, type SingleServerOptions } from './handle.js';
import { tcpRequest } from './probe.js';
import { MissingBinaryError, which } from './which.js';

/** Options of {@link startPostgres}. */
export interface PostgresOptions {
  /** Port to use; default a free one. */
  readonly port?: number;
  /** More server settings, `name=value` each (passed as `-c name=value`). */
  readonly settings?: readonly string[];
  /** Startup deadline; default 30 s (initdb not included). */
  readonly startTimeoutMs?: number;
}

/** Hint for missing PostgreSQL server binaries. */
export const POSTGRES_INSTALL_HINT = 'apt-get install postgresql, or run tools/ci-install-services.sh';

/** The superuser and database of the throwaway cluster. */
export const POSTGRES_USER = 'postgres';

/** Default startup deadline: crash recovery after a kill can take a few seconds on a loaded machine. */
export const POSTGRES_START_TIMEOUT_MS = 30_000;

/** Where Debian installs the server binaries (one folder per major version, not on the PATH). */
const DEBIAN_ROOT = '/usr/lib/postgresql';

/** `initdb` and `postgres` of one installation. */
interface PostgresBinaries {
  readonly initdb: string;
  readonly postgres: string;
}

/**
 * The server binaries: `initdb` on the PATH (and `postgres` beside its real path), else the
 * newest `/usr/lib/postgresql/<major>/bin`.
 * @throws {@link MissingBinaryError} when there is none.
 */
export function findPostgresBinaries(): PostgresBinaries {
  const onPath = which('initdb');
  const candidates = onPath === undefined ? [] : [dirname(realpathSync(onPath))];
  if (existsSync(DEBIAN_ROOT)) {
    const majors = readdirSync(DEBIAN_ROOT)
      .filter((name) => /^\d+$/.test(name))
      .sort((a, b) => Number(b) - Number(a));
    candidates.push(...majors.map((major) => join(DEBIAN_ROOT, major, 'bin')));
  }
  for (const dir of candidates) {
    const binaries = { initdb: join(dir, 'initdb'), postgres: join(dir, 'postgres') };
    if (which(binaries.initdb) !== undefined && which(binaries.postgres) !== undefined) return binaries;
  }
  throw new MissingBinaryError('initdb', POSTGRES_INSTALL_HINT);
}

/** The uid and gid of a user in /etc/passwd, or `undefined`. */
function passwdEntry(user: string): { uid: number; gid: number } | undefined {
  let text: string;
  try {
    text = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const [name, , uid, gid] = line.split(':');
    if (name === user && uid !== undefined && gid !== undefined) return { uid: Number(uid), gid: Number(gid) };
  }
  return undefined;
}

/**
 * The command prefix that runs a PostgreSQL binary: as root, `setpriv` to the `postgres`
 * user (initdb and postgres refuse to run as root; Debian's package creates that user),
 * keeping the parent-death signal that setpriv's uid change would clear; else nothing.
 */
function runAsPrefix(): { prefix: string[]; owner: { uid: number; gid: number } | undefined } {
  if (process.getuid?.() !== 0) return { prefix: [], owner: undefined };
  const owner = passwdEntry('postgres');
  const setpriv = which('setpriv');
  if (owner === undefined || setpriv === undefined) {
    throw new MissingBinaryError(
      'a postgres user',
      `initdb and postgres refuse to run as root: they need a "postgres" user and setpriv (${POSTGRES_INSTALL_HINT})`,
    );
  }
  return {
    prefix: [setpriv, `--reuid=${owner.uid}`, `--regid=${owner.gid}`, '--init-groups', '--pdeathsig', 'SIGKILL', '--'],
    owner,
  };
}

/** The StartupMessage (protocol 3.0) for {@link POSTGRES_USER}, followed by Terminate. */
function startupProbe(): Buffer {
  const params = Buffer.from(`user\0${POSTGRES_USER}\0database\0${POSTGRES_USER}\0\0`, 'latin1');
  const header = Buffer.alloc(8);
  header.writeInt32BE(8 + params.length, 0);
  header.writeInt32BE(196_608, 4);
  const terminate = Buffer.from([0x58, 0, 0, 0, 4]);
  return Buffer.concat([header, params, terminate]);
}

/**
 * `true` once the server takes a session: the startup handshake reaches ReadyForQuery
 * (during startup or recovery it answers an ErrorResponse instead).
 */
export async function postgresPing(host: string, port: number, timeoutMs = 1_000): Promise<boolean> {
  const reply = await tcpRequest(
    host,
    port,
    startupProbe(),
    (received) => received.length > 0 && (received[0] === 0x45 || received.includes(0x5a)),
    timeoutMs,
  );
  return reply[0] === 0x52 && reply.includes(0x5a);
}

/** Pids of the processes whose parent is `pid` (the postmaster's backends and workers). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Field 4 (ppid) follows the command name in parentheses, which may itself hold spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return children;
}

function signalAll(pids: readonly number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/**
 * A running throwaway PostgreSQL. A server is many processes (the postmaster and one per
 * session), so {@link pause} freezes them all, and {@link kill} with SIGKILL kills them all,
 * as a crash of the machine would; the data directory survives both.
 */
export class PostgresServer extends SingleServer {
  /** Use {@link startPostgres}. */
  constructor(options: SingleServerOptions) {
    super(options);
  }

  override async stop(): Promise<void> {
    // A paused server's backends would never act on the shutdown.
    await this.resume();
    await super.stop();
  }

  override async restart(): Promise<void> {
    await this.resume();
    await super.restart();
  }

  override async pause(): Promise<void> {
    const postmaster = this.pid;
    signalAll([postmaster, ...childrenOf(postmaster)], 'SIGSTOP');
  }

  override async resume(): Promise<void> {
    const postmaster = this.pid;
    signalAll([postmaster, ...childrenOf(postmaster)], 'SIGCONT');
  }

  override async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    // Backends left behind would keep the shared memory and the port, and a restart would refuse to start.
    const children = signal === 'SIGKILL' && this.process.running ? childrenOf(this.pid) : [];
    await super.kill(signal);
    signalAll(children, 'SIGKILL');
    for (const child of children) while (existsSync(`/proc/${child}`) && !isZombie(child)) await sleep(10);
  }
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs initdb for a trust-authenticated UTF-8 cluster in `dataDir`. */
function initCluster(binaries: PostgresBinaries, prefix: readonly string[], dataDir: string): void {
  const [command, ...args] = [
    ...prefix,
    binaries.initdb,
    '-D',
    dataDir,
    '-U',
    POSTGRES_USER,
    '--auth=trust',
    '-E',
    'UTF8',
    '--no-locale',
    '--no-sync',
    '--no-instructions',
  ];
  const result = spawnSync(command as string, args, { encoding: 'utf8', timeout: 120_000 });
  if (result.status !== 0) {
    const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
    throw new Error(`initdb failed (status ${result.status}, ${result.error?.message ?? 'no spawn error'}):\n${output}`);
  }
}

/**
 * Makes a fresh cluster with `initdb` in a temp dir and starts `postgres` on a free loopback
 * port (TCP only, trust authentication, `fsync=off`: a killed server keeps what it wrote, only
 * a crash of the machine could lose it). As root, both run as the `postgres` user.
 *
 * @param options - Port, extra settings, deadline.
 * @returns Its handle; `url` is `postgres://postgres@127.0.0.1:P/postgres`.
 * @throws {@link MissingBinaryError} when the server binaries (or, as root, a postgres user) are missing.
 */
export async function startPostgres(options: PostgresOptions = {}): Promise<PostgresServer> {
  const binaries = findPostgresBinaries();
  const { prefix, owner } = runAsPrefix();
  const port = options.port ?? (await getFreePort());
  return launchInTempDir('postgres', (dir) => {
    if (owner !== undefined) chownSync(dir, owner.uid, owner.gid);
    const dataDir = join(dir, 'data');
    initCluster(binaries, prefix, dataDir);
    const settings = [
      'listen_addresses=127.0.0.1',
      `port=${port}`,
      'unix_socket_directories=',
      'fsync=off',
      'shared_buffers=32MB',
      'max_connections=200',
      ...(options.settings ?? []),
    ];
    const [command, ...args] = [...prefix, binaries.postgres, '-D', dataDir, ...settings.flatMap((setting) => ['-c', setting])];
    return new PostgresServer({
      kind: 'postgres',
      port,
      url: `postgres://${POSTGRES_USER}@127.0.0.1:${port}/${POSTGRES_USER}`,
      dir,
      label: `postgres 127.0.0.1:${port}`,
      startTimeoutMs: options.startTimeoutMs ?? POSTGRES_START_TIMEOUT_MS,
      spec: { command: command as string, args, cwd: dir, logFile: join(dir, 'postgres.log') },
      // Fast shutdown: SIGTERM (smart) would wait for every client to disconnect.
      stopSignal: 'SIGINT',
      ready: () => postgresPing('127.0.0.1', port),
    });
  });
}
