/**
 * Throwaway Redis Cluster: three masters, no replicas.
 *
 * @module
 */
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { getFreeClusterPort } from './free-port.js';
import { DEFAULT_START_TIMEOUT_MS, SingleServer, type ServerHandle } from './handle.js';
import { redisCommand, waitUntil } from './probe.js';
import { makeTempDir, removeTempDir } from './process.js';
import { REDIS_INSTALL_HINT, redisBaseArgs, redisPing } from './redis.js';
import { requireBinary } from './which.js';

const run = promisify(execFile);

/** Options of {@link startRedisCluster}. */
export interface RedisClusterOptions {
  /** Number of masters; default 3 (the minimum Redis accepts). */
  readonly masters?: number;
  /** `--cluster-node-timeout` in ms; default 2000. */
  readonly nodeTimeoutMs?: number;
  /** Deadline for each node to start and for the cluster to become ok; default 10 s. */
  readonly startTimeoutMs?: number;
}

/** `true` when the node reports `cluster_state:ok` and knows all `expected` nodes. */
async function clusterOk(port: number, expected: number): Promise<boolean> {
  const info = await redisCommand('127.0.0.1', port, 'CLUSTER INFO');
  return info.includes('cluster_state:ok') && info.includes(`cluster_known_nodes:${expected}\r\n`);
}

/** A running Redis Cluster; its process-level controls act on every node. */
export class RedisCluster implements ServerHandle {
  readonly kind = 'redis-cluster' as const;
  readonly host = '127.0.0.1';
  /** Every node, in creation order; use them to fault one node. */
  readonly members: readonly SingleServer[];
  readonly dir: string;
  #stopped = false;
  readonly #timeoutMs: number;

  /** Use {@link startRedisCluster}. */
  constructor(dir: string, members: readonly SingleServer[], timeoutMs: number) {
    this.dir = dir;
    this.members = members;
    this.#timeoutMs = timeoutMs;
  }

  /** The seed nodes, `127.0.0.1:P` each (what ioredis' `Cluster` takes). */
  get nodes(): string[] {
    return this.members.map((m) => `127.0.0.1:${m.port}`);
  }

  get port(): number {
    return this.first.port;
  }

  get url(): string {
    return this.first.url;
  }

  get pid(): number {
    return this.first.pid;
  }

  private get first(): SingleServer {
    const first = this.members[0];
    if (first === undefined) throw new Error('cluster without nodes');
    return first;
  }

  /** Waits until every running node reports `cluster_state:ok` and knows every node. */
  async waitUntilOk(timeoutMs = this.#timeoutMs): Promise<void> {
    await Promise.all(
      this.members.map((m) =>
        waitUntil(() => clusterOk(m.port, this.members.length), {
          what: `redis cluster node 127.0.0.1:${m.port} cluster_state:ok`,
          timeoutMs,
          intervalMs: 100,
          process: m.process,
        }),
      ),
    );
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await Promise.all(this.members.map((m) => m.stop()));
    removeTempDir(this.dir);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await Promise.all(this.members.map((m) => m.kill(signal)));
  }

  /** Restarts every node on its port; nodes.conf survives, so the same cluster re-forms (empty). */
  async restart(): Promise<void> {
    await Promise.all(this.members.map((m) => m.restart()));
    await this.waitUntilOk();
  }

  async pause(): Promise<void> {
    await Promise.all(this.members.map((m) => m.pause()));
  }

  async resume(): Promise<void> {
    await Promise.all(this.members.map((m) => m.resume()));
  }

  logTail(lines?: number): string {
    return this.members.map((m) => `--- node 127.0.0.1:${m.port}\n${m.logTail(lines)}`).join('\n');
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/**
 * Starts a Redis Cluster of three masters without replicas on free ports (whose bus
 * ports, +10000, are free too), creates it with `redis-cli --cluster create`, and waits
 * until every node reports `cluster_state:ok`.
 *
 * @param options - Master count, node timeout, deadline.
 * @throws {@link MissingBinaryError} when redis-server or redis-cli is missing.
 */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisCluster> {
  const server = requireBinary('redis-server', REDIS_INSTALL_HINT);
  const cli = requireBinary('redis-cli', REDIS_INSTALL_HINT);
  const count = options.masters ?? 3;
  const timeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const dir = makeTempDir('redis-cluster');
  const members: SingleServer[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const port = await getFreeClusterPort();
      const nodeDir = join(dir, `node-${port}`);
      mkdirSync(nodeDir);
      members.push(
        new SingleServer({
          kind: 'redis',
          port,
          url: `redis://127.0.0.1:${port}`,
          dir: nodeDir,
          label: `redis cluster node 127.0.0.1:${port}`,
          startTimeoutMs: timeoutMs,
          spec: {
            command: server,
            args: [
              ...redisBaseArgs(port, nodeDir, false),
              '--cluster-enabled',
              'yes',
              '--cluster-config-file',
              'nodes.conf',
              '--cluster-node-timeout',
              String(options.nodeTimeoutMs ?? 2_000),
            ],
            cwd: nodeDir,
            logFile: join(nodeDir, 'redis.log'),
          },
          ready: () => redisPing('127.0.0.1', port),
        }),
      );
    }
    await Promise.all(members.map((m) => m.launch()));
    const cluster = new RedisCluster(dir, members, timeoutMs);
    try {
      await run(cli, ['--cluster', 'create', ...cluster.nodes, '--cluster-replicas', '0', '--cluster-yes'], {
        timeout: timeoutMs,
      });
    } catch (error) {
      const e = error as { stdout?: string; stderr?: string; message: string };
      throw new Error(`redis-cli --cluster create failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`, { cause: error });
    }
    await cluster.waitUntilOk();
    return cluster;
  } catch (error) {
    await Promise.all(members.map((m) => m.process.kill('SIGKILL')));
    removeTempDir(dir);
    throw error;
  }
}
