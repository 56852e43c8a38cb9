/**
 * Waiting for per-key leases: the generic part of every backend's `acquireLock`.
 */

import type { AcquireLockOptions, Lease } from '../backend.js';
import { BackendClosedError } from '../errors.js';
import { MAX_TIMER_MS, timerDelay } from '../internal/timers.js';
import { checkAcquireOptions, checkDuration, checkLease, checkStoredKey } from './guards.js';
import type { RetryPolicy } from './retry-policy.js';
import { reportGiveBackFailure } from './warnings.js';

/** What one attempt at a lease on the server found. */
export type AttemptOutcome<L extends Lease = Lease> =
  /** The lease was free and is now held. */
  | { readonly lease: L; readonly retryInMs?: undefined }
  /**
   * Someone else holds it. `retryInMs`: the holder's lease lapses in this many ms
   * (`Infinity`: never), when the server said; absent when it did not.
   */
  | { readonly lease?: undefined; readonly retryInMs?: number | undefined };

/** What {@link LockProtocol.attempt} is told about the attempt. */
export interface AttemptContext {
  /**
   * `true` when a waiter of this process will keep waiting if the attempt fails (the head of
   * the key's queue here), so a protocol with a server-side queue may enqueue this process;
   * `false` for a single attempt (`waitMs: 0`), which must leave nothing queued behind.
   */
  readonly waiting: boolean;
}

/** The server side of a backend's locks, as {@link LockWaiters} uses it. */
export interface LockProtocol<L extends Lease = Lease> {
  /**
   * One attempt at the lease on `key` for `leaseMs` (`0`: no lapse). Must settle (under the
   * backend's deadline) and must leave nothing behind when it rejects: a lease the server may
   * have granted although the answer was lost or came too late goes to `giveBack` (tracked
   * and reported, see {@link LockWaiters.giveBack}). A lease it returns should carry
   * `acquiredAt` (see {@link Lease.acquiredAt}).
   */
  attempt(key: string, leaseMs: number, giveBack: (lease: L) => void, context: AttemptContext): Promise<AttemptOutcome<L>>;
  /** Owner-checked release: `true` when `lease` still held its key and now does not. */
  release(lease: L): Promise<boolean>;
  /** Owner-checked renewal for `leaseMs` from now: `true` when renewed. */
  extend(lease: L, leaseMs: number): Promise<boolean>;
  /**
   * Every waiter of this process on `key` stopped waiting without the lease (timed out,
   * aborted, closed, or failed): a protocol that queued this process on the server for `key`
   * takes it out of that queue (and passes on a grant that reached it meanwhile). Optional;
   * tracked like a give-back, so {@link LockWaiters.close} waits for it. Must not reject.
   */
  leave?(key: string): Promise<void>;
}

/** Options of {@link LockWaiters}. */
export interface LockWaitersOptions<L extends Lease = Lease> {
  /** Names the backend in errors and warnings (`'RedisBackend'`). */
  readonly name: string;
  /** The server side of the locks. */
  readonly protocol: LockProtocol<L>;
  /** How the head waiter waits between attempts ({@link backoffRetry}, {@link wakeUpRetry}). */
  readonly retry: RetryPolicy;
}

interface Waiter {
  readonly leaseMs: number;
  readonly resolve: (lease: Lease | undefined) => void;
  readonly reject: (reason: unknown) => void;
  done: boolean;
  cleanup: () => void;
}

/** A lease this process holds, as far as this queue knows. */
interface Held<L extends Lease> {
  readonly lease: L;
  /** Monotonic ms at which it lapses on the server at the earliest; `Infinity`: never. */
  lapsesAt: number;
}

class KeyState<L extends Lease> {
  readonly waiters: Waiter[] = [];
  /** The head loop is running. */
  running = false;
  /** Bumped by every wake-up, so an attempt can tell that a release happened while it was in flight. */
  epoch = 0;
  /** Ends the head's current sleep. */
  wake: (() => void) | undefined;
  /** The lease of this process on the key, while it may hold. */
  holder: Held<L> | undefined;

  /** A lease of this process holds the key: only its release or its lapse can free it. */
  heldHere(now: number): boolean {
    return this.holder !== undefined && now < this.holder.lapsesAt;
  }

  idle(now: number): boolean {
    return !this.running && this.waiters.length === 0 && !this.heldHere(now);
  }
}

/** Keys made between sweeps of idle key states (whose leases lapsed unreleased). */
const SWEEP_EVERY = 1024;

