/**
 * Network faults through the suite's own TCP proxy between the workers and the server: added
 * latency (below and above the deadline), connection resets and a black hole. Same rules as
 * a server restart: every call settles within the deadline + 100 ms with success or a typed
 * error, calls succeed again within 3 s once the network heals, nothing stays pending.
 *
 * @module
 */
import { describe, expect, it } from 'vitest';
import { Cluster } from '../cluster.js';
import { addressFor, hostPort } from '../servers.js';
import { record } from '../stats.js';
import type { SuiteContext } from '../context.js';
import { TcpFaultProxy, type FaultProxyMode } from '@latchkey/conformance';
import { epochNow, sleep } from '../worker/outcome.js';
import { expectSettledAndRecovered, judgeLoad, RECOVERY_MS, slowestCalls } from './load-check.js';
import { faultSettings, LOAD_KEYS } from './server-restart.js';

/** Registers the network-fault scenario (not for memory). */
export function defineNetworkFaultTests(context: SuiteContext): void {
  const kind = context.kind;
  if (kind === 'memory') return;
  const deadlineMs = context.profile.operationTimeoutMs;
  const phases: [FaultProxyMode, number][] = [
    [{ kind: 'latency', ms: 100 }, 1000],
    [{ kind: 'latency', ms: deadlineMs + 500 }, 2000],
    [{ kind: 'pass' }, 1000],
    [{ kind: 'reset' }, 500],
    [{ kind: 'pass' }, 1000],
    [{ kind: 'blackhole' }, deadlineMs * 2],
  ];

  describe('network faults', () => {
    it(
      `settles every call within the deadline + 100 ms through latency, resets and a black hole, and recovers within ${RECOVERY_MS} ms`,
      { timeout: 120_000 },
      async () => {
        const proxy = await TcpFaultProxy.start(hostPort(context.address).port);
        const cluster = await Cluster.start(
          context.target({ address: addressFor(kind, proxy.port), operationTimeoutMs: deadlineMs }),
          faultSettings(deadlineMs),
          2,
        ).catch(async (error: unknown) => {
          await proxy.close();
          throw error;
        });
        try {
          await Promise.all(cluster.workers.map((worker) => worker.call('startLoad', { keys: LOAD_KEYS, concurrency: 4, pauseMs: 2 })));
          await sleep(500);
          const timeline: string[] = [];
          for (const [mode, ms] of phases) {
            await proxy.setMode(mode);
            timeline.push(`${mode.kind}${mode.kind === 'latency' ? ` ${mode.ms} ms` : ''} for ${ms} ms`);
            await sleep(ms);
          }
          await proxy.setMode({ kind: 'pass' });
          const healedAt = epochNow();
          await sleep(RECOVERY_MS + 1000);
          const reports = await Promise.all(cluster.workers.map((worker) => worker.call('stopLoad', { settleMs: deadlineMs + 1000 })));
          const shutdown = await cluster.shutdown();
          const verdict = judgeLoad(reports, deadlineMs, healedAt);
          record(kind, 'network-faults', { deadlineMs, timeline, proxy: proxy.stats, ...verdict });
          expectSettledAndRecovered(verdict, slowestCalls(reports));
          expect(shutdown.flatMap((s) => s.unhandledRejections)).toEqual([]);
          expect(shutdown.map((s) => s.exit)).toEqual(shutdown.map(() => 'code 0, signal none'));
        } finally {
          await cluster.destroy();
          await proxy.close();
        }
      },
    );
  });
}
