import { describe, expect, it } from 'vitest';
import { doubleGrants, fenceRegressions, holdEnd, longestGap, lostWrites } from '../scenarios/failover-analysis.js';
import type { HoldRecord } from '../worker/failover-commands.js';

/** A hold of `key` asked for at `asked`, granted at `granted`, let go at `released`. */
function hold(key: string, asked: number, granted: number, released: number, fence: string | null, acked: number[] = [1]): HoldRecord {
  return {
    key,
    acquireStartedAt: asked,
    acquiredAt: granted,
    releaseStartedAt: released,
    fence,
    acked: acked.map((value, i) => [value, granted + i]),
    unsure: [],
  };
}

describe('holdEnd', () => {
  it('ends at the release, or at the lease counted from the request, whichever is first', () => {
    expect(holdEnd(hold('k', 0, 5, 50, '1'), 100)).toBe(50);
    expect(holdEnd(hold('k', 0, 5, 500, '1'), 100)).toBe(100);
  });
});

describe('doubleGrants', () => {
  it('finds holds of one key with acknowledged writes at overlapping times', () => {
    const a = hold('k', 0, 10, 30, '1');
    const b = hold('k', 5, 20, 40, '2');
    expect(doubleGrants([a, b], 1_000)).toEqual([[a, b]]);
  });

  it('ignores back-to-back holds, other keys, holds without acknowledged writes and lapsed leases', () => {
    const first = hold('k', 0, 10, 30, '1');
    const next = hold('k', 15, 30, 40, '2');
    const otherKey = hold('j', 0, 12, 35, '1');
    const refused = hold('k', 0, 12, 35, '3', []);
    // Its lease ran out at 0 + 100; the next holder got the lock after that.
    const lapsed = hold('k', 0, 45, 400, '4');
    const successor = hold('k', 101, 150, 160, '5');
    expect(doubleGrants([first, next, otherKey, refused, lapsed, successor], 100)).toEqual([]);
  });

  it('counts each overlapping pair', () => {
    const holds = [hold('k', 0, 10, 100, '1'), hold('k', 0, 20, 100, '2'), hold('k', 0, 30, 100, '3')];
    expect(doubleGrants(holds, 1_000)).toHaveLength(3);
  });
});

describe('fenceRegressions', () => {
  it('flags a token not above one granted before it was asked for', () => {
    const first = hold('k', 0, 10, 20, '7');
    const later = hold('k', 30, 40, 50, '7');
    const lower = hold('k', 60, 70, 80, '3');
    const regressions = fenceRegressions([first, later, lower]);
    expect(regressions.map((r) => [r.earlier, r.later])).toEqual([
      [7n, later],
      [7n, lower],
    ]);
  });

  it('accepts rising tokens, concurrent requests in any order, other keys and holds without tokens', () => {
    const holds = [
      hold('k', 0, 10, 20, '1'),
      // Asked before the first grant arrived: any token is fine.
      hold('k', 5, 30, 40, '1'),
      hold('k', 35, 50, 60, '2'),
      hold('j', 100, 110, 120, '1'),
      hold('k', 200, 210, 220, null),
    ];
    expect(fenceRegressions(holds)).toEqual([]);
  });

  it('compares tokens beyond 2^53 exactly', () => {
    expect(fenceRegressions([hold('k', 0, 1, 2, '9007199254740993'), hold('k', 3, 4, 5, '9007199254740992')])).toHaveLength(1);
  });
});

describe('lostWrites', () => {
  it('counts nothing lost when every value is unique and within the final value', () => {
    const holds = [hold('k', 0, 1, 2, '1', [1, 2]), hold('k', 3, 4, 5, '2', [3, 4])];
    expect(lostWrites(holds, new Map([['k', 4]]))).toEqual({ acknowledged: 4, lost: 0 });
  });

  it('counts repeated values and values above the final one', () => {
    // 3 and 4 were acknowledged, then lost: the counter went back to 2 and 3, 4 were written again, then 5 was lost too.
    const holds = [
      hold('k', 0, 1, 2, '1', [1, 2]),
      hold('k', 3, 4, 5, '2', [3, 4]),
      hold('k', 6, 7, 8, '3', [3, 4]),
      hold('k', 9, 10, 11, '4', [5]),
    ];
    expect(lostWrites(holds, new Map([['k', 4]]))).toEqual({ acknowledged: 7, lost: 3 });
  });

  it('counts only repeats when the final value is unknown', () => {
    const holds = [hold('k', 0, 1, 2, '1', [1]), hold('k', 3, 4, 5, '2', [1]), hold('k', 6, 7, 8, '3', [2])];
    expect(lostWrites(holds, new Map([['k', undefined]]))).toEqual({ acknowledged: 3, lost: 1 });
  });
});

describe('longestGap', () => {
  it('is the longest stretch without an acknowledged write, the window edges included', () => {
    const holds = [hold('k', 0, 100, 110, '1', [1]), hold('k', 0, 400, 410, '2', [2])];
    expect(longestGap(holds, 0, 1_000)).toBe(600);
    expect(longestGap([], 0, 50)).toBe(50);
  });
});
