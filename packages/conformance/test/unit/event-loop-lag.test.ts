import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { backendCallStarted, lagSince, readLagSince, watchEventLoopLag } from '../../src/internal/event-loop-lag.js';
import { sleep } from '../../src/internal/timing.js';

/** Holds the event loop (and a CPU) for `ms`, as CPU starvation or a blocking backend would. */
function busyFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // Spin.
  }
}

/** Blocks the thread for `ms` without using the CPU, as a synchronous sleep or disk read does. */
function blockFor(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Has a child stop this whole process for `ms` (SIGSTOP, then SIGCONT) while its event loop
 * waits idle, as a machine that does not schedule the process does.
 */
async function descheduledFor(ms: number): Promise<void> {
  const script = `sleep 0.05; kill -STOP ${process.pid}; sleep ${ms / 1000}; kill -CONT ${process.pid}`;
  const stopper = spawn('sh', ['-c', script], { stdio: 'ignore' });
  await new Promise<void>((resolve) => stopper.on('exit', () => resolve()));
}

async function watching(work: () => Promise<void>): Promise<void> {
  const stop = watchEventLoopLag();
  try {
    await sleep(30);
    await work();
  } finally {
    stop();
  }
}

describe('event-loop lag', () => {
  it('reports a stall while no backend call is in progress as outside lag', async () => {
    await watching(async () => {
      const startedAt = performance.now();
      busyFor(150);
      await sleep(30);
      const lag = readLagSince(startedAt);
      expect(lag.outsideMs, JSON.stringify(lag)).toBeGreaterThanOrEqual(100);
      expect(lag.totalMs).toBeGreaterThanOrEqual(lag.outsideMs);
      await sleep(30);
      expect(lagSince(performance.now())).toBeLessThan(100);
    });
  });

  it('does not count a stall the backend causes inside its own call (CPU busy) as outside lag', async () => {
    await watching(async () => {
      const startedAt = performance.now();
      const ended = backendCallStarted();
      busyFor(150);
      ended();
      await sleep(30);
      const lag = readLagSince(startedAt);
      expect(lag.totalMs, JSON.stringify(lag)).toBeGreaterThanOrEqual(100);
      expect(lag.outsideMs, JSON.stringify(lag)).toBeLessThan(50);
    });
  });

  it('counts a stall that ended before the first backend call of the interval began as outside lag', async () => {
    await watching(async () => {
      const startedAt = performance.now();
      busyFor(150);
      const ended = backendCallStarted();
      await sleep(30);
      ended();
      const lag = readLagSince(startedAt);
      expect(lag.outsideMs, JSON.stringify(lag)).toBeGreaterThanOrEqual(100);
    });
  });

  it('does not count a backend call that blocks the thread without using the CPU as outside lag', async () => {
    await watching(async () => {
      const startedAt = performance.now();
      const ended = backendCallStarted();
      blockFor(150);
      ended();
      await sleep(30);
      const lag = readLagSince(startedAt);
      expect(lag.totalMs, JSON.stringify(lag)).toBeGreaterThanOrEqual(100);
      expect(lag.outsideMs, JSON.stringify(lag)).toBeLessThan(50);
    });
  });

  it.skipIf(process.platform === 'win32')(
    'counts the process not being scheduled while a backend call waits (the loop idle) as outside lag',
    async () => {
      await watching(async () => {
        const startedAt = performance.now();
        const ended = backendCallStarted();
        await descheduledFor(200);
        ended();
        await sleep(30);
        const lag = readLagSince(startedAt);
        expect(lag.outsideMs, JSON.stringify(lag)).toBeGreaterThanOrEqual(100);
      });
    },
  );

  it('reports no lag while nobody watches', () => {
    expect(lagSince(0)).toBe(0);
  });
});
