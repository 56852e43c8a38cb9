/**
 * Paused holder: a holder frozen past its lease (SIGSTOP; in-process, a blocked event loop)
 * comes back and tries to write and delete. Every attempt must be refused — through the
 * store, and straight at the backend with the old lease (so the refusal is the server's,
 * not the client clock's) — and the newer holder's value must survive.
 *
 * @module
 */
import { describe, expect, it } from 'vitest';
import { leaseFor } from '../backends.js';
import { share } from '../profiles.js';
import { record, summarize } from '../stats.js';
import type { SuiteContext } from '../context.js';
import type { StaleReport } from '../worker/commands.js';

/** Registers the paused-holder scenario. */
export function definePausedHolderTests(context: SuiteContext): void {
  const { profile, kind } = context;

  describe('paused holder', () => {
    it(
      `refuses every write and delete of a holder frozen past its lease (${profile.pausedTrials} trials in ${profile.pausedRounds} freezes), keeping the newer value`,
      { timeout: 300_000 },
      async () => {
        const [holder, successor] = context.cluster().workers;
        if (holder === undefined || successor === undefined) throw new Error('needs two workers');
        const leaseMs = leaseFor(context.capabilities(), profile.leaseMs);
        const perRound = share(profile.pausedTrials, profile.pausedRounds);
        const stale: StaleReport[] = [];
        const takeoverMs: number[] = [];
        const freezeMs: number[] = [];
        let intact = 0;
        let trial = 0;
        for (let round = 0; round < profile.pausedRounds; round += 1) {
          const keys = Array.from({ length: perRound[round] as number }, () => `paused:${trial++}`);
          const { acquiredAt } = await holder.call('hold', { keys, value: `old-${round}`, waitMs: 5000, lockTimeoutMs: leaseMs });
          const frozen = leaseMs + 50 + Math.round(Math.random() * 200);
          freezeMs.push(frozen);
          await holder.freeze(frozen, async () => {
            const taken = await successor.call('hold', { keys, value: `new-${round}`, waitMs: leaseMs * 3 + 5000 });
            takeoverMs.push(...taken.acquiredAt.map((at, i) => at - (acquiredAt[i] as number)));
            await successor.call('release', { keys });
          });
          stale.push(...(await holder.call('stale', { keys, value: `late-${round}` })));
          await holder.call('release', { keys });
          const values = await successor.call('read', { keys });
          intact += values.filter((read) => read.outcome === 'ok' && read.value === `new-${round}`).length;
        }
        const refused = stale.filter(
          (s) =>
            s.storeSet === 'LOCK_TIMEOUT' && s.storeDelete === 'LOCK_TIMEOUT' && s.rawSet === 'lease-lost' && s.rawDelete === 'lease-lost',
        );
        record(kind, 'paused-holder', {
          leaseMs,
          trials: stale.length,
          freezes: profile.pausedRounds,
          refused: refused.length,
          newerValueIntact: intact,
          freezeMs: summarize(freezeMs),
          takeoverAfterLeaseStartMs: summarize(takeoverMs),
        });
        expect(stale).toHaveLength(profile.pausedTrials);
        expect(stale.filter((s) => !refused.includes(s))).toEqual([]);
        expect(intact).toBe(profile.pausedTrials);
      },
    );
  });
}
