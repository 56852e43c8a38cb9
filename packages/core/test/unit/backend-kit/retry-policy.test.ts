import { afterEach, describe, expect, it, vi } from 'vitest';
import { backoffRetry, wakeUpRetry } from '../../../src/index.js';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('backoffRetry', () => {
  it('pauses minMs after the first failure and doubles up to maxMs (no jitter)', () => {
    const retry = backoffRetry({ minMs: 5, maxMs: 100, jitter: 0 });
    const pauses = [1, 2, 3, 4, 5, 6, 7, 50].map((failures) => retry({ failures, retryInMs: undefined }));
    expect(pauses).toStrictEqual([5, 10, 20, 40, 80, 100, 100, 100]);
  });

  it('stays at maxMs after very many failures (no overflow to Infinity or NaN)', () => {
    const retry = backoffRetry({ minMs: 5, maxMs: 100, jitter: 0 });
    expect(retry({ failures: 10_000, retryInMs: undefined })).toBe(100);
  });

  it('takes up to jitter of each pause off at random, 0.5 by default', () => {
    const random = vi.spyOn(Math, 'random');
    const retry = backoffRetry({ minMs: 40, maxMs: 1000 });
    random.mockReturnValue(0);
    expect(retry({ failures: 1, retryInMs: undefined })).toBe(40);
    random.mockReturnValue(0.5);
    expect(retry({ failures: 1, retryInMs: undefined })).toBe(30);
    random.mockReturnValue(0.999_999);
    const shortest = retry({ failures: 1, retryInMs: undefined });
    expect(shortest).toBeGreaterThan(20);
    expect(shortest).toBeLessThanOrEqual(40);
  });

  it('keeps every pause within [(1 - jitter) · pause, pause]', () => {
    const random = vi.spyOn(Math, 'random');
    const retry = backoffRetry({ minMs: 10, maxMs: 80, jitter: 0.25 });
    for (const draw of [0, 0.1, 0.5, 0.9, 0.999_999]) {
      random.mockReturnValue(draw);
      for (const [failures, full] of [
        [1, 10],
        [2, 20],
        [4, 80],
        [9, 80],
      ] as const) {
        const pause = retry({ failures, retryInMs: undefined });
        expect(pause).toBeGreaterThanOrEqual(full * 0.75);
        expect(pause).toBeLessThanOrEqual(full);
      }
    }
  });

  it("never pauses past the holder's lapse when the attempt reported it", () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const retry = backoffRetry({ minMs: 50, maxMs: 1000 });
    expect(retry({ failures: 5, retryInMs: 30 })).toBe(30);
    expect(retry({ failures: 5, retryInMs: 0 })).toBe(0);
    expect(retry({ failures: 1, retryInMs: 10_000 })).toBe(50);
    expect(retry({ failures: 1, retryInMs: Infinity })).toBe(50);
  });
});

describe('wakeUpRetry', () => {
  it("sleeps until woken or until the holder's lease lapses while releases are heard", () => {
    const retry = wakeUpRetry();
    expect(retry({ failures: 1, retryInMs: 1234 })).toBe(1234);
    expect(retry({ failures: 7, retryInMs: Infinity })).toBe(Infinity);
    expect(retry({ failures: 1, retryInMs: undefined })).toBe(Infinity);
  });

  it('looks again at least every fallbackMs while releases cannot be heard', () => {
    let hearing = false;
    const retry = wakeUpRetry({ hearing: () => hearing, fallbackMs: 100 });
    expect(retry({ failures: 1, retryInMs: undefined })).toBe(100);
    expect(retry({ failures: 1, retryInMs: Infinity })).toBe(100);
    expect(retry({ failures: 1, retryInMs: 40 })).toBe(40);
    hearing = true;
    expect(retry({ failures: 1, retryInMs: undefined })).toBe(Infinity);
  });

  it('falls back to 250 ms by default', () => {
    const retry = wakeUpRetry({ hearing: () => false });
    expect(retry({ failures: 1, retryInMs: undefined })).toBe(250);
  });
});
