/**
 * memcached expiry ("exptime") is whole seconds: up to 30 days it counts from now, above that
 * it is an absolute Unix time; 0 means "never expires".
 */
export const MAX_RELATIVE_EXPTIME = 60 * 60 * 24 * 30;

/** The largest exptime the protocol can carry (an absolute time in 2106). */
const MAX_EXPTIME = 0xffff_ffff;

/** Returned by {@link exptimeFor} for an expiry that has already passed. */
export const ALREADY_EXPIRED = -1;

/**
 * The exptime that keeps an item for `remainingMs` from now, rounded up to whole seconds plus
 * `spareTicks` ticks of memcached's clock; never 0 ("never expires"), and an absolute Unix time
 * past 30 days.
 *
 * memcached's clock is a once-a-second timer, and an item with exptime N lapses when that clock
 * has advanced N ticks since it was stored. So it lives from just over N − 1 seconds to N
 * seconds (measured on memcached 1.6: exptime 1 lived between 54 ms and 972 ms), and less
 * still when the server is so busy that its tick runs late (a tick up to a second late takes up
 * to another second off). One spare tick makes the lifetime at least `remainingMs` on a server
 * whose clock ticks on time; two keep it so with a tick up to a second late.
 *
 * @param remainingMs - How long the item must live; must be > 0.
 * @param nowMs - The current time (epoch ms), for absolute exptimes past 30 days.
 */
export function exptimeAfter(remainingMs: number, nowMs: number, spareTicks: number): number {
  const seconds = Math.ceil(remainingMs / 1000) + spareTicks;
  if (seconds <= MAX_RELATIVE_EXPTIME) return seconds;
  return Math.min(Math.ceil((nowMs + remainingMs) / 1000) + spareTicks, MAX_EXPTIME);
}

/**
 * The exptime of a value for an absolute expiry (epoch ms): 0 when there is none (or it is `Infinity`),
 * {@link ALREADY_EXPIRED} when it has passed, else the remaining time plus one spare tick.
 * One is enough for values: the store stamps the exact expiry into every value and checks it
 * on read, and a value that a late tick drops a little early is no worse than an eviction.
 */
export function exptimeFor(expiresAt: number | undefined, nowMs: number): number {
  if (expiresAt === undefined || expiresAt === Infinity) return 0;
  const remainingMs = expiresAt - nowMs;
  if (remainingMs <= 0) return ALREADY_EXPIRED;
  return exptimeAfter(remainingMs, nowMs, 1);
}

/**
 * The relative exptime of a lock item for a lease of `leaseMs` (0: never lapses), with two
 * spare ticks: a lease must live at least its `leaseMs` even on a busy server, or its holder's
 * writes would be refused early. A 2000 ms lease is kept for 4 s, so it lapses 2 to 4 s after it
 * was taken — on a server whose clock is current. A server that just came back from a stall
 * counts it from a clock that is behind (see server-clock.ts): only used until that server's
 * clock has been measured ({@link absoluteLeaseExptime}).
 */
export function leaseExptime(leaseMs: number, nowMs: number): number {
  return leaseMs === 0 ? 0 : exptimeAfter(leaseMs, nowMs, 2);
}

/**
 * The absolute exptime (Unix seconds) of a lock item that must live until at least
 * `startedAtMs + leaseMs` on this process's clock, on a server whose clock is at most
 * `offsetBoundSeconds` ahead of it (see server-clock.ts): the server drops the item once its
 * clock reaches the exptime, which is after that moment. 0 for a lease that never lapses;
 * `undefined` when the result would not read as absolute (a server clock 30 days after 1970).
 *
 * @param startedAtMs - When the attempt started (epoch ms, on server-clock.ts's `localNow`).
 */
export function absoluteLeaseExptime(leaseMs: number, startedAtMs: number, offsetBoundSeconds: number): number | undefined {
  if (leaseMs === 0) return 0;
  const exptime = Math.ceil((startedAtMs + leaseMs) / 1000 + offsetBoundSeconds);
  if (!(exptime > MAX_RELATIVE_EXPTIME)) return undefined;
  return Math.min(exptime, MAX_EXPTIME);
}
