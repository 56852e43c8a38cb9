/**
 * Throwaway replicated Redis under Sentinel: one primary, its replicas and a group of
 * Sentinels (by default 1 + 2 + 3, quorum 2), with the failovers fault tests force —
 * `kill -9` of the primary (the killed node comes back as a replica) and `SENTINEL FAILOVER`.
 *
 * @module
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getFreePort } from './free-port.js';
import { DEFAULT_START_TIMEOUT_MS, SingleServer, type ServerHandle } from './handle.js';
import { waitUntil } from './probe.js';
import { makeTempDir, removeTempDir } from './process.js';
import { SENTINEL_MASTER_NAME } from './redis-sentinel.js';
import { REDIS_INSTALL_HINT, redisBaseArgs, redisPing } from './redis.js';
import { fieldsOf, infoFields, respCommand, respOk, RespError } from './resp.js';
import { requireBinary } from './which.js';

/** Options of {@link startRedisReplicaSet}. */
export interface RedisReplicaSetOptions {
  /** Replicas of the primary; default 2. */
  readonly replicas?: number;
  /** Sentinels; default 3. */
  readonly sentinels?: number;
  /** Sentinels that must agree the primary is down; default a majority. */
  readonly quorum?: number;
  /** Master name; default `latchkey`. */
  readonly masterName?: string;
  /** `down-after-milliseconds`; default 2000. */
  readonly downAfterMs?: number;
  /**
   * `failover-timeout`; default 3000. Sentinel starts no automatic failover of the same
   * primary within twice this time of the last one.
   */
  readonly failoverTimeoutMs?: number;
  /** Startup deadline of each process, and of the set becoming settled; default 10 s. */
  readonly startTimeoutMs?: number;
}

/** What one forced failover did. */
export interface FailoverReport {
  /** How it was forced. */
  readonly how: 'kill-9' | 'sentinel-failover' | 'cluster-failover';
  /** Port of the primary before. */
  readonly from: number;
  /** Port of the primary after. */
  readonly to: number;
  /** From forcing it to the new primary being in charge, ms. */
  readonly promotedAfterMs: number;
  /** From forcing it to every replica being back in sync with the new primary, ms. */
  readonly settledAfterMs: number;
}

/** Deadline of one failover: the new primary, then every replica in sync again. */
const FAILOVER_TIMEOUT_MS = 60_000;

/**
 * A primary, its replicas and Sentinels. `port`/`url`/`pid` are the first Sentinel's; the
 * process controls (`kill`, `pause`, …) act on every process; {@link killPrimary} and
 * {@link sentinelFailover} force a failover and wait until the set is settled again.
 */
export class RedisReplicaSet implements ServerHandle {
  readonly kind = 'redis-sentinel' as const;
  readonly host = '127.0.0.1';
  readonly dir: string;
  /** The data nodes (the first was the primary at start). */
  readonly nodes: readonly SingleServer[];
  /** The Sentinel processes. */
  readonly sentinelServers: readonly SingleServer[];
  /** The monitored master's name. */
  readonly masterName: string;
  readonly #timeoutMs: number;
  #stopped = false;

  /** Use {@link startRedisReplicaSet}. */
  constructor(dir: string, nodes: readonly SingleServer[], sentinels: readonly SingleServer[], masterName: string, timeoutMs: number) {
    this.dir = dir;
    this.nodes = nodes;
    this.sentinelServers = sentinels;
    this.masterName = masterName;
    this.#timeoutMs = timeoutMs;
  }

  /** The Sentinels, `127.0.0.1:P` each (ioredis wants `{ sentinels, name }`). */
  get sentinels(): string[] {
    return this.sentinelServers.map((s) => `127.0.0.1:${s.port}`);
  }

  get port(): number {
    return this.#firstSentinel.port;
  }

  /** `redis://127.0.0.1:P` of the first Sentinel. */
  get url(): string {
    return this.#firstSentinel.url;
  }

  get pid(): number {
    return this.#firstSentinel.pid;
  }

