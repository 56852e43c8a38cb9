/**
 * Server killed and restarted mid-run, on a dedicated server: every in-flight and new call
 * settles (success or typed error) within the deadline + 100 ms, calls succeed again within
 * 3 s of the restart, nothing is left pending and no rejection goes unhandled. A restart
 * without persistence loses the locks: the next locked write is refused. Redis with
 * `appendonly yes` loses no acknowledged write across `kill -9`.
 *
 * @module
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServerHandle, servicesRequired } from '@latchkey/test-servers';
import type { BackendKind } from '../backends.js';
import { Cluster } from '../cluster.js';
import { startDedicatedServer } from '../servers.js';
import { record } from '../stats.js';
import type { SuiteContext } from '../context.js';
import type { StoreSettings } from '../worker/commands.js';
import { epochNow, sleep } from '../worker/outcome.js';
import { expectSettledAndRecovered, judgeLoad, RECOVERY_MS, slowestCalls } from './load-check.js';

/** Settings of workers under server and network faults: the adapter's deadline is what is tested. */
export function faultSettings(operationTimeoutMs: number): StoreSettings {
  return { lockTimeoutMs: 3000, lockSafetyWindowMs: 50, lockWaitMs: 0, operationTimeoutMs: operationTimeoutMs + 1000 };
}

/** Load keys of the fault scenarios. */
export const LOAD_KEYS = Array.from({ length: 8 }, (_, i) => `load:${i}`);

/**
 * Starts a dedicated server of `kind` for a describe block; `undefined` (with the reason
 * printed) when it cannot start, unless `LATCHKEY_REQUIRE_SERVICES=1`.
 */
export function useDedicatedServer(
  kind: Exclude<BackendKind, 'memory'>,
  label: string,
  options: { appendonly?: boolean } = {},
): () => ServerHandle | undefined {
  let server: ServerHandle | undefined;
  beforeAll(async () => {
    try {
      server = await startDedicatedServer(kind, options);
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      if (servicesRequired())
        throw new Error(`${label}: cannot start a dedicated ${kind} server (LATCHKEY_REQUIRE_SERVICES=1): ${why}`, { cause: error });
      console.warn(`skipping ${label}: cannot start a dedicated ${kind} server: ${why}`);
    }
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });
  return () => server;
}

/** Registers the server kill/restart scenarios (not for memory). */
export function defineServerRestartTests(context: SuiteContext): void {
  const kind = context.kind;
  if (kind === 'memory') return;
  const deadlineMs = context.profile.operationTimeoutMs;

  describe('server killed and restarted', () => {
    const server = useDedicatedServer(kind, `${kind} server restart`);

    it(
      `settles every call within the ${deadlineMs} ms deadline + 100 ms across SIGKILL and restart, and recovers within ${RECOVERY_MS} ms`,
      { timeout: 120_000 },
      async (test) => {
        const handle = server();
        if (handle === undefined) return test.skip();
        const cluster = await Cluster.start(
          context.target({ address: handle.url, operationTimeoutMs: deadlineMs }),
          faultSettings(deadlineMs),
          2,
        );
        try {
          await Promise.all(cluster.workers.map((worker) => worker.call('startLoad', { keys: LOAD_KEYS, concurrency: 4, pauseMs: 2 })));
          await sleep(500);
          const killedAt = epochNow();
          await handle.kill('SIGKILL');
          await sleep(1000);
          await handle.restart();
          const healedAt = epochNow();
          await sleep(RECOVERY_MS + 1000);
          const reports = await Promise.all(cluster.workers.map((worker) => worker.call('stopLoad', { settleMs: deadlineMs + 1000 })));
          const shutdown = await cluster.shutdown();
          const verdict = judgeLoad(reports, deadlineMs, healedAt);
          record(kind, 'server-restart', {
            deadlineMs,
            downMs: Math.round(healedAt - killedAt),
            ...verdict,
            workersExitedByThemselves: shutdown.every((s) => s.exitedByItself),
          });
          expectSettledAndRecovered(verdict, slowestCalls(reports));
          expect(shutdown.flatMap((s) => s.unhandledRejections)).toEqual([]);
          expect(shutdown.map((s) => s.exit)).toEqual(shutdown.map(() => 'code 0, signal none'));
        } finally {
          await cluster.destroy();
        }
      },
    );

    // mongo and postgres keep their data (and so the locks) across a kill.
    if (kind !== 'mongo' && kind !== 'postgres') {
      it('refuses the next locked write after a restart without persistence', { timeout: 60_000 }, async (test) => {
        const handle = server();
        if (handle === undefined) return test.skip();
        const cluster = await Cluster.start(
          context.target({ address: handle.url, operationTimeoutMs: deadlineMs }),
          faultSettings(deadlineMs),
          1,
        );
        try {
          const [holder] = cluster.workers;
          if (holder === undefined) throw new Error('needs a worker');
          const keys = ['restart-lost:1', 'restart-lost:2'];
          await holder.call('hold', { keys, value: 'before', waitMs: 5000, lockTimeoutMs: 30_000 });
          await handle.kill('SIGKILL');
          await handle.restart();
          const outcomes = await holder.call('lockedWrite', { keys, value: 'after', retryForMs: 5000 });
          const reads = await holder.call('read', { keys });
          await holder.call('release', { keys });
          record(kind, 'lock-lost-restart', { lockedWrites: outcomes, readsAfter: reads.map((r) => r.outcome) });
          expect(outcomes).toEqual(keys.map(() => 'LOCK_TIMEOUT'));
          expect(reads.map((r) => r.outcome)).toEqual(keys.map(() => 'NOT_FOUND'));
          await cluster.shutdown();
        } finally {
          await cluster.destroy();
        }
      });
    }
  });

  if (kind === 'redis') {
    describe('appendonly yes and kill -9', () => {
      const server = useDedicatedServer('redis', 'redis appendonly', { appendonly: true });

      it(`loses no acknowledged write across ${context.profile.aofRuns} kill -9 / restart runs`, { timeout: 180_000 }, async (test) => {
        const handle = server();
        if (handle === undefined) return test.skip();
        const cluster = await Cluster.start(
          context.target({ address: handle.url, operationTimeoutMs: deadlineMs }),
          faultSettings(deadlineMs),
          1,
        );
        try {
          const [writer] = cluster.workers;
          if (writer === undefined) throw new Error('needs a worker');
          await writer.call('startWrites', { prefix: 'aof:', concurrency: 4 });
          for (let run = 0; run < context.profile.aofRuns; run += 1) {
            await sleep(150 + Math.random() * 200);
            await handle.kill('SIGKILL');
            await handle.restart();
          }
          await sleep(300);
          const { acked, failures } = await writer.call('stopWrites');
          const reads = await writer.call('read', { keys: acked.map((i) => `aof:${i}`) });
          const lost = reads.filter((read, index) => read.outcome !== 'ok' || read.value !== acked[index]);
          record(kind, 'aof-kill-9', {
            runs: context.profile.aofRuns,
            acknowledged: acked.length,
            failedWrites: failures,
            lost: lost.length,
          });
          expect(acked.length).toBeGreaterThan(0);
          expect(lost.map((read) => `${read.key}: ${read.outcome}`)).toEqual([]);
          await cluster.shutdown();
        } finally {
          await cluster.destroy();
        }
      });
    });
  }
}
