/**
 * Holder crash: a process holding a lock is killed with SIGKILL (in-process: abandons its
 * store). A waiter already queued for the lock must get it within the lease plus the
 * backend's slack (1 s; memcached 2 s).
 *
 * @module
 */
import { describe, expect, it } from 'vitest';
import { leaseFor } from '../backends.js';
import { record, summarize } from '../stats.js';
import type { SuiteContext } from '../context.js';
import { epochNow, sleep } from '../worker/outcome.js';

/** Registers the holder-crash scenario. */
export function defineHolderCrashTests(context: SuiteContext): void {
  const { profile, kind } = context;

  describe('holder crash', () => {
    it(
      `hands a killed holder's lock to a waiter within the lease + ${profile.crashSlackMs} ms (${profile.crashTrials} trials)`,
      { timeout: 120_000 },
      async () => {
        const cluster = context.cluster();
        const [waiter] = cluster.workers;
        if (waiter === undefined) throw new Error('needs a worker');
        const leaseMs = leaseFor(context.capabilities(), profile.crashLeaseMs);
        const victims = await Promise.all(Array.from({ length: profile.crashTrials }, () => cluster.add()));
        const afterKill: number[] = [];
        const afterLeaseStart: number[] = [];
        for (const [trial, victim] of victims.entries()) {
          const key = `crash:${trial}`;
          const { acquiredAt } = await victim.call('hold', { keys: [key], value: 'victim', waitMs: 5000, lockTimeoutMs: leaseMs });
          const waiting = waiter.call('hold', { keys: [key], value: 'waiter', waitMs: leaseMs + profile.crashSlackMs + 10_000 });
          await sleep(50);
          const killedAt = epochNow();
          await victim.crash();
          const taken = await waiting;
          await waiter.call('release', { keys: [key] });
          afterKill.push((taken.acquiredAt[0] as number) - killedAt);
          afterLeaseStart.push((taken.acquiredAt[0] as number) - (acquiredAt[0] as number));
        }
        record(kind, 'holder-crash', {
          leaseMs,
          trials: profile.crashTrials,
          acquiredAfterKillMs: summarize(afterKill),
          acquiredAfterLeaseStartMs: summarize(afterLeaseStart),
          boundMs: leaseMs + profile.crashSlackMs,
        });
        for (const delay of afterKill) expect(delay).toBeLessThanOrEqual(leaseMs + profile.crashSlackMs);
      },
    );
  });
}