  /** Replicas the primary has when the set is settled. */
  get replicaCount(): number {
    return this.nodes.length - 1;
  }

  get #firstSentinel(): SingleServer {
    const first = this.sentinelServers[0];
    if (first === undefined) throw new Error('replica set without sentinels');
    return first;
  }

  /** The node the Sentinels name as primary (asking each running Sentinel until one answers). */
  async primary(): Promise<SingleServer> {
    let lastError: unknown;
    for (const sentinel of this.sentinelServers) {
      if (!sentinel.process.running) continue;
      try {
        return this.#node(await this.#masterPortFrom(sentinel.port));
      } catch (error) {
        lastError = error;
      }
    }
    throw new Error(`no sentinel names a primary of ${this.masterName}`, { cause: lastError });
  }

  /** The nodes that are not the primary. */
  async replicas(): Promise<SingleServer[]> {
    const primary = await this.primary();
    return this.nodes.filter((node) => node !== primary);
  }

  /**
   * Waits until every Sentinel names the same running primary, sees no failover in progress,
   * knows every other Sentinel and every replica as healthy, and the primary has every
   * other node as an online replica.
   */
  async waitUntilSettled(timeoutMs = this.#timeoutMs): Promise<SingleServer> {
    let settled: SingleServer | undefined;
    await waitUntil(
      async () => {
        settled = await this.#settled();
        return settled !== undefined;
      },
      { what: `replica set ${this.masterName} settled`, timeoutMs, intervalMs: 100 },
    );
    return settled as SingleServer;
  }

  /**
   * `kill -9` of the primary: waits until the Sentinels promote a replica, restarts the killed
   * node as a replica of the new primary (empty, as after a crash without persistence) and
   * waits until the set is settled.
   */
  async killPrimary(): Promise<FailoverReport> {
    const old = await this.waitUntilSettled();
    const started = performance.now();
    await old.kill('SIGKILL');
    const next = await this.#waitForNewPrimary(old);
    const promotedAfterMs = performance.now() - started;
    writeNodeConf(old.dir, next.port);
    await old.restart();
    await this.waitUntilSettled(FAILOVER_TIMEOUT_MS);
    return { how: 'kill-9', from: old.port, to: next.port, promotedAfterMs, settledAfterMs: performance.now() - started };
  }

  /**
   * `SENTINEL FAILOVER`: the Sentinels promote a replica while the primary is still up, and
   * demote the old primary once they see it again. Waits until the set is settled.
   */
  async sentinelFailover(): Promise<FailoverReport> {
    const old = await this.waitUntilSettled();
    const started = performance.now();
    await waitUntil(
      async () => {
        const reply = await respCommand(this.#firstSentinel.port, ['SENTINEL', 'FAILOVER', this.masterName]);
        // INPROG / NOGOODSLAVE: a previous failover is still finishing; try again.
        if (reply instanceof RespError) throw new Error(reply.message);
        return true;
      },
      { what: `SENTINEL FAILOVER ${this.masterName}`, timeoutMs: FAILOVER_TIMEOUT_MS, intervalMs: 250 },
    );
    const next = await this.#waitForNewPrimary(old);
    const promotedAfterMs = performance.now() - started;
    await this.waitUntilSettled(FAILOVER_TIMEOUT_MS);
    return { how: 'sentinel-failover', from: old.port, to: next.port, promotedAfterMs, settledAfterMs: performance.now() - started };
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await Promise.all([...this.sentinelServers, ...this.nodes].map((s) => s.stop()));
    removeTempDir(this.dir);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await Promise.all([...this.sentinelServers, ...this.nodes].map((s) => s.kill(signal)));
  }

  /** Restarts every process on its port with its current configuration (data is lost) and waits until settled. */
  async restart(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.restart()));
    await Promise.all(this.sentinelServers.map((sentinel) => sentinel.restart()));
    await this.waitUntilSettled(FAILOVER_TIMEOUT_MS);
  }

  async pause(): Promise<void> {
    await Promise.all([...this.sentinelServers, ...this.nodes].map((s) => s.pause()));
  }

  async resume(): Promise<void> {
    await Promise.all([...this.sentinelServers, ...this.nodes].map((s) => s.resume()));
  }

  logTail(lines?: number): string {
    return [
      ...this.nodes.map((n) => `--- redis 127.0.0.1:${n.port}\n${n.logTail(lines)}`),
      ...this.sentinelServers.map((s) => `--- sentinel 127.0.0.1:${s.port}\n${s.logTail(lines)}`),
    ].join('\n');
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  #node(port: number): SingleServer {
    const node = this.nodes.find((n) => n.port === port);
    if (node === undefined) throw new Error(`port ${port} is not a node of this replica set`);
    return node;
  }

  async #masterPortFrom(sentinelPort: number): Promise<number> {
    const reply = await respOk(sentinelPort, ['SENTINEL', 'get-master-addr-by-name', this.masterName]);
    if (!Array.isArray(reply) || reply.length !== 2) throw new Error(`sentinel 127.0.0.1:${sentinelPort} knows no ${this.masterName}`);
    return Number(reply[1]);
  }

  /** Every running Sentinel names a primary other than `old`, and that node says it is one. */
  async #waitForNewPrimary(old: SingleServer): Promise<SingleServer> {
    let next: SingleServer | undefined;
    await waitUntil(
      async () => {
        const ports = await Promise.all(this.sentinelServers.map((s) => this.#masterPortFrom(s.port)));
        const port = ports[0];
        if (port === undefined || port === old.port || ports.some((p) => p !== port)) return false;
        const candidate = this.#node(port);
        const role = infoFields(await respOk(port, ['INFO', 'replication']))['role'];
        if (role !== 'master') return false;
        next = candidate;
        return true;
      },
      { what: `a new primary of ${this.masterName} after 127.0.0.1:${old.port}`, timeoutMs: FAILOVER_TIMEOUT_MS, intervalMs: 50 },
    );
    return next as SingleServer;
  }

  /** The primary when the set is settled (see {@link waitUntilSettled}), else `undefined`. */
  async #settled(): Promise<SingleServer | undefined> {
    const ports = await Promise.all(this.sentinelServers.map((s) => this.#masterPortFrom(s.port)));
    const port = ports[0];
    if (port === undefined || ports.some((p) => p !== port)) return undefined;
    const primary = this.#node(port);
    if (!primary.process.running) return undefined;
    const info = infoFields(await respOk(port, ['INFO', 'replication']));
    if (info['role'] !== 'master') return undefined;
    const online = Object.entries(info).filter(([field, value]) => /^slave\d+$/.test(field) && value.includes('state=online'));
    if (online.length < this.replicaCount) return undefined;
    for (const sentinel of this.sentinelServers) {
      const master = fieldsOf(await respOk(sentinel.port, ['SENTINEL', 'MASTER', this.masterName]));
      if (master['flags'] !== 'master' || Number(master['num-other-sentinels']) < this.sentinelServers.length - 1) return undefined;
      const replicas = await respOk(sentinel.port, ['SENTINEL', 'REPLICAS', this.masterName]);
      const healthy = (Array.isArray(replicas) ? replicas : []).map(fieldsOf).filter((r) => r['flags'] === 'slave');
      const others = this.nodes.filter((n) => n !== primary);
      if (!others.every((node) => healthy.some((r) => Number(r['port']) === node.port))) return undefined;
    }
    return primary;
  }
}

/** The part of a node's configuration that changes across failovers: whom it replicates. */
function writeNodeConf(dir: string, primaryPort: number | undefined): void {
  writeFileSync(join(dir, 'node.conf'), primaryPort === undefined ? '' : `replicaof 127.0.0.1 ${primaryPort}\n`);
}

/**
 * Starts a primary, `replicas` replicas and `sentinels` Sentinels monitoring them under
 * `latchkey` on free loopback ports, and waits until the set is settled (every replica in
 * sync, every Sentinel aware of every replica and of the other Sentinels).
 *
 * Nodes keep no data on disk; replicas resynchronise diskless, at once. Each node reads
 * `node.conf` (its `replicaof`, which Sentinel rewrites on failovers) before its command
 * line, so a restarted node keeps its role.
 *
 * @param options - Sizes, Sentinel timings, deadline.
 * @throws {@link MissingBinaryError} when redis-server or redis-sentinel is missing.
 */
export async function startRedisReplicaSet(options: RedisReplicaSetOptions = {}): Promise<RedisReplicaSet> {
  const server = requireBinary('redis-server', REDIS_INSTALL_HINT);
  const sentinelBin = requireBinary('redis-sentinel', 'apt-get install redis-sentinel, or run tools/ci-install-services.sh');
  const replicas = options.replicas ?? 2;
  const sentinelCount = options.sentinels ?? 3;
  const quorum = options.quorum ?? Math.floor(sentinelCount / 2) + 1;
  const name = options.masterName ?? SENTINEL_MASTER_NAME;
  const timeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const dir = makeTempDir('redis-replica-set');
  const nodes: SingleServer[] = [];
  const sentinels: SingleServer[] = [];
  try {
    for (let i = 0; i <= replicas; i++) {
      const port = await getFreePort();
      const nodeDir = join(dir, `node-${port}`);
      mkdirSync(nodeDir);
      writeNodeConf(nodeDir, nodes[0]?.port);
      nodes.push(
        new SingleServer({
          kind: 'redis',
          port,
          url: `redis://127.0.0.1:${port}`,
          dir: nodeDir,
          label: `redis-server 127.0.0.1:${port}`,
          startTimeoutMs: timeoutMs,
          spec: {
            command: server,
            args: [
              join(nodeDir, 'node.conf'),
              ...redisBaseArgs(port, nodeDir, false),
              '--repl-diskless-sync',
              'yes',
              '--repl-diskless-sync-delay',
              '0',
            ],
            cwd: nodeDir,
            logFile: join(nodeDir, 'redis.log'),
          },
          ready: () => redisPing('127.0.0.1', port),
        }),
      );
    }
    await Promise.all(nodes.map((node) => node.launch()));
    const primaryPort = (nodes[0] as SingleServer).port;
    for (let i = 0; i < sentinelCount; i++) {
      const port = await getFreePort();
      const sentinelDir = join(dir, `sentinel-${port}`);
      mkdirSync(sentinelDir);
      const conf = join(sentinelDir, 'sentinel.conf');
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          'daemonize no',
          'logfile ""',
          `dir ${sentinelDir}`,
          `sentinel monitor ${name} 127.0.0.1 ${primaryPort} ${quorum}`,
          `sentinel down-after-milliseconds ${name} ${options.downAfterMs ?? 2_000}`,
          `sentinel failover-timeout ${name} ${options.failoverTimeoutMs ?? 3_000}`,
          `sentinel parallel-syncs ${name} ${Math.max(1, replicas)}`,
          '',
        ].join('\n'),
      );
      sentinels.push(
        new SingleServer({
          kind: 'redis-sentinel',
          port,
          url: `redis://127.0.0.1:${port}`,
          dir: sentinelDir,
          label: `redis-sentinel 127.0.0.1:${port}`,
          startTimeoutMs: timeoutMs,
          spec: { command: sentinelBin, args: [conf], cwd: sentinelDir, logFile: join(sentinelDir, 'sentinel.log') },
          ready: () => redisPing('127.0.0.1', port),
        }),
      );
    }
    await Promise.all(sentinels.map((sentinel) => sentinel.launch()));
    const set = new RedisReplicaSet(dir, nodes, sentinels, name, timeoutMs);
    // Sentinels find each other through hello messages every 2 s: allow for a few rounds.
    await set.waitUntilSettled(Math.max(timeoutMs, 20_000));
    return set;
  } catch (error) {
    await Promise.all([...sentinels, ...nodes].map((s) => s.process.kill('SIGKILL')));
    removeTempDir(dir);
    throw error;
  }
}
