/**
 * Throwaway Redis Sentinel setup: one master and one sentinel monitoring it.
 *
 * @module
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getFreePort } from './free-port.js';
import { DEFAULT_START_TIMEOUT_MS, launchInTempDir, SingleServer, type ServerHandle } from './handle.js';
import { redisCommand } from './probe.js';
import { REDIS_INSTALL_HINT, startRedis } from './redis.js';
import { requireBinary } from './which.js';

/** The master name the sentinel monitors. */
export const SENTINEL_MASTER_NAME = 'latchkey';

/** Options of {@link startRedisSentinel}. */
export interface RedisSentinelOptions {
  /** Master name; default `latchkey`. */
  readonly masterName?: string;
  /** Startup deadline for each process; default 10 s. */
  readonly startTimeoutMs?: number;
}

/**
 * A master plus a sentinel. `port`/`url`/`pid` and the process controls act on the
 * sentinel; fault the master through {@link RedisSentinel.master}. `stop()` stops both.
 */
export class RedisSentinel implements ServerHandle {
  readonly kind = 'redis-sentinel' as const;
  readonly host = '127.0.0.1';

  /** Use {@link startRedisSentinel}. */
  constructor(
    /** The sentinel process. */
    readonly sentinel: SingleServer,
    /** The monitored master. */
    readonly master: SingleServer,
    /** The monitored master's name. */
    readonly masterName: string,
  ) {}

  get port(): number {
    return this.sentinel.port;
  }

  /** `redis://127.0.0.1:P` of the sentinel (it speaks RESP; ioredis wants `{ sentinels, name }`). */
  get url(): string {
    return this.sentinel.url;
  }

  get pid(): number {
    return this.sentinel.pid;
  }

  get dir(): string {
    return this.sentinel.dir;
  }

  /** The sentinels, `127.0.0.1:P` each. */
  get sentinels(): string[] {
    return [`127.0.0.1:${this.sentinel.port}`];
  }

  async stop(): Promise<void> {
    await Promise.all([this.sentinel.stop(), this.master.stop()]);
  }

  kill(signal?: NodeJS.Signals): Promise<void> {
    return this.sentinel.kill(signal);
  }

  restart(): Promise<void> {
    return this.sentinel.restart();
  }

  pause(): Promise<void> {
    return this.sentinel.pause();
  }

  resume(): Promise<void> {
    return this.sentinel.resume();
  }

  logTail(lines?: number): string {
    return `--- sentinel\n${this.sentinel.logTail(lines)}\n--- master\n${this.master.logTail(lines)}`;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/**
 * Starts a redis-server master and a `redis-sentinel` monitoring it under the name
 * `latchkey` (quorum 1, down-after 2 s), and waits until the sentinel reports the master.
 *
 * @param options - Master name, deadline.
 * @throws {@link MissingBinaryError} when redis-server or redis-sentinel is missing.
 */
export async function startRedisSentinel(options: RedisSentinelOptions = {}): Promise<RedisSentinel> {
  const command = requireBinary('redis-sentinel', 'apt-get install redis-sentinel, or run tools/ci-install-services.sh');
  requireBinary('redis-server', REDIS_INSTALL_HINT);
  const name = options.masterName ?? SENTINEL_MASTER_NAME;
  const timeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const master = await startRedis({ startTimeoutMs: timeoutMs });
  try {
    const port = await getFreePort();
    const sentinel = await launchInTempDir('redis-sentinel', (dir) => {
      const conf = join(dir, 'sentinel.conf');
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          'daemonize no',
          'logfile ""',
          `dir ${dir}`,
          `sentinel monitor ${name} 127.0.0.1 ${master.port} 1`,
          `sentinel down-after-milliseconds ${name} 2000`,
          `sentinel failover-timeout ${name} 10000`,
          '',
        ].join('\n'),
      );
      return new SingleServer({
        kind: 'redis-sentinel',
        port,
        url: `redis://127.0.0.1:${port}`,
        dir,
        label: `redis-sentinel 127.0.0.1:${port}`,
        startTimeoutMs: timeoutMs,
        spec: { command, args: [conf], cwd: dir, logFile: join(dir, 'sentinel.log') },
        ready: async () =>
          (await redisCommand('127.0.0.1', port, `SENTINEL get-master-addr-by-name ${name}`)).includes(`\r\n${master.port}\r\n`),
      });
    });
    return new RedisSentinel(sentinel, master, name);
  } catch (error) {
    await master.stop();
    throw error;
  }
}
