/**
 * Peers faster than latchkey where no goal compares them: keyv, redlock and redis-semaphore are
 * the libraries a reader would pick instead, so every case where one of them beats latchkey is
 * listed beside the goals, goal or not (the goals table has the cases a goal covers).
 *
 * @module
 */
import { pairedRatio, type SuiteResult } from '../harness/index.js';
import { hasRatioGoal } from './targets.js';

/** The libraries latchkey is compared with as a peer (raw drivers are baselines, not peers). */
export const PEERS: readonly string[] = ['keyv', 'redlock', 'redis-semaphore'];

/** latchkey against a peer on one case without a goal for that pair, in each run. */
export interface PeerComparison {
  readonly suite: string;
  readonly caseName: string;
  readonly peer: string;
  /** The latchkey contender (`latchkey`, `latchkey withLock`). */
  readonly latchkey: string;
  /** latchkey's rate over the peer's (median of the paired per-round ratios), per run; `undefined`: not measured in that run. */
  readonly ratios: readonly (number | undefined)[];
}

function rates(suite: SuiteResult, caseName: string, contender: string): number[] | undefined {
  const found = suite.cases.find((c) => c.name === caseName)?.contenders.find((c) => c.name === contender);
  return found?.opsPerSec === undefined ? undefined : found.rounds.map((r) => r.opsPerSec);
}

/**
 * The comparisons of latchkey with a peer on cases no goal covers for that peer, over the runs
 * (`runs[i]`: the suites of run i), kept where latchkey was slower in at least one run.
 */
export function peersFaster(runs: readonly (readonly SuiteResult[])[]): PeerComparison[] {
  const found = new Map<string, { suite: string; caseName: string; peer: string; latchkey: string }>();
  for (const suites of runs)
    for (const suite of suites) {
      if (suite.skipped !== undefined) continue;
      for (const result of suite.cases) {
        const latchkey = result.contenders.find((c) => c.name.startsWith('latchkey'))?.name;
        if (latchkey === undefined) continue;
        for (const contender of result.contenders) {
          if (!PEERS.includes(contender.name) || hasRatioGoal(suite.name, result.name, contender.name)) continue;
          const key = [suite.name, result.name, contender.name].join('\u0000');
          if (!found.has(key)) found.set(key, { suite: suite.name, caseName: result.name, peer: contender.name, latchkey });
        }
      }
    }
  return [...found.values()]
    .map((pair) => ({
      ...pair,
      ratios: runs.map((suites) => {
        const suite = suites.find((s) => s.name === pair.suite);
        if (suite === undefined) return undefined;
        const own = rates(suite, pair.caseName, pair.latchkey);
        const peer = rates(suite, pair.caseName, pair.peer);
        return own === undefined || peer === undefined ? undefined : pairedRatio(own, peer);
      }),
    }))
    .filter((pair) => pair.ratios.some((ratio) => ratio !== undefined && ratio < 1));
}
