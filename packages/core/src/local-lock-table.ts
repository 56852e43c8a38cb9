import { randomUUID } from 'node:crypto';
import type { AcquireLockOptions, Lease } from './backend.js';
import { BackendClosedError } from './errors.js';
import { timerDelay } from './internal/timers.js';

interface Holder {
  readonly lease: Lease;
  /** Monotonic deadline (`performance.now()` ms); `Infinity` when the lease never lapses. */
  lapsesAt: number;
}

interface Waiter {
  readonly leaseMs: number;
  readonly resolve: (lease: Lease | undefined) => void;
  readonly reject: (reason: unknown) => void;
  done: boolean;
  cleanup: () => void;
}

interface Slot {
  holder: Holder | undefined;
  readonly waiters: Waiter[];
  lapseTimer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * An in-process per-key lease lock table: FIFO waiters, leases that lapse on a monotonic
 * clock, owner tokens and strictly increasing fencing tokens. The memory backend keeps its
 * locks here, and the core gives one to every backend that has no locks of its own.
 *
 * Everything is synchronous except waiting, so a caller can check {@link holds} and write in
 * the same turn of the event loop: that is what makes lease-conditional writes atomic for
 * in-process stores.
 */
export class LocalLockTable {
  readonly #slots = new Map<string, Slot>();
  // One counter for all keys: strictly increasing per key without remembering every key.
  #fence = 0n;
  #closed = false;

  /** Monotonic milliseconds; replaceable for tests. */
  protected now(): number {
    return performance.now();
  }

