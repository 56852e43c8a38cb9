import { describe, expect, it } from 'vitest';
import { lagSince, watchEventLoopLag } from '../../src/internal/event-loop-lag.js';
import { sleep } from '../../src/internal/timing.js';

describe('event-loop lag', () => {
  it('reports a stall of the event loop that happened after the given moment', async () => {
    const stop = watchEventLoopLag();
    try {
      await sleep(30);
      const startedAt = performance.now();
      const busyUntil = performance.now() + 150;
      while (performance.now() < busyUntil) {
        // Hold the event loop, as CPU starvation would.
      }
      await sleep(30);
      expect(lagSince(startedAt)).toBeGreaterThanOrEqual(100);
      await sleep(30);
      expect(lagSince(performance.now())).toBeLessThan(100);
    } finally {
      stop();
    }
  });

  it('reports no lag while nobody watches', () => {
    expect(lagSince(0)).toBe(0);
  });
});