/**
 * The waiters of this process for one backend's per-key leases: a FIFO queue per key in
 * which only the head attempts on the server, so N local waiters cost one attempt per
 * release, not N.
 *
 * - Between failed attempts the head sleeps as the {@link RetryPolicy} says, until woken by
 *   {@link wake} (a release heard from another process), by a release made through
 *   {@link release} here, or by the holder's lapse. While a lease of this process holds the
 *   key, nobody here attempts: only its release or lapse can free it.
 * - A waiter leaves promptly when its `waitMs` ends (resolving `undefined`) or its signal
 *   aborts (rejecting with `signal.reason`). A lease won by an attempt already on its way
 *   is given back; a give-back that fails is reported once, as a
 *   `LATCHKEY_GIVE_BACK_FAILED` process warning.
 * - Long waits are exact: a delay beyond `setTimeout`'s range is waited out in steps, never
 *   cut short (as Node would) nor left without end.
 * - {@link close} rejects every waiter with {@link BackendClosedError}, waits for attempts
 *   on their way, and gives back every lease this process still holds.
 *
 * @example
 * const locks = new LockWaiters({ name: 'MyBackend', protocol, retry: backoffRetry({ minMs: 5, maxMs: 100 }) })
 * acquireLock(key, options) { checkAcquireOptions(options); return locks.acquire(key, options) }
 * releaseLock(lease) { checkLease(lease); return locks.release(lease) }
 */
export class LockWaiters<L extends Lease = Lease> {
  readonly #name: string;
  readonly #protocol: LockProtocol<L>;
  readonly #retry: RetryPolicy;
  readonly #keys = new Map<string, KeyState<L>>();
  /** Head loops, single attempts and give-backs on their way, so {@link close} can wait for them. */
  readonly #inFlight = new Set<Promise<unknown>>();
  #newKeys = 0;
  #closing: Promise<void> | undefined;

  constructor(options: LockWaitersOptions<L>) {
    this.#name = options.name;
    this.#protocol = options.protocol;
    this.#retry = options.retry;
  }

