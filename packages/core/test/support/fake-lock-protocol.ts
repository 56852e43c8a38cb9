import type { AttemptOutcome, Lease, LockProtocol } from '../../src/index.js';

/** One attempt as the fake server saw it. */
export interface SeenAttempt {
  readonly key: string;
  readonly leaseMs: number;
  /** `performance.now()` when the attempt reached the server. */
  readonly at: number;
}

interface Holder {
  readonly token: string;
  /** `performance.now()` at which the lease lapses; `Infinity`: never. */
  lapsesAt: number;
}

/**
 * A hermetic stand-in for a backend's lock server, as a {@link LockProtocol}: one holder per
 * key with a lapse, deciding each request the moment it arrives and answering after
 * `latencyMs` (a `setTimeout`, so fake timers drive it). It records every request so tests can
 * prove what reached "the server".
 */
export class FakeLockProtocol implements LockProtocol {
  readonly holders = new Map<string, Holder>();
  readonly attempts: SeenAttempt[] = [];
  readonly releases: Lease[] = [];
  readonly extensions: { readonly lease: Lease; readonly leaseMs: number }[] = [];
  /** Delay of every answer, in ms (`0`: answered without a timer). */
  latencyMs = 0;
  /** Whether a refused attempt tells when the holder's lease lapses (memcached cannot). */
  tellsLapse = true;
  /** The next attempts fail with these errors, one each, before deciding anything. */
  readonly attemptFailures: unknown[] = [];
  /** Every release fails with this error (after deciding nothing) while set. */
  releaseFailure: unknown;
  #tokens = 0;
  #fence = 0n;

  /** Makes another process hold `key` for `lapsesInMs` (default: forever). */
  holdElsewhere(key: string, lapsesInMs = Infinity): void {
    this.holders.set(key, { token: `elsewhere-${++this.#tokens}`, lapsesAt: performance.now() + lapsesInMs });
  }

  /** Frees `key` on the server without telling anyone (a release by another process). */
  free(key: string): void {
    this.holders.delete(key);
  }

  /** The token holding `key` now, if any. */
  holderOf(key: string): string | undefined {
    return this.#live(key)?.token;
  }

  attemptsOn(key: string): number {
    return this.attempts.filter((attempt) => attempt.key === key).length;
  }

  readonly attempt = async (key: string, leaseMs: number): Promise<AttemptOutcome> => {
    const now = performance.now();
    this.attempts.push({ key, leaseMs, at: now });
    const failure = this.attemptFailures.shift();
    if (failure !== undefined) {
      await this.#answer();
      throw failure;
    }
    const holder = this.#live(key);
    if (holder !== undefined) {
      await this.#answer();
      return this.tellsLapse ? { retryInMs: holder.lapsesAt - now } : {};
    }
    const token = `t${++this.#tokens}`;
    this.holders.set(key, { token, lapsesAt: leaseMs === 0 ? Infinity : now + leaseMs });
    const lease: Lease = { key, token, fencingToken: ++this.#fence, acquiredAt: now };
    await this.#answer();
    return { lease };
  };

  readonly release = async (lease: Lease): Promise<boolean> => {
    this.releases.push(lease);
    if (this.releaseFailure !== undefined) {
      await this.#answer();
      throw this.releaseFailure;
    }
    const released = this.#live(lease.key)?.token === lease.token;
    if (released) this.holders.delete(lease.key);
    await this.#answer();
    return released;
  };

  readonly extend = async (lease: Lease, leaseMs: number): Promise<boolean> => {
    this.extensions.push({ lease, leaseMs });
    const holder = this.#live(lease.key);
    const renewed = holder?.token === lease.token;
    if (holder !== undefined && renewed) holder.lapsesAt = leaseMs === 0 ? Infinity : performance.now() + leaseMs;
    await this.#answer();
    return renewed;
  };

  #live(key: string): Holder | undefined {
    const holder = this.holders.get(key);
    if (holder !== undefined && performance.now() >= holder.lapsesAt) {
      this.holders.delete(key);
      return undefined;
    }
    return holder;
  }

  /** No latency: the answer comes on the microtask queue, so it needs no timer at all. */
  #answer(): Promise<void> {
    if (this.latencyMs === 0) return Promise.resolve();
    return new Promise((resolve) => setTimeout(resolve, this.latencyMs));
  }
}
