import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { absoluteLeaseExptime, MAX_RELATIVE_EXPTIME } from '../../src/internal/expiry.js';
import { DRIFT, localNow, MAX_EDGE_WIDTH_MS, READ_EVERY_MS, ServerClock, type ClockReading } from '../../src/internal/server-clock.js';

const T0 = Date.UTC(2026, 0, 1);

/**
 * A model of memcached's clock, times in epoch ms of the local clock: the server's clock C runs
 * `offsetMs` ahead; its main thread refreshes `time = floor(C)` at ticks at least 1 s apart
 * (late by up to `lateMs` each), none while the server is stopped, and one right when it
 * resumes. A request sent while it is stopped is answered when it resumes, before that tick.
 */
class ModelServer {
  readonly #ticks: number[] = [];
  constructor(
    readonly offsetMs: number,
    phaseMs: number,
    lateMs: readonly number[],
    readonly stalls: readonly (readonly [number, number])[],
    untilMs: number,
    startMs = T0,
  ) {
    // It has been up for a while: its clock already shows a time when the readings start.
    let at = startMs - 10_000 + phaseMs;
    let late = 0;
    while (at < untilMs) {
      const stall = stalls.find(([from, to]) => at >= from && at < to);
      if (stall !== undefined) at = stall[1];
      this.#ticks.push(at);
      at += 1000 + (lateMs[late++ % lateMs.length] ?? 0);
    }
  }

  /** The `time` statistic as a request that reached the server at `arrivedAt` sees it, and when it is answered. */
  answer(arrivedAt: number): { time: number; at: number } {
    const stall = this.stalls.find(([from, to]) => arrivedAt >= from && arrivedAt < to);
    const at = stall === undefined ? arrivedAt : stall[1];
    // Served before the catch-up tick at the end of a stall: the tick strictly before `at` counts.
    const last = this.#ticks.filter((tick) => (stall === undefined ? tick <= at : tick < at)).at(-1) ?? Number.NaN;
    return { time: Math.floor((last + this.offsetMs) / 1000), at };
  }
}

/** Readings sent at `sentAt` with a one-way latency of `halfRttMs`. */
function readingsOf(server: ModelServer, sentAts: readonly number[], halfRttMs: number, instance = 'p1'): ClockReading[] {
  return sentAts.map((sentAt) => {
    const { time, at } = server.answer(sentAt + halfRttMs);
    return { serverTime: time, instance, sentAt, receivedAt: at + halfRttMs };
  });
}

function feed(clock: ServerClock, readings: readonly ClockReading[]): void {
  readings.forEach((reading, i) => clock.observe(reading, readings[i - 1]));
}

afterEach(() => {
  vi.useRealTimers();
});

describe('ServerClock bound', () => {
  it('never underestimates how far ahead the server clock is, whatever stalls and late ticks it went through', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -5000, max: 5000 }),
        fc.integer({ min: 0, max: 999 }),
        fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 5 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 20_000 }), fc.integer({ min: 100, max: 5000 })), { maxLength: 3 }),
        fc.array(fc.integer({ min: 10, max: 400 }), { minLength: 2, maxLength: 80 }),
        fc.integer({ min: 0, max: 30 }),
        (offsetMs, phaseMs, lateMs, stallSpecs, gaps, halfRttMs) => {
          const stalls = stallSpecs.map(([from, length]) => [T0 + from, T0 + from + length] as const);
          const server = new ModelServer(offsetMs, phaseMs, lateMs, stalls, T0 + 60_000);
          const sentAts: number[] = [];
          let at = T0 + 1;
          for (const gap of gaps) sentAts.push((at += gap));
          const clock = new ServerClock(() => Promise.reject(new Error('not used')));
          const readings = readingsOf(server, sentAts, halfRttMs);
          for (const [i, reading] of readings.entries()) {
            clock.observe(reading, readings[i - 1]);
            const bound = clock.offsetBound(reading.receivedAt);
            if (bound !== undefined) expect(bound * 1000).toBeGreaterThan(offsetMs);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('is within a second plus the readings’ distance of the true offset once the server ticks between two close readings', () => {
    for (const offsetMs of [-1234, 0, 420, 999]) {
      const server = new ModelServer(offsetMs, 300, [0], [], T0 + 10_000);
      const sentAts = Array.from({ length: 30 }, (_, i) => T0 + 1 + i * READ_EVERY_MS);
      const clock = new ServerClock(() => Promise.reject(new Error('not used')));
      feed(clock, readingsOf(server, sentAts, 1));
      const bound = clock.offsetBound(T0 + 2000) as number;
      expect(bound * 1000 - offsetMs).toBeGreaterThan(0);
      expect(bound * 1000 - offsetMs).toBeLessThan(1000 + READ_EVERY_MS + 2);
    }
  });

  it('takes no bound from readings further apart than the edge width, nor from two server processes', () => {
    const far: ClockReading[] = [
      { serverTime: 100, instance: 'p1', sentAt: T0, receivedAt: T0 + 1 },
      { serverTime: 101, instance: 'p1', sentAt: T0 + MAX_EDGE_WIDTH_MS, receivedAt: T0 + MAX_EDGE_WIDTH_MS + 1 },
    ];
    const restarted: ClockReading[] = [
      { serverTime: 100, instance: 'p1', sentAt: T0, receivedAt: T0 + 1 },
      { serverTime: 101, instance: 'p2', sentAt: T0 + 50, receivedAt: T0 + 51 },
    ];
    for (const readings of [far, restarted]) {
      const clock = new ServerClock(() => Promise.reject(new Error('not used')));
      feed(clock, readings);
      expect(clock.offsetBound(T0 + 100)).toBeUndefined();
    }
  });

  it('forgets its bound when another server process answers, or when told to', () => {
    const clock = new ServerClock(() => Promise.reject(new Error('not used')));
    const edge: ClockReading[] = [
      { serverTime: 100, instance: 'p1', sentAt: T0, receivedAt: T0 + 1 },
      { serverTime: 101, instance: 'p1', sentAt: T0 + 50, receivedAt: T0 + 51 },
    ];
    feed(clock, edge);
    expect(clock.offsetBound(T0 + 100)).toBeCloseTo(101 + 1 - T0 / 1000 + (DRIFT * 49) / 1000, 9);
    clock.observe({ serverTime: 500, instance: 'p2', sentAt: T0 + 200, receivedAt: T0 + 201 }, undefined);
    expect(clock.offsetBound(T0 + 300)).toBeUndefined();
    feed(clock, edge);
    clock.forget();
    expect(clock.offsetBound(T0 + 300)).toBeUndefined();
  });

  it('keeps the tightest bound, loosened by the allowed drift for its age', () => {
    const clock = new ServerClock(() => Promise.reject(new Error('not used')));
    feed(clock, [
      { serverTime: 100, instance: 'p1', sentAt: T0, receivedAt: T0 + 1 },
      { serverTime: 101, instance: 'p1', sentAt: T0 + 50, receivedAt: T0 + 51 },
    ]);
    const tight = 102 - T0 / 1000;
    // A later, looser edge (200 ms wide) does not replace it.
    feed(clock, [
      { serverTime: 110, instance: 'p1', sentAt: T0 + 9000, receivedAt: T0 + 9001 },
      { serverTime: 111, instance: 'p1', sentAt: T0 + 9200, receivedAt: T0 + 9201 },
    ]);
    expect(clock.offsetBound(T0 + 9201)).toBeCloseTo(tight + (DRIFT * 9150) / 1000, 9);
    expect(clock.offsetBound(T0 + 20_000)).toBeCloseTo(tight + (DRIFT * (20_000 - 51)) / 1000, 9);
  });
});

