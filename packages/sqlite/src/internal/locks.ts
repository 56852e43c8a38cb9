import { randomUUID } from 'node:crypto';
import {
  reportGiveBackFailure,
  type AttemptOutcome,
  type CallRunner,
  type DeleteOutcome,
  type Lease,
  type LockProtocol,
  type WriteOutcome,
} from '@latchkey/core';
import type { SqliteDatabase } from './database.js';
import { BACKEND_NAME } from './errors.js';
import type { Holder, Statements } from './statements.js';

/**
 * Lease locks in the key's row, each step one SQLite transaction, so every process that
 * opens the file sees the same lease.
 *
 * - **Acquire**: a plain read first (in WAL mode it never waits for a writer), so a waiter
 *   polling a held key takes no write lock; when the lease looks free or lapsed, one
 *   `BEGIN IMMEDIATE` transaction takes it if it still is, with a fresh random token, and
 *   bumps the key's fence. A failed attempt reports when the holder's lease lapses.
 * - **Locked set/delete**: the token and an unexpired lease are checked in the same
 *   transaction as the write; the write lock makes check and write one step.
 * - **Release/extend**: owner-checked in one statement; another holder's lease is never touched.
 *
 * Lease times are epoch ms of this machine's wall clock, read inside the transaction.
 */
export class SqliteLocks implements LockProtocol {
  readonly #db: SqliteDatabase;
  readonly #calls: CallRunner;

  constructor(db: SqliteDatabase, calls: CallRunner) {
    this.#db = db;
    this.#calls = calls;
  }

  /** One try at the lease on `key`: `{ lease }`, or `{ retryInMs }` while another lease holds it. */
  attempt(key: string, leaseMs: number): Promise<AttemptOutcome> {
    // Before opening the file and any wait for its lock: the core measures the lock's expiry
    // from here, which must be no later than the lease's start in the row.
    const acquiredAt = performance.now();
    return this.#calls.run('acquireLock', (call) => this.#db.run(call, (statements) => attempt(statements, key, leaseMs, acquiredAt)), {
      // Won after the call had settled: nobody will hold it.
      onLate: ({ lease }) => {
        if (lease !== undefined) this.release(lease).catch((error: unknown) => reportGiveBackFailure(BACKEND_NAME, lease, error));
      },
    });
  }

  /** Frees the key if `lease` still holds it; runs even while the backend closes (to give back what it holds). */
  release(lease: Lease): Promise<boolean> {
    return this.#calls.run(
      'releaseLock',
      (call) => this.#db.run(call, (statements) => statements.inWrite(() => statements.release(lease.key, lease.token, Date.now()))),
      { evenIfClosed: true },
    );
  }

  /** Renews `lease` for `leaseMs` from now (`0`: never lapses) if it still holds the key. */
  extend(lease: Lease, leaseMs: number): Promise<boolean> {
    return this.#calls.run('extendLock', (call) =>
      this.#db.run(call, (statements) =>
        statements.inWrite(() => {
          const now = Date.now();
          return statements.extend(lease.key, lease.token, lapse(now, leaseMs), now);
        }),
      ),
    );
  }
}

/** Writes `value` to `key` only while `lease` holds it, checked in the write's transaction. */
export function lockedSet(statements: Statements, key: string, value: Uint8Array, expiresAt: number | null, lease: Lease): WriteOutcome {
  if (lease.key !== key) return 'lease-lost';
  return statements.inWrite(() => statements.lockedWrite(key, value, expiresAt, lease.token, Date.now())) ? 'written' : 'lease-lost';
}

/** Deletes `key`'s value only while `lease` holds it, checked in the delete's transaction. */
export function lockedDelete(statements: Statements, key: string, lease: Lease): DeleteOutcome {
  if (lease.key !== key) return 'lease-lost';
  return statements.inWrite(() => {
    const now = Date.now();
    const state = statements.state(key, lease.token, now);
    if (state?.owned !== true) return 'lease-lost';
    if (!state.live) return 'missing';
    statements.clear(key, now);
    return 'deleted';
  });
}

function attempt(statements: Statements, key: string, leaseMs: number, acquiredAt: number): AttemptOutcome {
  const seen = statements.holder(key);
  if (seen !== undefined && holds(seen, Date.now())) return { retryInMs: untilLapse(seen, Date.now()) };
  const token = randomUUID();
  const fence = statements.inWrite(() => {
    const now = Date.now();
    return statements.acquire(key, token, lapse(now, leaseMs), now);
  });
  if (fence === undefined) {
    // Taken by another connection since the read.
    const holder = statements.holder(key);
    return holder === undefined ? {} : { retryInMs: untilLapse(holder, Date.now()) };
  }
  const lease: Lease = Object.freeze({ key, token, fencingToken: fence, acquiredAt });
  return { lease };
}

function holds(holder: Holder, now: number): boolean {
  return holder.token !== null && (holder.expiresAt === null || holder.expiresAt > now);
}

function untilLapse(holder: Holder, now: number): number {
  return holder.expiresAt === null ? Infinity : Math.max(0, holder.expiresAt - now);
}

/** The epoch ms at which a lease of `leaseMs` taken at `now` lapses; `null` for `0` (never). */
function lapse(now: number, leaseMs: number): number | null {
  return leaseMs === 0 ? null : now + Math.ceil(leaseMs);
}
