/**
 * Throwaway Redis Cluster with replicas — by default three primaries with one replica each —
 * and the failovers fault tests force: `CLUSTER FAILOVER` on a replica, and `kill -9` of a
 * primary (its replica is elected; the killed node comes back as that replica's replica).
 *
 * @module
 */
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { getFreeClusterPort } from './free-port.js';
import { DEFAULT_START_TIMEOUT_MS, SingleServer } from './handle.js';
import { waitUntil } from './probe.js';
import { makeTempDir, removeTempDir } from './process.js';
import { RedisCluster } from './redis-cluster.js';
import type { FailoverReport } from './redis-replica-set.js';
import { REDIS_INSTALL_HINT, redisBaseArgs, redisPing } from './redis.js';
import { infoFields, respOk } from './resp.js';
import { requireBinary } from './which.js';

const run = promisify(execFile);

/** Deadline of one failover: the new primary, then every replica in sync again. */
const FAILOVER_TIMEOUT_MS = 60_000;

/** Redis gives up a manual failover after 5 s (`CLUSTER_MF_TIMEOUT`); it is asked again a little later. */
const MANUAL_FAILOVER_TIMEOUT_MS = 6_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** Options of {@link startRedisClusterWithReplicas}. */
export interface RedisClusterWithReplicasOptions {
  /** Primaries; default 3 (the minimum Redis accepts). */
  readonly masters?: number;
  /** Replicas of each primary; default 1. */
  readonly replicasPerMaster?: number;
  /** `--cluster-node-timeout` in ms (a primary unreachable this long is failed over); default 2000. */
  readonly nodeTimeoutMs?: number;
  /** Deadline for each node to start and for the cluster to become ok; default 10 s. */
  readonly startTimeoutMs?: number;
}

/** One line of `CLUSTER NODES`, as the node asked sees it. */
export interface ClusterNodeView {
  readonly id: string;
  readonly port: number;
  readonly master: boolean;
  /** Flagged `fail` or `fail?` by the node asked. */
  readonly failing: boolean;
  /** The id of its primary (replicas only). */
  readonly masterId: string | undefined;
  /** Slot ranges it serves, `[first, last]` each. */
  readonly slots: readonly (readonly [number, number])[];
}

/** Parses `CLUSTER NODES`. */
export function parseClusterNodes(text: string): ClusterNodeView[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .map((line) => {
      const [id = '', address = '', flags = '', masterId = '-', , , , , ...slots] = line.split(' ');
      const flagList = flags.split(',');
      return {
        id,
        port: Number(address.slice(address.lastIndexOf(':') + 1).split('@')[0]),
        master: flagList.includes('master'),
        failing: flagList.includes('fail') || flagList.includes('fail?'),
        masterId: masterId === '-' ? undefined : masterId,
        slots: slots
          .filter((slot) => !slot.startsWith('['))
          .map((slot) => {
            const [first, last = first] = slot.split('-');
            return [Number(first), Number(last)] as const;
          }),
      };
    });
}

/**
 * A Redis Cluster whose primaries have replicas. The process controls of {@link RedisCluster}
 * act on every node; {@link failover} and {@link killMaster} force a failover of the primary
 * of one slot and wait until the cluster is whole again.
 */
export class RedisReplicatedCluster extends RedisCluster {
  /** Replicas of each primary when the cluster is whole. */
  readonly replicasPerMaster: number;
  /** `cluster-node-timeout` of every node. */
  readonly nodeTimeoutMs: number;
  /** When the last failover this object forced ended (performance.now()). */
  #lastFailoverAt = -Infinity;

  /** Use {@link startRedisClusterWithReplicas}. */
  constructor(dir: string, members: readonly SingleServer[], timeoutMs: number, replicasPerMaster: number, nodeTimeoutMs: number) {
    super(dir, members, timeoutMs);
    this.replicasPerMaster = replicasPerMaster;
    this.nodeTimeoutMs = nodeTimeoutMs;
  }

