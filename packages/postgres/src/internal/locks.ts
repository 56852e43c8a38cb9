/**
 * The server side of PostgresBackend's locks: acquire, release and extend are one statement
 * each on the key's row, timed by the server's clock; releases are announced with
 * `pg_notify` in the same statement and heard by one listening connection.
 */

import { randomUUID } from 'node:crypto';
import {
  BackendError,
  LockWaiters,
  ReleaseListener,
  wakeUpRetry,
  type AttemptOutcome,
  type CallRunner,
  type Lease,
  type LockProtocol,
} from '@latchkey/core';
import type { Database } from './database.js';
import { listenForReleases } from './listener.js';
import { leaseParam, type Statements } from './sql.js';

const NAME = 'PostgresBackend';

/** While releases cannot be heard (the listening connection is down or off), a waiter looks again at least this often. */
export const UNHEARD_RELEASE_POLL_MS = 250;

/** Most time between two attempts to listen after failures (the first waits 50 ms, doubling). */
const LISTEN_RETRY_MAX_MS = 2_000;

/** What {@link PostgresLocks} works with. */
export interface PostgresLocksOptions {
  readonly db: Database;
  readonly statements: Statements;
  /** The backend's call runner: every statement runs under its deadline. */
  readonly calls: CallRunner;
  /** The NOTIFY channel of the table's releases. */
  readonly channel: string;
  /** Whether to LISTEN for releases (else waiters poll every {@link UNHEARD_RELEASE_POLL_MS}). */
  readonly listen: boolean;
  /** Deadline of connecting the listening connection. */
  readonly timeoutMs: number;
}

interface AcquireRow {
  /** The new fencing token (as text: int8) when the attempt won, else `null`. */
  readonly fence: string | null;
  /** When lost: ms until the holder's lease lapses as the statement saw it; `-1` never; `0` look again now. */
  readonly retry_in_ms: number;
}

/**
 * PostgresBackend's {@link LockProtocol}, and the waiters and release listener around it.
 * Waiters and leases are keyed by stored key.
 */
export class PostgresLocks implements LockProtocol {
  /** The waiters of this backend: acquire, release and extend go through them. */
  readonly waiters: LockWaiters;
  readonly #db: Database;
  readonly #statements: Statements;
  readonly #calls: CallRunner;
  readonly #channel: string;
  readonly #listener: ReleaseListener | undefined;

  constructor(options: PostgresLocksOptions) {
    const { db, statements, calls, channel, listen, timeoutMs } = options;
    this.#db = db;
    this.#statements = statements;
    this.#calls = calls;
    this.#channel = channel;
    this.waiters = new LockWaiters({
      name: NAME,
      protocol: this,
      retry: wakeUpRetry({ hearing: () => this.#listener?.hearing() ?? false, fallbackMs: UNHEARD_RELEASE_POLL_MS }),
    });
    this.#listener = listen
      ? new ReleaseListener({
          target: this.waiters,
          timeoutMs,
          retryMaxMs: LISTEN_RETRY_MAX_MS,
          open: (events) => listenForReleases(db.listenerClient(timeoutMs), channel, events),
        })
      : undefined;
  }

  /** Opens the listening connection ahead of the first wait, so the first release is heard too. */
  startListening(): void {
    void this.#listener?.listen();
  }

  /**
   * One acquire statement: the lease when the lock was free or lapsed (the fence bumped in the
   * same statement), else how long the holder's lease has left.
   *
   * The hint comes from the statement's snapshot, so it may name a holder that has just let go:
   * a release is announced, and heard even while the attempt is on its way (the waiters then
   * look again at once); a snapshot with no live lock answers "look again now".
   */
  async attempt(key: string, leaseMs: number): Promise<AttemptOutcome> {
    const token = randomUUID();
    const acquiredAt = performance.now();
    // The statement may have committed although its answer was lost: let go of what it may have taken.
    const giveBack = (): void => this.waiters.giveBack({ key, token, fencingToken: 0n });
    const row = await this.#calls.run(
      'acquireLock',
      async () => (await this.#db.query<AcquireRow>(this.#statements.acquire, [key, token, leaseParam(leaseMs)], giveBack)).rows[0],
      {
        onLate: (late) => {
          if (late?.fence !== null && late?.fence !== undefined) giveBack();
        },
      },
    );
    if (row === undefined) throw new BackendError(`${NAME}: acquireLock got no row back.`);
    if (row.fence !== null) return { lease: { key, token, fencingToken: BigInt(row.fence), acquiredAt } };
    return { retryInMs: row.retry_in_ms < 0 ? Infinity : row.retry_in_ms };
  }

  /** Frees the lock if `lease` still holds it and announces the release. Runs during `close` too. */
  async release(lease: Lease): Promise<boolean> {
    const result = await this.#calls.run(
      'releaseLock',
      () => this.#db.query(this.#statements.release, [lease.key, lease.token, this.#channel]),
      // close() gives back held leases after the runner stopped taking calls.
      { evenIfClosed: true },
    );
    return result.rows.length > 0;
  }

  /** Renews the lock for `leaseMs` from now on the server's clock (`0`: no lapse) if `lease` still holds it. */
  async extend(lease: Lease, leaseMs: number): Promise<boolean> {
    const result = await this.#calls.run('extendLock', () =>
      this.#db.query(this.#statements.extend, [lease.key, lease.token, leaseParam(leaseMs)]),
    );
    return (result.rowCount ?? 0) > 0;
  }

  /**
   * Stops listening, ends every wait and gives back every lease this process holds. The call
   * runner must still be open.
   */
  async close(): Promise<void> {
    this.#listener?.close();
    await this.waiters.close();
  }
}
