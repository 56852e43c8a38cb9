import { describe, expect, it } from 'vitest';
import { ALREADY_EXPIRED, exptimeFor, leaseExptime, MAX_RELATIVE_EXPTIME } from '../../src/internal/expiry.js';

const NOW = Date.UTC(2026, 0, 1);
const DAY_MS = 24 * 60 * 60 * 1000;

describe('expiry in whole seconds', () => {
  it.each([
    // remaining ms → exptime: ceil to seconds, plus one tick of memcached's clock
    [1, 2],
    [999, 2],
    [1000, 2],
    [1001, 3],
    [1500, 3],
    [2000, 3],
    [59_999, 61],
    [(MAX_RELATIVE_EXPTIME - 1) * 1000, MAX_RELATIVE_EXPTIME],
  ])('keeps an item %i ms from now for exptime %i', (remainingMs, exptime) => {
    expect(exptimeFor(NOW + remainingMs, NOW)).toBe(exptime);
  });

  it('never turns a short expiry into 0, which memcached reads as "never expires"', () => {
    for (const remainingMs of [0.001, 0.5, 1, 10, 999]) expect(exptimeFor(NOW + remainingMs, NOW)).toBeGreaterThan(0);
  });

  it('switches to an absolute Unix time beyond 30 days', () => {
    const expiresAt = NOW + 31 * DAY_MS + 1;
    const exptime = exptimeFor(expiresAt, NOW);
    expect(exptime).toBeGreaterThan(MAX_RELATIVE_EXPTIME);
    expect(exptime).toBe(Math.ceil(expiresAt / 1000) + 1);
  });

  it('uses an absolute time at the first relative value memcached would misread', () => {
    const exptime = exptimeFor(NOW + MAX_RELATIVE_EXPTIME * 1000, NOW);
    expect(exptime).toBe(Math.ceil(NOW / 1000) + MAX_RELATIVE_EXPTIME + 1);
  });

  it.each([0, -1, -60_000])('reports an expiry %i ms from now as already expired', (offsetMs) => {
    expect(exptimeFor(NOW + offsetMs, NOW)).toBe(ALREADY_EXPIRED);
  });

  it('gives 0 (never) when there is no expiry, or it is Infinity', () => {
    expect(exptimeFor(undefined, NOW)).toBe(0);
    expect(exptimeFor(Infinity, NOW)).toBe(0);
  });

  it('reports an expiry of -Infinity as already expired', () => {
    expect(exptimeFor(-Infinity, NOW)).toBe(ALREADY_EXPIRED);
  });

  it('caps absolute times at the largest the protocol can carry', () => {
    expect(exptimeFor(NOW + 500 * 365 * DAY_MS, NOW)).toBe(0xffff_ffff);
  });
});

describe('lease expiry', () => {
  it.each([
    [0, 0],
    [1, 3],
    [300, 3],
    [2000, 4],
    [2001, 5],
    [5000, 7],
  ])('keeps a lease of %i ms with exptime %i (two spare ticks)', (leaseMs, exptime) => {
    expect(leaseExptime(leaseMs, NOW)).toBe(exptime);
  });

  it('switches to an absolute Unix time for leases beyond 30 days', () => {
    const leaseMs = 31 * DAY_MS;
    expect(leaseExptime(leaseMs, NOW)).toBe(Math.ceil((NOW + leaseMs) / 1000) + 2);
  });
});