  /** The cluster as `member` sees it. */
  async viewFrom(member: SingleServer): Promise<ClusterNodeView[]> {
    return parseClusterNodes(String(await respOk(member.port, ['CLUSTER', 'NODES'])));
  }

  /** The node that serves `slot`, as every running node agrees; `undefined` while they do not. */
  async masterOfSlot(slot: number): Promise<SingleServer | undefined> {
    let port: number | undefined;
    for (const member of this.members.filter((m) => m.process.running)) {
      const owner = (await this.viewFrom(member)).find((n) => n.master && !n.failing && n.slots.some(([a, b]) => a <= slot && slot <= b));
      if (owner === undefined || (port !== undefined && owner.port !== port)) return undefined;
      port = owner.port;
    }
    return this.members.find((m) => m.port === port);
  }

  /**
   * Waits until every node runs, reports `cluster_state:ok`, flags no node as failing, and
   * every primary has {@link replicasPerMaster} online replicas.
   */
  async waitUntilReplicated(timeoutMs = FAILOVER_TIMEOUT_MS): Promise<void> {
    await waitUntil(() => this.#replicated(), { what: 'redis cluster whole and replicated', timeoutMs, intervalMs: 100 });
  }

  /**
   * `CLUSTER FAILOVER` on a replica of the primary of `slot` (a coordinated hand-over: the
   * primary stops taking writes until the replica has caught up). Waits until the cluster
   * is whole again.
   */
  async failover(slot: number): Promise<FailoverReport> {
    await this.waitUntilReplicated();
    const old = await this.#requireMasterOf(slot);
    const oldId = (await this.viewFrom(old)).find((n) => n.port === old.port)?.id;
    const replica = (await this.viewFrom(old)).find((n) => !n.master && n.masterId === oldId);
    const member = this.members.find((m) => m.port === replica?.port);
    if (member === undefined) throw new Error(`the primary of slot ${slot} (127.0.0.1:${old.port}) has no replica`);
    // A primary votes in one failover of a shard per twice the node timeout: an election
    // sooner after the last one is refused, and the manual failover times out (after 5 s).
    await sleep(this.#lastFailoverAt + 2 * this.nodeTimeoutMs + 100 - performance.now());
    const started = performance.now();
    let promoted: SingleServer | undefined;
    while (promoted === undefined) {
      await respOk(member.port, ['CLUSTER', 'FAILOVER']);
      promoted = await this.#waitForNewMaster(slot, old, MANUAL_FAILOVER_TIMEOUT_MS).catch((error: unknown) => {
        if (performance.now() - started > FAILOVER_TIMEOUT_MS) throw error;
        return undefined;
      });
    }
    const promotedAfterMs = performance.now() - started;
    await this.waitUntilReplicated();
    this.#lastFailoverAt = performance.now();
    return { how: 'cluster-failover', from: old.port, to: member.port, promotedAfterMs, settledAfterMs: performance.now() - started };
  }

  /**
   * `kill -9` of the primary of `slot`: waits until its replica is elected, restarts the
   * killed node (it rejoins, empty, as a replica of the new primary) and waits until the
   * cluster is whole again.
   */
  async killMaster(slot: number): Promise<FailoverReport> {
    await this.waitUntilReplicated();
    const old = await this.#requireMasterOf(slot);
    const started = performance.now();
    await old.kill('SIGKILL');
    const next = await this.#waitForNewMaster(slot, old);
    const promotedAfterMs = performance.now() - started;
    await old.restart();
    await this.waitUntilReplicated();
    this.#lastFailoverAt = performance.now();
    return { how: 'kill-9', from: old.port, to: next.port, promotedAfterMs, settledAfterMs: performance.now() - started };
  }

