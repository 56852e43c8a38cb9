/**
 * Locks across Redis failovers: three worker processes run locked read-increment-write loops
 * on a few keys with latchkey's `RedisBackend` as it comes, with `lockReplication`, and with
 * redlock, all at once, while the test forces failovers of the primary that serves those
 * keys — `kill -9` (the killed node comes back as a replica) alternating with
 * `SENTINEL FAILOVER` on a Sentinel replica set (1 primary, 2 replicas, 3 Sentinels), and
 * `CLUSTER FAILOVER` alternating with `kill -9` on a Cluster (3 primaries, 1 replica each).
 *
 * Counted per mode (see failover-analysis.ts): double grants, fencing-token regressions and
 * acknowledged writes lost. The replicated mode must have none of them and must work again
 * after the last failover; the other two are measured, not judged. 20 failovers per
 * deployment with `LATCHKEY_FAULTS_FULL=1`, 4 by default.
 *
 * @module
 */
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { sha1KeyMangler } from '@latchkey/core';
import {
  type FailoverReport,
  type RedisReplicatedCluster,
  type RedisReplicaSet,
  respOk,
  servicesRequired,
  startRedisClusterWithReplicas,
  startRedisReplicaSet,
} from '@latchkey/test-servers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ForkedWorker } from '../cluster.js';
import { FULL } from '../profiles.js';
import { record } from '../stats.js';
import { epochNow, sleep } from '../worker/outcome.js';
import {
  FAILOVER_MODES,
  type Deployment,
  type FailoverCommands,
  type FailoverMode,
  type HoldRecord,
  type ModeReport,
} from '../worker/failover-commands.js';
import { doubleGrants, fenceRegressions, longestGap, lostWrites } from './failover-analysis.js';

/** The name results are recorded under (`$LATCHKEY_FAULTS_RESULTS_DIR/redis-failover.json`). */
export const FAILOVER_RESULTS = 'redis-failover';

/** Forced failovers per deployment. */
export const FAILOVERS = FULL ? 20 : 4;

const FAILOVER_WORKER = fileURLToPath(new URL('../worker/failover-main.ts', import.meta.url));
const PROCESSES = 3;
/** Loops per mode in each process. */
const LOOPS = 2;
/** Keys each mode contends on. */
const KEYS_PER_MODE = 2;
const LEASE_MS = 2_000;
const OPERATION_TIMEOUT_MS = 2_000;
const REPLICATION_TIMEOUT_MS = 500;
/** Contention before the first failover, between failovers, and after the last one. */
const STEADY_MS = 1_000;
/** The slot whose primary every failover hits; every key lives on that primary. */
const TARGET_SLOT = 0;

/** What one mode did across the failovers of one deployment. */
export interface ModeVerdict {
  readonly holds: number;
  readonly acknowledged: number;
  /** Writes whose outcome the caller was told is unknown (may or may not have happened). */
  readonly unsure: number;
  readonly doubleGrants: number;
  /** `null` for redlock, which issues no fencing tokens. */
  readonly fenceRegressions: number | null;
  readonly lostAcknowledged: number;
  /** Acknowledged writes once the last failover had settled: the mode works again. */
  readonly acknowledgedAfterLastFailover: number;
  /** The longest stretch without an acknowledged write, ms. */
  readonly longestStallMs: number;
  /** The most frequent failures, `<step>:<outcome>` → count. */
  readonly failures: Record<string, number>;
}

/** What one deployment's run recorded. */
export interface FailoverRun {
  readonly deployment: 'sentinel' | 'cluster';
  readonly failovers: readonly FailoverReport[];
  readonly seconds: number;
  /** The machine's load average (1, 5, 15 min) when the run started. */
  readonly loadAtStart: readonly number[];
  readonly modes: Record<FailoverMode, ModeVerdict>;
}

type FailoverWorker = ForkedWorker<FailoverCommands>;

interface Rig<T> {
  readonly get: () => T | undefined;
}

/** Starts a rig for a describe block; `undefined` (with the reason printed) when it cannot start, unless `LATCHKEY_REQUIRE_SERVICES=1`. */
function useRig<T extends { stop(): Promise<void> }>(label: string, start: () => Promise<T>): Rig<T> {
  let rig: T | undefined;
  beforeAll(async () => {
    try {
      rig = await start();
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      if (servicesRequired()) throw new Error(`${label}: cannot start (LATCHKEY_REQUIRE_SERVICES=1): ${why}`, { cause: error });
      console.warn(`skipping ${label}: cannot start: ${why}`);
    }
  }, 120_000);
  afterAll(async () => {
    await rig?.stop();
  });
  return { get: () => rig };
}

