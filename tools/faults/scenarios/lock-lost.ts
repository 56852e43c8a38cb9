/**
 * Lock lost on the server: the server forgets every lease (flush / drop / restart without
 * persistence) while the client still believes it holds the lock. The next locked write must
 * be refused by the server, and an `autoExtend` lock's signal must abort when a renewal finds
 * the lease gone.
 *
 * @module
 */
import { describe, expect, it } from 'vitest';
import { leaseFor } from '../backends.js';
import { record } from '../stats.js';
import type { SuiteContext } from '../context.js';
import { epochNow, sleep } from '../worker/outcome.js';

const HOW: Record<string, string> = {
  memory: 'MemoryBackend.flush()',
  redis: 'FLUSHALL',
  memcached: 'flush_all',
  mongo: 'dropping the collection',
  sqlite: 'deleting the table’s rows',
};

/** Registers the lock-lost scenarios on the suite's shared server. */
export function defineLockLostTests(context: SuiteContext): void {
  const { kind } = context;
  const how = HOW[kind] ?? 'losing the data';

  describe('lock lost on the server', () => {
    it(`refuses the next locked write after ${how}, although the client lock has not expired`, { timeout: 60_000 }, async () => {
      const [holder] = context.cluster().workers;
      if (holder === undefined) throw new Error('needs a worker');
      const keys = ['lost:1', 'lost:2', 'lost:3'];
      // A long lease: the client-side expiry check passes, so only the server can refuse.
      await holder.call('hold', { keys, value: 'before', waitMs: 5000, lockTimeoutMs: 30_000 });
      await context.loseData();
      const outcomes = await holder.call('lockedWrite', { keys, value: 'after', retryForMs: 5000 });
      const reads = await holder.call('read', { keys });
      await holder.call('release', { keys });
      record(kind, 'lock-lost', { how, lockedWrites: outcomes, readsAfter: reads.map((r) => r.outcome) });
      expect(outcomes).toEqual(keys.map(() => 'LOCK_TIMEOUT'));
      expect(reads.map((r) => r.outcome)).toEqual(keys.map(() => 'NOT_FOUND'));
    });

    it(`aborts an autoExtend lock's signal when a renewal finds the lease gone after ${how}`, { timeout: 60_000 }, async () => {
      const [holder] = context.cluster().workers;
      if (holder === undefined) throw new Error('needs a worker');
      const leaseMs = leaseFor(context.capabilities(), 3000);
      const safety = context.settings.lockSafetyWindowMs;
      const key = 'lost:auto';
      const { acquiredAt } = await holder.call('hold', { keys: [key], value: 'v', waitMs: 5000, lockTimeoutMs: leaseMs, autoExtend: true });
      // Let one renewal succeed first, so the abort is caused by the loss, not by a broken extend.
      const renewEveryMs = Math.floor((leaseMs - safety) / 3);
      await sleep(renewEveryMs + 100);
      const [before] = await holder.call('signals', { keys: [key] });
      const lostAt = epochNow();
      await context.loseData();
      let state = before;
      while (state?.aborted !== true && epochNow() - lostAt < leaseMs + 2000) {
        await sleep(25);
        [state] = await holder.call('signals', { keys: [key] });
      }
      const outcomes = await holder.call('lockedWrite', { keys: [key], value: 'after', retryForMs: 2000 });
      await holder.call('release', { keys: [key] });
      const abortedAfterLossMs = state?.abortedAt === undefined ? undefined : Math.round(state.abortedAt - lostAt);
      const abortedAfterAcquireMs = state?.abortedAt === undefined ? undefined : Math.round(state.abortedAt - (acquiredAt[0] as number));
      record(kind, 'lock-lost-autoextend', {
        how,
        leaseMs,
        renewEveryMs,
        reason: state?.reason,
        abortedAfterLossMs,
        abortedAfterAcquireMs,
        lockedWriteAfter: outcomes[0],
      });
      expect(before?.aborted).toBe(false);
      expect(state?.aborted).toBe(true);
      expect(state?.reason).toBe('LOCK_TIMEOUT');
      // Found lost by the second renewal (at ~2 renewal periods), not by the client-side
      // expiry of the once-renewed lock (at ~4 periods).
      expect(abortedAfterAcquireMs).toBeLessThan(renewEveryMs * 3.5);
      expect(abortedAfterLossMs).toBeLessThanOrEqual(renewEveryMs + 500);
      expect(outcomes).toEqual(['LOCK_TIMEOUT']);
    });
  });
}