  async #requireMasterOf(slot: number): Promise<SingleServer> {
    const master = await this.masterOfSlot(slot);
    if (master === undefined) throw new Error(`the nodes do not agree which primary serves slot ${slot}`);
    return master;
  }

  async #waitForNewMaster(slot: number, old: SingleServer, timeoutMs = FAILOVER_TIMEOUT_MS): Promise<SingleServer> {
    let next: SingleServer | undefined;
    await waitUntil(
      async () => {
        const master = await this.masterOfSlot(slot);
        if (master === undefined || master === old) return false;
        if (infoFields(await respOk(master.port, ['INFO', 'replication']))['role'] !== 'master') return false;
        next = master;
        return true;
      },
      { what: `a new primary of slot ${slot} after 127.0.0.1:${old.port}`, timeoutMs, intervalMs: 50 },
    );
    return next as SingleServer;
  }

  async #replicated(): Promise<boolean> {
    if (!this.members.every((m) => m.process.running)) return false;
    for (const member of this.members) {
      const info = infoFields(await respOk(member.port, ['CLUSTER', 'INFO']));
      if (info['cluster_state'] !== 'ok' || Number(info['cluster_known_nodes']) !== this.members.length) return false;
      const view = await this.viewFrom(member);
      if (view.some((n) => n.failing)) return false;
      // Gossip spreads role changes node by node: right after `--cluster create` (or a
      // failover) a node can still list a replica as a slot-less master. Whole means every
      // node agrees on the primaries and on whose replica each replica is.
      const masters = view.filter((n) => n.master);
      if (masters.length !== this.members.length / (1 + this.replicasPerMaster)) return false;
      if (!view.every((n) => n.master || masters.some((m) => m.id === n.masterId))) return false;
      const replication = infoFields(await respOk(member.port, ['INFO', 'replication']));
      if (view.find((n) => n.port === member.port)?.master === true) {
        const online = Object.entries(replication).filter(([field, value]) => /^slave\d+$/.test(field) && value.includes('state=online'));
        if (online.length < this.replicasPerMaster) return false;
      } else if (replication['master_link_status'] !== 'up') return false;
    }
    return true;
  }
}

/**
 * Starts a Redis Cluster of `masters` primaries with `replicasPerMaster` replicas each on
 * free ports (whose bus ports, +10000, are free too), creates it with
 * `redis-cli --cluster create --cluster-replicas`, and waits until every node reports
 * `cluster_state:ok` and every replica is in sync.
 *
 * Nodes keep no data on disk; replicas resynchronise diskless, at once, and may always
 * stand for election (`cluster-replica-validity-factor 0`), so a failover never waits for
 * a replica that has been cut off for a while.
 *
 * @param options - Sizes, node timeout, deadline.
 * @throws {@link MissingBinaryError} when redis-server or redis-cli is missing.
 */
export async function startRedisClusterWithReplicas(options: RedisClusterWithReplicasOptions = {}): Promise<RedisReplicatedCluster> {
  const server = requireBinary('redis-server', REDIS_INSTALL_HINT);
  const cli = requireBinary('redis-cli', REDIS_INSTALL_HINT);
  const masters = options.masters ?? 3;
  const replicas = options.replicasPerMaster ?? 1;
  const timeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 2_000;
  const dir = makeTempDir('redis-cluster-replicas');
  const members: SingleServer[] = [];
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
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
              String(nodeTimeoutMs),
              '--cluster-replica-validity-factor',
              '0',
              '--cluster-allow-replica-migration',
              'no',
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
    await Promise.all(members.map((m) => m.launch()));
    const cluster = new RedisReplicatedCluster(dir, members, timeoutMs, replicas, nodeTimeoutMs);
    try {
      await run(cli, ['--cluster', 'create', ...cluster.nodes, '--cluster-replicas', String(replicas), '--cluster-yes'], {
        timeout: timeoutMs,
      });
    } catch (error) {
      const e = error as { stdout?: string; stderr?: string; message: string };
      throw new Error(`redis-cli --cluster create failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`, { cause: error });
    }
    await cluster.waitUntilOk();
    await cluster.waitUntilReplicated(Math.max(timeoutMs, 20_000));
    return cluster;
  } catch (error) {
    await Promise.all(members.map((m) => m.process.kill('SIGKILL')));
    removeTempDir(dir);
    throw error;
  }
}