  /** Number of keys with waiters, a running head or a live lease held here (for leak checks). */
  get size(): number {
    const now = performance.now();
    let count = 0;
    for (const state of this.#keys.values()) if (!state.idle(now)) count += 1;
    return count;
  }

  /** True once {@link close} was called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Takes the lease on `key`, behind earlier waiters of this process, waiting up to
   * `options.waitMs` (`0`: one attempt, none when others here wait or hold the key).
   * Resolves the lease, or `undefined` when the wait ran out.
   * @throws `options.signal.reason` when the signal aborts (nothing is left behind).
   * @throws {InvalidKeyError | ValidationError} for a bad key or options (the kit's guards).
   * @throws {BackendClosedError} after or during {@link close}.
   * @throws the attempt's error (already a latchkey error from the backend's runner).
   */
  acquire(key: string, options: AcquireLockOptions): Promise<L | undefined> {
    if (this.closed) return Promise.reject(this.#closedError());
    try {
      checkStoredKey(key);
      checkAcquireOptions(options);
    } catch (error) {
      return Promise.reject(error);
    }
    const { leaseMs, waitMs, signal } = options;
    if (signal?.aborted === true) return Promise.reject(signal.reason);
    const state = this.#state(key);
    if (waitMs <= 0) return this.#track(this.#tryOnce(key, state, leaseMs, signal));
    return new Promise<L | undefined>((resolve, reject) => {
      const waiter: Waiter = { leaseMs, resolve: resolve as (lease: Lease | undefined) => void, reject, done: false, cleanup: noop };
      // Infinity: no timer; the waiter leaves by winning, abort or close.
      const cancelTimer = waitMs === Infinity ? noop : after(waitMs, () => this.#finish(key, state, waiter, () => resolve(undefined)));
      const onAbort = (): void => this.#finish(key, state, waiter, () => reject(signal?.reason));
      signal?.addEventListener('abort', onAbort, { once: true });
      waiter.cleanup = () => {
        cancelTimer();
        signal?.removeEventListener('abort', onAbort);
      };
      state.waiters.push(waiter);
      if (!state.running) this.#track(this.#run(key, state));
    });
  }

  /**
   * Lets go of `lease` through the protocol and wakes this key's next waiter here. Resolves
   * what the protocol answered; when it fails, the next waiter is woken all the same (the
   * release may have happened).
   * @throws {ValidationError} for a value that is not a lease; {@link BackendClosedError} after {@link close}.
   */
  async release(lease: L): Promise<boolean> {
    if (this.closed) throw this.#closedError();
    checkLease(lease);
    let released: boolean | undefined;
    try {
      released = await this.#protocol.release(lease);
      return released;
    } finally {
      this.#released(lease, released);
    }
  }

  /**
   * Renews `lease` through the protocol and records its new lapse; `false` when it no longer holds.
   * @throws {ValidationError} for a bad lease or `leaseMs`; {@link BackendClosedError} after {@link close}.
   */
  async extend(lease: L, leaseMs: number): Promise<boolean> {
    if (this.closed) throw this.#closedError();
    checkLease(lease);
    checkDuration('leaseMs', leaseMs);
    const startedAt = performance.now();
    const renewed = await this.#protocol.extend(lease, leaseMs);
    const state = this.#keys.get(lease.key);
    if (state?.holder?.lease.token === lease.token) {
      if (renewed) state.holder.lapsesAt = leaseMs === 0 ? Infinity : startedAt + leaseMs;
      else this.#released(lease, false);
    }
    return renewed;
  }

  /** How many waiters of this process wait for `key` now (a protocol asks when it releases, to queue again for them). */
  waiting(key: string): number {
    return this.#keys.get(key)?.waiters.filter((waiter) => !waiter.done).length ?? 0;
  }

  /**
   * A release of `key` was heard from elsewhere (another process): the head attempts again.
   * Ignored while a lease of this process holds the key.
   */
  wake(key: string): void {
    const state = this.#keys.get(key);
    if (state !== undefined && !state.heldHere(performance.now())) this.#unblock(state);
  }

  /**
   * Gives back, in the background, a lease nobody will use — for example one an attempt
   * took although its answer was lost, or one won after its caller stopped waiting. The
   * release goes through the protocol; a failure is reported once as a
   * `LATCHKEY_GIVE_BACK_FAILED` process warning, never thrown; {@link close} waits for it.
   */
  giveBack(lease: L): void {
    this.#track(this.#giveBack(lease));
  }

  readonly #giveBackLater = (lease: L): void => this.giveBack(lease);

  /** Releases may have gone unheard (a notification channel came back): every head looks again. */
  wakeAll(): void {
    const now = performance.now();
    for (const state of this.#keys.values()) if (!state.heldHere(now)) this.#unblock(state);
  }

  /**
   * Rejects every waiter with {@link BackendClosedError}, waits for attempts and give-backs
   * on their way (each bounded by the backend's deadline), then gives back every lease this
   * process still holds, so other processes need not wait for them to lapse. Call it before
   * closing the connection; the protocol must still work while it runs. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const error = this.#closedError();
    for (const [key, state] of this.#keys) {
      for (const waiter of [...state.waiters]) this.#finish(key, state, waiter, () => waiter.reject(error));
      state.wake?.();
    }
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
    const now = performance.now();
    const held = [...this.#keys.values()].flatMap((state) =>
      state.holder !== undefined && now < state.holder.lapsesAt ? [state.holder.lease] : [],
    );
    this.#keys.clear();
    await Promise.all(held.map((lease) => this.#giveBack(lease)));
  }

  #closedError(): BackendClosedError {
    return new BackendClosedError(`${this.#name} is closed: the lock wait was ended.`);
  }

  #state(key: string): KeyState<L> {
    let state = this.#keys.get(key);
    if (state === undefined) {
      state = new KeyState<L>();
      this.#keys.set(key, state);
      if (++this.#newKeys >= SWEEP_EVERY) this.#sweep();
    }
    return state;
  }

  /** Forgets keys nobody waits for whose leases lapsed without a release. */
  #sweep(): void {
    this.#newKeys = 0;
    const now = performance.now();
    for (const [key, state] of this.#keys) if (state.idle(now)) this.#keys.delete(key);
  }

  async #tryOnce(key: string, state: KeyState<L>, leaseMs: number, signal: AbortSignal | undefined): Promise<L | undefined> {
    // Waiters here, or a live lease of this process: the key is taken, no need to ask.
    if (state.waiters.length > 0 || state.heldHere(performance.now())) {
      this.#dropIfIdle(key, state);
      return undefined;
    }
    const startedAt = performance.now();
    let outcome: AttemptOutcome<L>;
    try {
      outcome = await this.#protocol.attempt(key, leaseMs, this.#giveBackLater, SINGLE_ATTEMPT);
    } finally {
      this.#dropIfIdle(key, state);
    }
    const { lease } = outcome;
    if (lease === undefined) return undefined;
    if (this.closed || signal?.aborted === true) {
      this.#track(this.#giveBack(lease));
      if (signal?.aborted === true) throw signal.reason;
      throw this.#closedError();
    }
    this.#hold(key, lease, leaseMs, startedAt);
    return lease;
  }

  /** The head loop: only the first waiter attempts on the server. */
  async #run(key: string, state: KeyState<L>): Promise<void> {
    state.running = true;
    let failures = 0;
    let head: Waiter | undefined;
    /** The last attempt did not hand the lease to a waiter: the protocol may have queued this process. */
    let queued = false;
    try {
      while (!this.closed) {
        const next = state.waiters[0];
        if (next === undefined) break;
        if (next !== head) {
          head = next;
          failures = 0;
        }
        const now = performance.now();
        if (state.heldHere(now)) {
          await this.#sleep(state, (state.holder as Held<L>).lapsesAt - now);
          continue;
        }
        const epoch = state.epoch;
        const startedAt = now;
        let outcome: AttemptOutcome<L>;
        try {
          queued = true;
          outcome = await this.#protocol.attempt(key, head.leaseMs, this.#giveBackLater, WAITING_ATTEMPT);
        } catch (error) {
          const failed = head;
          this.#finish(key, state, failed, () => failed.reject(error));
          continue;
        }
        const { lease } = outcome;
        if (lease !== undefined) {
          queued = false;
          this.#hold(key, lease, head.leaseMs, startedAt);
          const winner = head;
          if (winner.done || this.closed) this.#track(this.#giveBack(lease));
          else this.#finish(key, state, winner, () => winner.resolve(lease));
          continue;
        }
        // The head left, or a release was heard while the attempt was in flight: look again now.
        if (head.done || state.epoch !== epoch) continue;
        failures += 1;
        await this.#sleep(state, this.#retry({ failures, retryInMs: outcome.retryInMs }));
      }
    } finally {
      state.running = false;
      this.#dropIfIdle(key, state);
      const leave = this.#protocol.leave;
      if (queued && leave !== undefined) this.#track(leave.call(this.#protocol, key));
    }
  }

  /** Records a lease of this process on the key's current state (a new one may have replaced `state`). */
  #hold(key: string, lease: L, leaseMs: number, startedAt: number): void {
    const state = this.#state(key);
    const from = lease.acquiredAt ?? startedAt;
    state.holder = { lease, lapsesAt: leaseMs === 0 ? Infinity : from + leaseMs };
  }

  #released(lease: Lease, outcome: boolean | undefined): void {
    const state = this.#keys.get(lease.key);
    if (state === undefined) return;
    const wasHolder = state.holder?.lease.token === lease.token;
    if (wasHolder) state.holder = undefined;
    // A release that found nothing to free changed nothing here, unless it was our holder's.
    if (outcome !== false || wasHolder) this.#unblock(state);
    this.#dropIfIdle(lease.key, state);
  }

