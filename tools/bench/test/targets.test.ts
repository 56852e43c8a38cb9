import { describe, expect, it } from 'vitest';
import { dataGoals } from '../suites/kv-cases.js';
import { checkCase, CODEC_GOAL, ISSUE_TARGETS, JSON_SHAPED_VALUES, KEYV_GOAL, RAW_GOAL, unmatchedGoals } from '../report/targets.js';
import { caseResult, contender, dataCases, suiteResult } from './fixtures.js';

const DATA_SUITES = [
  ['redis', 'raw ioredis'],
  ['memcached', 'raw memjs'],
  ['mongo', 'raw mongodb'],
  ['postgres', 'raw pg'],
  ['sqlite', 'raw better-sqlite3'],
] as const;

describe('the goals', () => {
  it.each(DATA_SUITES)(
    '%s: latchkey ≥ 0.95× the raw driver and ≥ 1.00× keyv on get, set and getMany at 1 and 64 in flight',
    (suite, raw) => {
      const goals = unmatchedGoals(suiteResult(suite, [])).filter(
        (g) => g.ratio !== undefined && g.ratio.contender === 'latchkey' && /in flight$/.test(g.caseLabel),
      );
      const byCase = goals.map((g) => `${g.caseLabel}: ${g.ratio?.reference} ${g.ratio?.min}`);
      expect(byCase).toEqual(
        ['get', 'set', 'getMany(…)'].flatMap((op) =>
          [1, 64].flatMap((level) => [`${op}, ${level} in flight: ${raw} ${RAW_GOAL}`, `${op}, ${level} in flight: keyv ${KEYV_GOAL}`]),
        ),
      );
    },
  );

  it('has no two thresholds for the same contender, reference and case', () => {
    const cases = [
      ...DATA_SUITES.flatMap(([suite, raw]) => dataCases(raw, 1, 1).map((c) => [suite, c] as const)),
      ...JSON_SHAPED_VALUES.map((value) => ['codec', caseResult(`${value}: round trip`, [])] as const),
      ...['get', 'set', 'getMany(100)'].map((name) => ['memory', caseResult(name, [])] as const),
    ];
    for (const [suite, result] of cases) {
      const applying = ISSUE_TARGETS.filter(
        (t) =>
          t.ratio !== undefined &&
          t.suite === suite &&
          (typeof t.caseName === 'string' ? t.caseName === result.name : t.caseName.test(result.name)),
      );
      const pairs = applying.map((t) => `${t.ratio?.contender}/${t.ratio?.reference}`);
      expect(new Set(pairs).size, `${suite} ${result.name}: ${pairs.join(', ')}`).toBe(pairs.length);
      expect(applying.length, `${suite} ${result.name}`).toBeGreaterThan(0);
    }
  });

  it('lists the codec goal for each JSON-shaped value and the memory goals against Map + v8 copy', () => {
    const codec = unmatchedGoals(suiteResult('codec', []));
    expect(codec.map((g) => [g.caseLabel, g.ratio?.contender, g.ratio?.reference, g.ratio?.min])).toEqual(
      JSON_SHAPED_VALUES.map((value) => [`${value}: round trip`, 'tagged', 'JSON', CODEC_GOAL]),
    );
    const memory = unmatchedGoals(suiteResult('memory', []));
    expect(memory.filter((g) => g.ratio !== undefined).map((g) => [g.caseLabel, g.ratio?.reference, g.ratio?.min])).toEqual([
      ['get', 'Map + v8 copy', 0.95],
      ['set', 'Map + v8 copy', 0.95],
      ['getMany(…)', 'Map + v8 copy', 0.95],
    ]);
    expect(memory.some((g) => /0 lost updates/.test(g.label))).toBe(true);
  });

  it('keeps the lock goals of the redis suite', () => {
    const labels = unmatchedGoals(suiteResult('redis', [])).map((g) => g.label);
    expect(labels).toEqual(
      expect.arrayContaining([
        'latchkey: ≤ 6 commands sent per locked increment at 16 processes × 8 waiters on one key',
        'latchkey: hand-over p50 to another process ≤ the best of redlock and redis-semaphore in the same run',
        'latchkey locked-increment throughput across 4 processes ≥ redlock (≥ 1.00×)',
        'latchkey locked-increment throughput across 4 processes ≥ redis-semaphore (≥ 1.00×)',
      ]),
    );
  });
});

