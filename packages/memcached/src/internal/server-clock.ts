/**
 * How far ahead of this process's clock a memcached server's clock may be, measured from the
 * server's `time` statistic, so lock items can carry absolute expiries that a server stall
 * cannot shorten.
 *
 * Why: memcached counts relative expiries from its own clock, a variable its main thread
 * refreshes once a second. A server that was stopped (SIGSTOP, a VM pause, a swap storm) serves
 * the requests that queued meanwhile before that refresh has run, so an item stored then gets an
 * expiry counted from a clock that is behind by the whole stall — measured on memcached 1.6:
 * expiry 4 set right after a 3.5 s stall gone after 35–155 ms. An absolute expiry (a Unix time)
 * is converted with the server's start time, not with that clock, so it lapses when the server's
 * clock, once caught up, reaches it, however stale the clock was when it was stored.
 *
 * The measurement: the server reports `time` = the Unix time it started + the seconds its
 * monotonic clock had advanced at its last refresh, i.e. `floor(C)` of a clock C that runs with
 * real time. When two readings a few tens of ms apart show `time` going from `s` to `s' > s`,
 * the refresh that set `s'` ran after the first reading was sent (at `sentAt`), and then C was
 * below `s' + 1`; so C − local < `s' + 1 − sentAt` at all times (both clocks run at the same
 * rate, up to {@link DRIFT}). That upper bound holds however stale any reading was, which is
 * why a stall cannot fool it. A lock item with absolute expiry `E ≥ start + leaseMs + bound`
 * lapses only once C ≥ E, which is after `start + leaseMs` on this process's clock.
 *
 * @module
 */

/** One answer to `stats`, reduced to the clock. */
export interface ClockReading {
  /** The server's `time` statistic (Unix seconds). */
  readonly serverTime: number;
  /** Which server process answered (its pid and start time): another one has another clock. */
  readonly instance: string;
  /** When the request was sent and its answer received, on {@link localNow}'s clock (epoch ms). */
  readonly sentAt: number;
  readonly receivedAt: number;
}

/** This process's clock for the measurements: epoch ms, monotonic (never stepped by NTP). */
export function localNow(): number {
  return performance.timeOrigin + performance.now();
}

/** Pause between the readings of one measurement. */
export const READ_EVERY_MS = 50;
/** Readings per measurement before giving up (the server's clock moves once a second). */
export const MAX_READINGS = 40;
/**
 * Two readings further apart than this make no measurement: the bound is only as tight as
 * their distance (a loose bound is safe, but lengthens every lease by as much).
 */
export const MAX_EDGE_WIDTH_MS = 250;
/** Age at which a measurement is renewed (so drift and a late-ticking server are caught up). */
export const REFRESH_MS = 30_000;
/** Wait after a failed or fruitless measurement before the next. */
export const RETRY_MS = 1000;
/**
 * How fast two machines' clocks may drift apart (100 ppm, far beyond NTP-disciplined clocks):
 * added to a bound for each second of its age.
 */
export const DRIFT = 1e-4;

/**
 * The measured clock of one server: {@link offsetBound} says how far (in seconds) its clock
 * may be ahead of {@link localNow}, and keeps that measurement fresh in the background.
 */
export class ServerClock {
  readonly #read: () => Promise<ClockReading>;
  #instance: string | undefined;
  /** The tightest bound so far (seconds) and when it was taken (local epoch ms). */
  #bound: { readonly seconds: number; readonly at: number } | undefined;
  #measuring = false;
  #lastAttemptAt = Number.NEGATIVE_INFINITY;
  #stopped = false;
  #pause: { readonly timer: ReturnType<typeof setTimeout>; readonly resolve: () => void } | undefined;

  /** @param read - Takes one reading (a `stats` round trip to the server). */
  constructor(read: () => Promise<ClockReading>) {
    this.#read = read;
  }

  /**
   * An upper bound of (server clock − local clock) in seconds, or `undefined` while none has
   * been measured. Starts a measurement in the background when there is no fresh one.
   */
  offsetBound(now = localNow()): number | undefined {
    const bound = this.#bound;
    if ((bound === undefined || now - bound.at > REFRESH_MS) && this.#mayMeasure(now)) void this.#measure();
    return bound === undefined ? undefined : bound.seconds + (DRIFT * Math.max(0, now - bound.at)) / 1000;
  }

  /**
   * Forgets the measurement: called when the connection was replaced, since the server may have
   * restarted with another clock. Until it is measured again, {@link offsetBound} is `undefined`.
   */
  forget(): void {
    this.#bound = undefined;
    this.#instance = undefined;
  }

  /** Ends every measurement for good (the backend closes). */
  stop(): void {
    this.#stopped = true;
    if (this.#pause !== undefined) {
      clearTimeout(this.#pause.timer);
      this.#pause.resolve();
    }
  }

  /**
   * Takes in a reading; with `previous` (the reading just before it) it may yield a bound.
   * @returns true when it did.
   */
  observe(reading: ClockReading, previous: ClockReading | undefined): boolean {
    if (reading.instance !== this.#instance) {
      this.#instance = reading.instance;
      this.#bound = undefined;
    }
    if (previous === undefined || previous.instance !== reading.instance) return false;
    if (reading.serverTime <= previous.serverTime || reading.receivedAt - previous.sentAt > MAX_EDGE_WIDTH_MS) return false;
    const seconds = reading.serverTime + 1 - previous.sentAt / 1000;
    const now = reading.receivedAt;
    const kept = this.#bound === undefined ? Infinity : this.#bound.seconds + (DRIFT * Math.max(0, now - this.#bound.at)) / 1000;
    this.#bound = { seconds: Math.min(seconds, kept), at: now };
    return true;
  }

  #mayMeasure(now: number): boolean {
    return !this.#stopped && !this.#measuring && now - this.#lastAttemptAt >= RETRY_MS;
  }

  async #measure(): Promise<void> {
    this.#measuring = true;
    this.#lastAttemptAt = localNow();
    try {
      let previous: ClockReading | undefined;
      for (let i = 0; i < MAX_READINGS && !this.#stopped; i++) {
        if (previous !== undefined) await this.#sleep(READ_EVERY_MS);
        if (this.#stopped) return;
        const reading = await this.#read();
        if (this.observe(reading, previous)) return;
        previous = reading;
      }
    } catch {
      // A server that cannot be read now (down, stalled, closing) is measured on a later lease;
      // the calls that need it report the outage themselves, and leases meanwhile get relative
      // expiries, as without a measurement.
    } finally {
      this.#measuring = false;
      this.#lastAttemptAt = localNow();
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#pause = undefined;
        resolve();
      }, ms);
      timer.unref();
      this.#pause = { timer, resolve };
    });
  }
}