function sentinelDeployment(set: RedisReplicaSet): Deployment {
  return { kind: 'sentinel', sentinels: set.sentinels, name: set.masterName, replicas: set.replicaCount };
}

function clusterDeployment(cluster: RedisReplicatedCluster): Deployment {
  return { kind: 'cluster', nodes: cluster.nodes, replicas: cluster.replicasPerMaster };
}

/** Keys of each mode whose slots the primary of {@link TARGET_SLOT} serves (any keys off a Cluster). */
async function pickKeys(cluster: RedisReplicatedCluster | undefined): Promise<Record<FailoverMode, string[]>> {
  const keys: Record<FailoverMode, string[]> = { default: [], replicated: [], redlock: [] };
  const owner = cluster === undefined ? undefined : await cluster.masterOfSlot(TARGET_SLOT);
  const onTarget = async (hashTag: string): Promise<boolean> => {
    if (cluster === undefined || owner === undefined) return true;
    const slot = Number(await respOk(owner.port, ['CLUSTER', 'KEYSLOT', hashTag]));
    return (await cluster.masterOfSlot(slot)) === owner;
  };
  for (let i = 0; FAILOVER_MODES.some((mode) => keys[mode].length < KEYS_PER_MODE); i++) {
    const key = `counter-${i}`;
    for (const mode of FAILOVER_MODES) {
      if (keys[mode].length >= KEYS_PER_MODE) continue;
      // latchkey's hash tag is the stored key (the store's SHA-1 of it); redlock's is the key.
      if (await onTarget(mode === 'redlock' ? key : sha1KeyMangler(key))) keys[mode].push(key);
    }
  }
  return keys;
}

/** The verdict of one mode from every process's report. */
function judge(
  mode: FailoverMode,
  reports: readonly ModeReport[],
  finals: ReadonlyMap<string, number | undefined>,
  window: { from: number; lastFailoverAt: number; to: number },
): ModeVerdict {
  const holds: HoldRecord[] = reports.flatMap((report) => report.holds);
  const failures: Record<string, number> = {};
  for (const report of reports) for (const [step, n] of Object.entries(report.failures)) failures[step] = (failures[step] ?? 0) + n;
  const top = Object.entries(failures)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 6);
  return {
    holds: holds.length,
    acknowledged: lostWrites(holds, finals).acknowledged,
    unsure: holds.reduce((sum, hold) => sum + hold.unsure.length, 0),
    doubleGrants: doubleGrants(holds, LEASE_MS).length,
    fenceRegressions: mode === 'redlock' ? null : fenceRegressions(holds).length,
    lostAcknowledged: lostWrites(holds, finals).lost,
    acknowledgedAfterLastFailover: holds.flatMap((hold) => hold.acked).filter(([, at]) => at > window.lastFailoverAt).length,
    longestStallMs: Math.round(longestGap(holds, window.from, window.to)),
    failures: Object.fromEntries(top),
  };
}