  /**
   * Takes the lease on `key`, waiting in FIFO order up to `waitMs`. Resolves `undefined` when
   * the wait runs out; rejects with `signal.reason` when aborted (no lease is left behind).
   * @throws {BackendClosedError} (as a rejection) after {@link close}, and for a wait that `close` interrupts.
   */
  acquire(key: string, options: AcquireLockOptions): Promise<Lease | undefined> {
    const { leaseMs, waitMs, signal } = options;
    if (this.#closed) return Promise.reject(new BackendClosedError('LocalLockTable is closed; no lock can be taken.'));
    if (signal?.aborted) return Promise.reject(signal.reason);
    this.#expireHolder(key, this.#slot(key));
    // Expiring may have dropped an idle slot from the map: take the current one.
    const slot = this.#slot(key);
    if (slot.holder === undefined && slot.waiters.length === 0) return Promise.resolve(this.#grant(key, slot, leaseMs));
    if (waitMs <= 0) return Promise.resolve(undefined);

    return new Promise<Lease | undefined>((resolve, reject) => {
      const waiter: Waiter = { leaseMs, resolve, reject, done: false, cleanup: () => undefined };
      const finish = (settle: () => void): void => {
        if (waiter.done) return;
        waiter.done = true;
        waiter.cleanup();
        const index = slot.waiters.indexOf(waiter);
        if (index >= 0) slot.waiters.splice(index, 1);
        settle();
        this.#dropIfIdle(key, slot);
      };
      const timer = setTimeout(() => finish(() => resolve(undefined)), timerDelay(waitMs));
      const onAbort = (): void => finish(() => reject(signal?.reason));
      signal?.addEventListener('abort', onAbort, { once: true });
      waiter.cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      slot.waiters.push(waiter);
      this.#armLapse(key, slot);
    });
  }

  /** True when `lease` currently holds its key (not released, not lapsed, not taken over). */
  holds(lease: Lease): boolean {
    const slot = this.#slots.get(lease.key);
    if (slot === undefined) return false;
    this.#expireHolder(lease.key, slot);
    return slot.holder?.lease.token === lease.token;
  }

  /** Frees the key if `lease` holds it. Never touches another holder's lease. */
  release(lease: Lease): boolean {
    if (!this.holds(lease)) return false;
    const slot = this.#slots.get(lease.key);
    if (slot === undefined) return false;
    slot.holder = undefined;
    this.#handOver(lease.key, slot);
    return true;
  }

  /** Renews `lease` for `leaseMs` from now (0: never lapses) if it still holds its key. */
  extend(lease: Lease, leaseMs: number): boolean {
    if (!this.holds(lease)) return false;
    const holder = this.#slots.get(lease.key)?.holder;
    if (holder === undefined) return false;
    holder.lapsesAt = leaseMs === 0 ? Infinity : this.now() + leaseMs;
    const slot = this.#slots.get(lease.key);
    if (slot !== undefined) this.#armLapse(lease.key, slot);
    return true;
  }

  /**
   * Drops every held lease (waiters stay queued and are served next), as a server that loses
   * its data would. Fencing tokens keep increasing.
   */
  dropAllLeases(): void {
    for (const [key, slot] of this.#slots) {
      slot.holder = undefined;
      this.#handOver(key, slot);
    }
  }

  /** Number of keys with a holder or waiters (for tests and leak checks). */
  get size(): number {
    return this.#slots.size;
  }

  /**
   * Rejects every waiter with {@link BackendClosedError}, clears every timer and drops every
   * lease; later `acquire` calls reject with it too. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const slot of this.#slots.values()) {
      if (slot.lapseTimer !== undefined) clearTimeout(slot.lapseTimer);
      for (const waiter of slot.waiters.splice(0)) {
        if (waiter.done) continue;
        waiter.done = true;
        waiter.cleanup();
        waiter.reject(new BackendClosedError('LocalLockTable was closed while waiting for a lock.'));
      }
    }
    this.#slots.clear();
  }

  #slot(key: string): Slot {
    let slot = this.#slots.get(key);
    if (slot === undefined) {
      slot = { holder: undefined, waiters: [], lapseTimer: undefined };
      this.#slots.set(key, slot);
    }
    return slot;
  }

  #grant(key: string, slot: Slot, leaseMs: number): Lease {
    this.#fence += 1n;
    const lease: Lease = { key, token: randomUUID(), fencingToken: this.#fence };
    slot.holder = { lease, lapsesAt: leaseMs === 0 ? Infinity : this.now() + leaseMs };
    this.#armLapse(key, slot);
    return lease;
  }

  #expireHolder(key: string, slot: Slot): void {
    if (slot.holder !== undefined && this.now() >= slot.holder.lapsesAt) {
      slot.holder = undefined;
      this.#handOver(key, slot);
    }
  }

  /** Gives a free key to the first waiter still waiting, or forgets the key. */
  #handOver(key: string, slot: Slot): void {
    if (slot.lapseTimer !== undefined) {
      clearTimeout(slot.lapseTimer);
      slot.lapseTimer = undefined;
    }
    while (slot.holder === undefined) {
      const waiter = slot.waiters.shift();
      if (waiter === undefined) break;
      if (waiter.done) continue;
      waiter.done = true;
      waiter.cleanup();
      waiter.resolve(this.#grant(key, slot, waiter.leaseMs));
    }
    this.#dropIfIdle(key, slot);
  }

  /** While someone waits, wake the queue when the holder's lease lapses. */
  #armLapse(key: string, slot: Slot): void {
    if (slot.lapseTimer !== undefined) clearTimeout(slot.lapseTimer);
    slot.lapseTimer = undefined;
    const holder = slot.holder;
    if (holder === undefined || holder.lapsesAt === Infinity || slot.waiters.length === 0) return;
    const delay = timerDelay(Math.ceil(holder.lapsesAt - this.now()));
    slot.lapseTimer = setTimeout(() => {
      slot.lapseTimer = undefined;
      this.#expireHolder(key, slot);
      if (slot.holder !== undefined) this.#armLapse(key, slot);
    }, delay);
  }

  #dropIfIdle(key: string, slot: Slot): void {
    if (slot.holder === undefined && slot.waiters.length === 0) {
      if (slot.lapseTimer !== undefined) clearTimeout(slot.lapseTimer);
      if (this.#slots.get(key) === slot) this.#slots.delete(key);
    } else if (slot.holder !== undefined && slot.waiters.length === 0 && slot.lapseTimer !== undefined) {
      clearTimeout(slot.lapseTimer);
      slot.lapseTimer = undefined;
    }
  }
}
