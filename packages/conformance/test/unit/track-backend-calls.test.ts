import type { Backend } from '@latchkey/core';
import { MemoryBackend } from '@latchkey/memory';
import { describe, expect, it } from 'vitest';
import { readLagSince, watchEventLoopLag } from '../../src/internal/event-loop-lag.js';
import { sleep } from '../../src/internal/timing.js';
import { trackBackendCalls } from '../../src/internal/track-backend-calls.js';

function busyFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // Spin.
  }
}

/** A backend whose get holds the event loop, with a private field its methods need. */
class SlowBackend extends MemoryBackend {
  readonly #blockMs: number;

  constructor(blockMs: number) {
    super();
    this.#blockMs = blockMs;
  }

  override async get(key: string): Promise<Uint8Array | undefined> {
    busyFor(this.#blockMs);
    return super.get(key);
  }

  async *slowKeys(): AsyncIterable<string> {
    busyFor(this.#blockMs);
    yield 'k';
  }
}

describe('trackBackendCalls', () => {
  it('keeps the backend itself: identity, class, private fields and answers', async () => {
    const backend = new SlowBackend(0);
    const tracked = trackBackendCalls(backend as Backend);
    expect(tracked).toBe(backend);
    expect(tracked).toBeInstanceOf(SlowBackend);
    expect(await tracked.set('k', Uint8Array.of(1))).toBe('written');
    expect(await tracked.get('k')).toStrictEqual(Uint8Array.of(1));
    expect(trackBackendCalls(tracked)).toBe(backend);
    await tracked.close();
  });

  it('passes a rejection on to the caller', async () => {
    const backend = trackBackendCalls(new MemoryBackend() as Backend);
    await backend.close();
    await expect(backend.get('k')).rejects.toThrow();
  });

  it('makes event-loop lag inside a call, or inside a step of an async iterable it returns, the backend’s own', async () => {
    const stop = watchEventLoopLag();
    try {
      const backend = trackBackendCalls(new SlowBackend(150));
      await sleep(30);
      let startedAt = performance.now();
      await backend.get('k');
      await sleep(30);
      let lag = readLagSince(startedAt);
      expect(lag.totalMs, JSON.stringify(lag)).toBeGreaterThanOrEqual(100);
      expect(lag.outsideMs, JSON.stringify(lag)).toBeLessThan(50);

      startedAt = performance.now();
      for await (const key of backend.slowKeys()) expect(key).toBe('k');
      await sleep(30);
      lag = readLagSince(startedAt);
      expect(lag.totalMs, JSON.stringify(lag)).toBeGreaterThanOrEqual(100);
      expect(lag.outsideMs, JSON.stringify(lag)).toBeLessThan(50);
      await backend.close();
    } finally {
      stop();
    }
  });
});
