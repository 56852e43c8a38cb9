/**
 * Throwaway standalone `redis-server`.
 *
 * @module
 */
import { join } from 'node:path';
import { getFreePort } from './free-port.js';
import { DEFAULT_START_TIMEOUT_MS, launchInTempDir, SingleServer } from './handle.js';
import { redisCommand } from './probe.js';
import { requireBinary } from './which.js';

/** Options of {@link startRedis}. */
export interface RedisOptions {
  /** Turn on the append-only file, so data survives {@link ServerHandle.kill} + restart. Default false. */
  readonly appendonly?: boolean;
  /** Port to use; default a free one. */
  readonly port?: number;
  /** More `--name value` arguments for redis-server. */
  readonly extraArgs?: readonly string[];
  /** Startup deadline; default 10 s. */
  readonly startTimeoutMs?: number;
}

/** Hint for a missing redis binary. */
export const REDIS_INSTALL_HINT = 'apt-get install redis-server, or run tools/ci-install-services.sh';

/**
 * The redis-server arguments shared by standalone, cluster and sentinel masters: loopback
 * only, no RDB snapshots, data in `dir`, DEBUG allowed from loopback (for fault tests,
 * e.g. `DEBUG SLEEP`).
 *
 * @param port - Client port.
 * @param dir - Working directory.
 * @param appendonly - AOF on or off.
 */
export function redisBaseArgs(port: number, dir: string, appendonly: boolean): string[] {
  return [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    appendonly ? 'yes' : 'no',
    '--dir',
    dir,
    '--daemonize',
    'no',
    '--logfile',
    '',
    '--enable-debug-command',
    'local',
  ];
}

/** `true` once `PING` answers `+PONG` (not `-LOADING`). */
export async function redisPing(host: string, port: number): Promise<boolean> {
  return (await redisCommand(host, port, 'PING')).startsWith('+PONG');
}

/**
 * Starts `redis-server` on a free loopback port in a fresh temp dir and waits until
 * `PING` answers.
 *
 * @param options - AOF, port, extra arguments.
 * @returns Its handle; `url` is `redis://127.0.0.1:P`.
 * @throws {@link MissingBinaryError} when redis-server is not installed; an error with the
 *   log tail when it does not answer within the deadline.
 */
export async function startRedis(options: RedisOptions = {}): Promise<SingleServer> {
  const command = requireBinary('redis-server', REDIS_INSTALL_HINT);
  const port = options.port ?? (await getFreePort());
  return launchInTempDir(
    'redis',
    (dir) =>
      new SingleServer({
        kind: 'redis',
        port,
        url: `redis://127.0.0.1:${port}`,
        dir,
        label: `redis-server 127.0.0.1:${port}`,
        startTimeoutMs: options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
        spec: {
          command,
          args: [...redisBaseArgs(port, dir, options.appendonly ?? false), ...(options.extraArgs ?? [])],
          cwd: dir,
          logFile: join(dir, 'redis.log'),
        },
        ready: () => redisPing('127.0.0.1', port),
      }),
  );
}
