import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { backendCallStarted, backendCodeEntered, lagSince, readLagSince, watchEventLoopLag } from '../../src/internal/event-loop-lag.js';
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
 * waits idle, as a machine that does not schedule the process does. Resolves with how long the
 * event loop was idle meanwhile: less than `ms` when the stop landed while the loop ran code
 * (the test runner's own work, say), which is a stall of code, not of an idle loop.
 */
async function descheduledFor(ms: number): Promise<number> {
  const before = performance.eventLoopUtilization();
  const script = `sleep 0.05; kill -STOP ${process.pid}; sleep ${ms / 1000}; kill -CONT ${process.pid}`;
  const stopper = spawn('sh', ['-c', script], { stdio: 'ignore' });
  await new Promise<void>((resolve) => stopper.on('exit', () => resolve()));
  return performance.eventLoopUtilization(before).idle;
}

/** Spins until this process has used `ms` of CPU time (a backend computing), however long that takes. */
function computeFor(ms: number): void {
  const start = process.cpuUsage();
  const used = (): number => {
    const now = process.cpuUsage(start);
    return (now.user + now.system) / 1000;
  };
  while (used() < ms) {
    // Spin.
  }
}

/** Whether this thread's run-queue wait can be read (Linux). */
function schedstatReadable(): boolean {
  try {
    readFileSync('/proc/thread-self/schedstat', 'latin1');
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts two CPU-bound processes per core for `ms`, so that this thread, when runnable, waits
 * for a CPU about two thirds of the time; resolves once they run.
 */
async function hogCpus(ms: number): Promise<ChildProcess[]> {
  const count = Math.min(16, 2 * availableParallelism());
  const script = `process.stdout.write('go'); const end = Date.now() + ${ms}; while (Date.now() < end) {}`;
  const hogs = Array.from({ length: count }, () => spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'ignore'] }));
  await Promise.all(hogs.map((hog) => new Promise<void>((resolve) => hog.stdout?.once('data', () => resolve()))));
  return hogs;
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
      const left = backendCodeEntered();
      busyFor(150);
      left();
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
      const left = backendCodeEntered();
      blockFor(150);
      left();
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
        // Whether the stop lands while the loop is idle is up to the machine; a stop that landed
        // while code ran is not this case (the loop was busy), so it is made again, at most 5 times.
        for (let attempt = 1; ; attempt++) {
          const startedAt = performance.now();
          const ended = backendCallStarted();
          const idleMs = await descheduledFor(200);
          ended();
          await sleep(30);
          const lag = readLagSince(startedAt);
          if (idleMs >= 200 || attempt === 5) {
            expect(idleMs, `the stop landed while the loop ran code in all ${attempt} attempts`).toBeGreaterThanOrEqual(200);
            expect(lag.outsideMs, JSON.stringify({ ...lag, idleMs, attempt })).toBeGreaterThanOrEqual(100);
            break;
          }
          console.log(`attempt ${attempt}: the stop landed while the event loop ran code (idle ${idleMs.toFixed(1)} ms); stopping again`);
        }
      });
    },
  );

  it.runIf(schedstatReadable())(
    'counts the wait for a CPU during a backend call as outside lag while other code runs, not inside the backend’s own code',
    async () => {
      // One set of CPU hogs for both halves: they slow every other test running meanwhile.
      const hogs = await hogCpus(3000);
      try {
        await watching(async () => {
          let startedAt = performance.now();
          let ended = backendCallStarted();
          computeFor(100);
          ended();
          await sleep(30);
          const other = readLagSince(startedAt);
          // 100 ms of CPU at about a third of a core: about 200 ms of it waiting to run.
          expect(other.outsideMs, JSON.stringify(other)).toBeGreaterThanOrEqual(50);

          await sleep(30);
          startedAt = performance.now();
          ended = backendCallStarted();
          const left = backendCodeEntered();
          computeFor(100);
          left();
          ended();
          const own = readLagSince(startedAt);
          expect(own.totalMs, JSON.stringify(own)).toBeGreaterThanOrEqual(100);
          expect(own.outsideMs, JSON.stringify(own)).toBeLessThan(50);
        });
      } finally {
        for (const hog of hogs) hog.kill('SIGKILL');
      }
    },
  );

  it('reports no lag while nobody watches', () => {
    expect(lagSince(0)).toBe(0);
  });
});