/** Contention through `failovers`, then the verdicts. */
async function runFailovers(
  deploymentName: 'sentinel' | 'cluster',
  deployment: Deployment,
  keys: Record<FailoverMode, string[]>,
  failovers: readonly (() => Promise<FailoverReport>)[],
  settle: () => Promise<unknown>,
): Promise<FailoverRun> {
  const started = performance.now();
  const loadAtStart = loadavg();
  const workers: FailoverWorker[] = [];
  try {
    for (let i = 0; i < PROCESSES; i++) workers.push(await ForkedWorker.start<FailoverCommands>(`failover#${i + 1}`, FAILOVER_WORKER));
    const namespace = `failover_${deploymentName}_${Date.now().toString(36)}`;
    await Promise.all(
      workers.map((worker) =>
        worker.call('open', {
          deployment,
          namespace,
          leaseMs: LEASE_MS,
          operationTimeoutMs: OPERATION_TIMEOUT_MS,
          replicationTimeoutMs: REPLICATION_TIMEOUT_MS,
        }),
      ),
    );
    await Promise.all(workers.map((worker) => worker.call('start', { keys, loops: LOOPS })));
    const from = epochNow();
    await sleep(STEADY_MS);
    const reports: FailoverReport[] = [];
    for (const failover of failovers) {
      const report = await failover();
      reports.push(report);
      process.stderr.write(
        `[faults] ${deploymentName} failover ${reports.length}/${failovers.length}: ${report.how} ${report.from} → ${report.to}, promoted after ${Math.round(report.promotedAfterMs)} ms, settled after ${Math.round(report.settledAfterMs)} ms\n`,
      );
      await sleep(STEADY_MS);
    }
    const lastFailoverAt = epochNow() - STEADY_MS;
    await sleep(STEADY_MS);
    const byWorker = await Promise.all(workers.map((worker) => worker.call('stop')));
    const to = epochNow();
    await settle();
    const [reader] = workers as [FailoverWorker];
    const modes = {} as Record<FailoverMode, ModeVerdict>;
    for (const mode of FAILOVER_MODES) {
      const values = await reader.call('read', { mode, keys: keys[mode] });
      const finals = new Map(keys[mode].map((key, i) => [key, typeof values[i] === 'number' ? values[i] : undefined]));
      modes[mode] = judge(
        mode,
        byWorker.map((report) => report[mode]),
        finals,
        { from, lastFailoverAt, to },
      );
    }
    const shutdown = await Promise.all(workers.map((worker) => worker.shutdown()));
    expect(shutdown.flatMap((s) => s.unhandledRejections)).toEqual([]);
    return {
      deployment: deploymentName,
      failovers: reports,
      seconds: Math.round((performance.now() - started) / 1000),
      loadAtStart,
      modes,
    };
  } finally {
    for (const worker of workers) worker.kill();
  }
}

/** The checks of one run: every failover moved the primary; the replicated mode lost nothing and recovered. */
function expectSafeReplicatedLocks(run: FailoverRun): void {
  expect(run.failovers.filter((report) => report.from === report.to)).toEqual([]);
  expect(run.failovers).toHaveLength(FAILOVERS);
  const replicated = run.modes.replicated;
  expect(replicated, JSON.stringify(replicated)).toMatchObject({ doubleGrants: 0, fenceRegressions: 0, lostAcknowledged: 0 });
  expect(replicated.acknowledged).toBeGreaterThan(0);
  expect(replicated.acknowledgedAfterLastFailover, 'the replicated mode works again after the last failover').toBeGreaterThan(0);
  // The others are measured, not judged; they must at least have run.
  for (const mode of ['default', 'redlock'] as const) expect(run.modes[mode].acknowledged, mode).toBeGreaterThan(0);
}

/** Registers the failover scenarios: one Sentinel replica set, one Cluster with replicas. */
export function defineFailoverTests(): void {
  // Each failover takes a few seconds (a SENTINEL FAILOVER about 10: Sentinel demotes the old primary 8 s after the switch).
  const timeout = 60_000 + FAILOVERS * 20_000;

  describe(`redis failover: Sentinel, 1 primary + 2 replicas + 3 Sentinels, ${FAILOVERS} failovers`, () => {
    const rig = useRig('the Sentinel replica set', () => startRedisReplicaSet());

    it('replicated locks: no double grant, no fencing-token regression, no acknowledged write lost', { timeout }, async (test) => {
      const set = rig.get();
      if (set === undefined) return test.skip();
      const failovers = Array.from({ length: FAILOVERS }, (_, i) => (i % 2 === 0 ? () => set.killPrimary() : () => set.sentinelFailover()));
      const run = await runFailovers('sentinel', sentinelDeployment(set), await pickKeys(undefined), failovers, () =>
        set.waitUntilSettled(),
      );
      record(FAILOVER_RESULTS, 'sentinel', { ...run });
      expectSafeReplicatedLocks(run);
    });
  });

  describe(`redis failover: Cluster, 3 primaries + 1 replica each, ${FAILOVERS} failovers`, () => {
    const rig = useRig('the Cluster with replicas', () => startRedisClusterWithReplicas());

    it('replicated locks: no double grant, no fencing-token regression, no acknowledged write lost', { timeout }, async (test) => {
      const cluster = rig.get();
      if (cluster === undefined) return test.skip();
      const failovers = Array.from({ length: FAILOVERS }, (_, i) =>
        i % 2 === 0 ? () => cluster.failover(TARGET_SLOT) : () => cluster.killMaster(TARGET_SLOT),
      );
      const run = await runFailovers('cluster', clusterDeployment(cluster), await pickKeys(cluster), failovers, () =>
        cluster.waitUntilReplicated(),
      );
      record(FAILOVER_RESULTS, 'cluster', { ...run });
      expectSafeReplicatedLocks(run);
    });
  });
}
