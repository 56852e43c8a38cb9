import { describe, expect, it } from 'vitest';
import { peersFaster } from '../report/peers.js';
import { caseResult, contender, dataCases, suiteResult } from './fixtures.js';

describe('peersFaster', () => {
  const lockCase = (share: number) =>
    caseResult('cross-process locked increment: 8 processes × 8 waiters', [
      contender('latchkey', [100 * share, 110 * share, 90 * share], true),
      contender('redlock', [100, 110, 90]),
      contender('redis-semaphore', [50, 55, 45]),
    ]);

  it('lists a peer faster than latchkey on a case no goal compares them on, with each run’s ratio', () => {
    const runs = [[suiteResult('redis', [lockCase(0.5)])], [suiteResult('redis', [lockCase(1.5)])]];
    expect(peersFaster(runs)).toEqual([
      {
        suite: 'redis',
        caseName: 'cross-process locked increment: 8 processes × 8 waiters',
        peer: 'redlock',
        latchkey: 'latchkey',
        ratios: [0.5, 1.5],
      },
    ]);
  });

  it('leaves out the peers latchkey beat in every run, and the pairs a goal already covers', () => {
    expect(peersFaster([[suiteResult('redis', [lockCase(2.1)])]])).toEqual([]);
    // keyv faster on every data case, but each has its keyv goal in the goals table.
    expect(peersFaster([[suiteResult('redis', dataCases('raw ioredis', 1, 0.5))]])).toEqual([]);
  });

  it('covers the memory suite’s keyv, which has no goal', () => {
    const memory = suiteResult('memory', [
      caseResult('get', [contender('latchkey', [90]), contender('Map + v8 copy', [100], true), contender('keyv', [120])]),
    ]);
    expect(peersFaster([[memory]]).map((p) => [p.caseName, p.peer, p.ratios[0]?.toFixed(2)])).toEqual([['get', 'keyv', '0.75']]);
  });
});