/** Fake timers, with `performance.now` (which {@link localNow} reads) moving with them. */
function fakeClock(): void {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
}

describe('ServerClock measurement', () => {
  /** A reader on the model server, driven by fake timers; counts its readings. */
  function modelReader(server: ModelServer): { read: () => Promise<ClockReading>; count: () => number } {
    let count = 0;
    return {
      read: () => {
        count += 1;
        const [reading] = readingsOf(server, [localNow()], 0) as [ClockReading];
        return Promise.resolve(reading);
      },
      count: () => count,
    };
  }

  it('measures in the background on first use, a reading every 50 ms until the server ticks, then stops reading', async () => {
    fakeClock();
    const start = localNow();
    const server = new ModelServer(250, 600, [0], [], start + 60_000, start);
    const reader = modelReader(server);
    const clock = new ServerClock(reader.read);
    expect(clock.offsetBound()).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1200);
    const bound = clock.offsetBound();
    expect(bound).toBeDefined();
    expect((bound as number) * 1000).toBeGreaterThan(250);
    const readings = reader.count();
    expect(readings).toBeLessThanOrEqual(Math.ceil(1000 / READ_EVERY_MS) + 2);
    await vi.advanceTimersByTimeAsync(5000);
    expect(reader.count()).toBe(readings);
    clock.stop();
  });

  it('stops for good on stop(), leaving no timer', async () => {
    fakeClock();
    const start = localNow();
    const server = new ModelServer(0, 500, [0], [], start + 60_000, start);
    const reader = modelReader(server);
    const clock = new ServerClock(reader.read);
    clock.offsetBound();
    await vi.advanceTimersByTimeAsync(120);
    clock.stop();
    const readings = reader.count();
    expect(readings).toBeGreaterThan(1);
    await vi.advanceTimersByTimeAsync(5000);
    expect(reader.count()).toBe(readings);
    expect(vi.getTimerCount()).toBe(0);
    expect(clock.offsetBound()).toBeUndefined();
  });

  it('tries again a second after a measurement failed', async () => {
    fakeClock();
    let calls = 0;
    const clock = new ServerClock(() => {
      calls += 1;
      return Promise.reject(new Error('down'));
    });
    clock.offsetBound();
    await vi.advanceTimersByTimeAsync(10);
    clock.offsetBound();
    expect(calls).toBe(1);
    await vi.advanceTimersByTimeAsync(1000);
    clock.offsetBound();
    await vi.advanceTimersByTimeAsync(10);
    expect(calls).toBe(2);
    clock.stop();
  });
});

describe('absolute lease expiry', () => {
  it('is the first whole second at which the server clock may show start + lease', () => {
    // Server clock at most 0.4 s ahead: a 2000 ms lease from 12.300 s must live until C = 14.7 s.
    expect(absoluteLeaseExptime(2000, 1_700_000_012_300, 0.4)).toBe(1_700_000_015);
    expect(absoluteLeaseExptime(2000, 1_700_000_012_300, -0.4)).toBe(1_700_000_014);
    expect(absoluteLeaseExptime(2000, 1_700_000_012_600, -0.6)).toBe(1_700_000_014);
  });

  it('keeps 0 as "never lapses", and gives up on a server clock that cannot take absolute times', () => {
    expect(absoluteLeaseExptime(0, T0, 0)).toBe(0);
    expect(absoluteLeaseExptime(2000, T0, -T0 / 1000 + 100)).toBeUndefined();
    expect(absoluteLeaseExptime(2000, T0, -T0 / 1000 + MAX_RELATIVE_EXPTIME + 10)).toBe(MAX_RELATIVE_EXPTIME + 12);
  });
});
