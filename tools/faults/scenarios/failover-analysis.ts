/**
 * The verdicts of the failover scenario, computed from the holds the workers recorded: pure
 * functions over plain data, so they have tests of their own (test/failover-analysis.test.ts).
 *
 * Times are epoch milliseconds of one machine (every worker runs on it), so holds of
 * different processes compare directly.
 *
 * @module
 */
import type { HoldRecord } from '../worker/failover-commands.js';

/**
 * When a hold stopped counting as held: its release started, or its lease ran out (counted
 * from before the acquire was sent, so never later than the server's lapse), whichever came
 * first. A later holder of a lapsed lease is legitimate; one inside this window is not.
 */
export function holdEnd(hold: HoldRecord, leaseMs: number): number {
  return Math.min(hold.releaseStartedAt, hold.acquireStartedAt + leaseMs);
}

/**
 * Double grants: pairs of holds of one key that both had a write acknowledged while their
 * holder believed it held the lock — from the grant reaching the holder to the end of the
 * hold ({@link holdEnd}) — at overlapping times.
 */
export function doubleGrants(holds: readonly HoldRecord[], leaseMs: number): [HoldRecord, HoldRecord][] {
  const pairs: [HoldRecord, HoldRecord][] = [];
  for (const group of byKey(holds.filter((hold) => hold.acked.length > 0)).values()) {
    const sorted = [...group].sort((a, b) => a.acquiredAt - b.acquiredAt);
    const open: HoldRecord[] = [];
    for (const hold of sorted) {
      for (let i = open.length - 1; i >= 0; i--) if (holdEnd(open[i] as HoldRecord, leaseMs) <= hold.acquiredAt) open.splice(i, 1);
      for (const other of open) pairs.push([other, hold]);
      open.push(hold);
    }
  }
  return pairs;
}

/**
 * Fencing-token regressions: holds whose token is not above the token of every hold of the
 * same key that had been granted before this one was asked for (a grant its holder knew of
 * before the next request was even sent must be outranked). Holds without a token (redlock)
 * are skipped.
 */
export function fenceRegressions(holds: readonly HoldRecord[]): { readonly earlier: bigint; readonly later: HoldRecord }[] {
  const regressions: { earlier: bigint; later: HoldRecord }[] = [];
  for (const group of byKey(holds.filter((hold) => hold.fence !== null)).values()) {
    const granted = [...group].sort((a, b) => a.acquiredAt - b.acquiredAt);
    const asked = [...group].sort((a, b) => a.acquireStartedAt - b.acquireStartedAt);
    let highest: bigint | undefined;
    let next = 0;
    for (const hold of asked) {
      while (next < granted.length && (granted[next] as HoldRecord).acquiredAt < hold.acquireStartedAt) {
        const fence = BigInt((granted[next] as HoldRecord).fence as string);
        if (highest === undefined || fence > highest) highest = fence;
        next++;
      }
      if (highest !== undefined && BigInt(hold.fence as string) <= highest) regressions.push({ earlier: highest, later: hold });
    }
  }
  return regressions;
}

/** What became of the acknowledged writes of a counter. */
export interface WriteLosses {
  /** Acknowledged writes. */
  readonly acknowledged: number;
  /**
   * Acknowledged increments that do not count in the final value: each holder wrote its read
   * value + 1, so an increment that survived leaves its value unique and at most the final
   * value. A value acknowledged `n` times lost `n − 1` of them; a value above the final one
   * lost every acknowledgement. Writes of unknown outcome count neither way.
   */
  readonly lost: number;
}

/**
 * The acknowledged writes of each key that were lost, given each key's final value (`undefined`
 * when it could not be read: only duplicates are counted then).
 */
export function lostWrites(holds: readonly HoldRecord[], finals: ReadonlyMap<string, number | undefined>): WriteLosses {
  let acknowledged = 0;
  let lost = 0;
  for (const [key, group] of byKey(holds)) {
    const final = finals.get(key);
    const times = new Map<number, number>();
    for (const hold of group) {
      for (const [value] of hold.acked) times.set(value, (times.get(value) ?? 0) + 1);
    }
    for (const [value, count] of times) {
      acknowledged += count;
      lost += final !== undefined && value > final ? count : count - 1;
    }
  }
  return { acknowledged, lost };
}

/** The longest stretch in `[from, to]` without an acknowledged write, in ms. */
export function longestGap(holds: readonly HoldRecord[], from: number, to: number): number {
  const times = holds
    .flatMap((hold) => hold.acked.map(([, at]) => at))
    .filter((at) => at >= from && at <= to)
    .sort((a, b) => a - b);
  let longest = 0;
  let previous = from;
  for (const at of [...times, to]) {
    longest = Math.max(longest, at - previous);
    previous = at;
  }
  return longest;
}

function byKey(holds: readonly HoldRecord[]): Map<string, HoldRecord[]> {
  const groups = new Map<string, HoldRecord[]>();
  for (const hold of holds) {
    const group = groups.get(hold.key);
    if (group === undefined) groups.set(hold.key, [hold]);
    else group.push(hold);
  }
  return groups;
}