  #unblock(state: KeyState<L>): void {
    state.epoch += 1;
    state.wake?.();
  }

  /** Sleeps `ms` (`Infinity`: until woken), or until woken, whichever comes first. */
  #sleep(state: KeyState<L>, ms: number): Promise<void> {
    if (!(ms > 0)) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const cancelTimer = ms === Infinity ? noop : after(ms, () => done());
      const done = (): void => {
        cancelTimer();
        if (state.wake === done) state.wake = undefined;
        resolve();
      };
      state.wake = done;
    });
  }

  #finish(key: string, state: KeyState<L>, waiter: Waiter, settle: () => void): void {
    if (waiter.done) return;
    waiter.done = true;
    waiter.cleanup();
    const index = state.waiters.indexOf(waiter);
    if (index >= 0) state.waiters.splice(index, 1);
    settle();
    // The head left: the loop moves on to the next waiter (or ends) now.
    if (index === 0) state.wake?.();
    this.#dropIfIdle(key, state);
  }

  #dropIfIdle(key: string, state: KeyState<L>): void {
    if (state.idle(performance.now()) && this.#keys.get(key) === state) this.#keys.delete(key);
  }

  /** Owner-checked release of a lease nobody holds any more; a failure is reported, never thrown. */
  async #giveBack(lease: L): Promise<void> {
    try {
      await this.#protocol.release(lease);
    } catch (error) {
      reportGiveBackFailure(this.#name, lease, error);
    } finally {
      this.#released(lease, undefined);
    }
  }

  #track<T>(work: Promise<T>): Promise<T> {
    this.#inFlight.add(work);
    void work.then(
      () => this.#inFlight.delete(work),
      () => this.#inFlight.delete(work),
    );
    return work;
  }
}

function noop(): void {}

const SINGLE_ATTEMPT: AttemptContext = Object.freeze({ waiting: false });
const WAITING_ATTEMPT: AttemptContext = Object.freeze({ waiting: true });

/**
 * Calls `fire` once `ms` (finite) have passed and returns what cancels it. A delay beyond
 * `setTimeout`'s range is waited out in steps, since Node fires such a timer after 1 ms.
 */
function after(ms: number, fire: () => void): () => void {
  const dueAt = performance.now() + ms;
  let timer: ReturnType<typeof setTimeout>;
  const arm = (left: number): void => {
    timer =
      left > MAX_TIMER_MS ? setTimeout(() => arm(dueAt - performance.now()), MAX_TIMER_MS) : setTimeout(fire, timerDelay(Math.ceil(left)));
  };
  arm(ms);
  return () => clearTimeout(timer);
}