describe('checkCase on the data cases', () => {
  it('passes at 0.96× the raw driver and fails at 0.94×, from the per-round rates', () => {
    for (const [share, status] of [
      [0.96, 'pass'],
      [0.94, 'fail'],
    ] as const) {
      const [get] = dataCases('raw ioredis', share, 1.5);
      const checked = checkCase('redis', get ?? caseResult('none', []));
      expect(checked.issue.map((t) => [t.label, t.verdict.status])).toEqual([
        ['latchkey ≥ 0.95× raw ioredis', status],
        ['latchkey ≥ 1.00× keyv', 'pass'],
      ]);
    }
  });

  it('prints a ratio that rounds to the threshold with 3 decimals, derived or recorded as the threshold text', () => {
    const [near] = dataCases('raw pg', 0.949, 1.5);
    const derived = checkCase('postgres', near ?? caseResult('none', [])).issue.find((t) => t.label.endsWith('raw pg'));
    expect(derived?.verdict).toEqual({ status: 'fail', measured: '0.949×', source: 'derived' });

    const recordedNear = near ?? caseResult('none', []);
    const label = derived?.label ?? '';
    const recorded = checkCase('postgres', { ...recordedNear, targets: [{ label, pass: false, actual: '0.95×' }] }).issue.find(
      (t) => t.label === label,
    );
    expect(recorded?.verdict).toEqual({ status: 'fail', measured: '0.949×', source: 'harness' });
  });

  it('fails the keyv goal where keyv is faster, and says why it is not measured where keyv cannot run', () => {
    const [faster] = dataCases('raw memjs', 1, 0.8);
    const keyvGoal = checkCase('memcached', faster ?? caseResult('none', [])).issue.find((t) => t.label.endsWith('keyv'));
    expect(keyvGoal?.verdict).toEqual({ status: 'fail', measured: '0.80×', source: 'derived' });

    const [missing] = dataCases('raw mongodb', 1, '@keyv/mongo needs a TTL index');
    const absent = checkCase('mongo', missing ?? caseResult('none', [])).issue.find((t) => t.label.endsWith('keyv'));
    expect(absent?.verdict).toEqual({ status: 'not measured', reason: 'keyv did not run: @keyv/mongo needs a TTL index' });
  });

  it('takes the verdicts the suites record (their labels are the goals’) instead of deriving them', () => {
    const labels = dataGoals('raw pg').map((t) => t.label);
    const recorded = caseResult(
      'set, 64 in flight',
      [contender('latchkey', [1]), contender('raw pg', [1], true), contender('keyv', [1])],
      labels.map((label) => ({ label, pass: false, actual: 'recorded' })),
    );
    const checked = checkCase('postgres', recorded);
    expect(checked.issue.map((t) => t.verdict)).toEqual(labels.map(() => ({ status: 'fail', measured: 'recorded', source: 'harness' })));
    expect(checked.other).toEqual([]);
  });

  it('does not apply the hand-over goal to the one-process case, which has no hand-over to another process', () => {
    const one = checkCase('redis', caseResult('cross-process locked increment: 1 processes × 8 waiters', [contender('latchkey', [1])]));
    const four = checkCase('redis', caseResult('cross-process locked increment: 4 processes × 8 waiters', [contender('latchkey', [1])]));
    expect(one.issue.some((t) => /hand-over/.test(t.label))).toBe(false);
    expect(four.issue.some((t) => /hand-over/.test(t.label))).toBe(true);
  });
});
