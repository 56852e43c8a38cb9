import { randomUUID } from 'node:crypto';
import {
  LockWaiters,
  ReleaseListener,
  wakeUpRetry,
  type AttemptOutcome,
  type CallRunner,
  type Lease,
  type LockProtocol,
} from '@latchkey/core';
import { subscriberFactory } from './clients.js';
import type { RedisClient } from './connection-gate.js';
import { neverWritten } from './errors.js';
import { fenceKeyOf, lockKeyOf, type KeyLayout } from './key-layout.js';
import { subscribeToReleases } from './release-listener.js';
import { runConfirmed, runLockScript, unconfirmedAcquire } from './replication.js';
import { ACQUIRE, CLOCKED_ACQUIRE, EXTEND, RELEASE, runScript } from './scripts.js';
import type { ResolvedLockReplication } from '../redis-backend-options.js';

const NAME = 'RedisBackend';

/** While releases cannot be heard (the subscription is down), a waiter looks again at least this often. */
const UNHEARD_RELEASE_POLL_MS = 250;

/** What {@link RedisLocks} works with. */
export interface RedisLocksOptions {
  readonly client: RedisClient;
  /** The backend's call runner: every script runs under its deadline. */
  readonly calls: CallRunner;
  readonly layout: KeyLayout;
  /** Deadline of connecting the subscriber. */
  readonly timeoutMs: number;
  /** Replicated locks: acquires and extends wait for this many replicas (absent: they do not). */
  readonly replication: ResolvedLockReplication | undefined;
}

/**
 * The Redis side of the locks: one script each to acquire, release (announcing the release
 * over pub/sub) and extend, and the subscription that hears releases of other processes and
 * wakes the waiters here. Waiters and leases are keyed by stored key.
 */
export class RedisLocks implements LockProtocol {
  /** The waiters of this backend: acquire, release and extend go through them. */
  readonly waiters: LockWaiters;
  readonly #client: RedisClient;
  readonly #calls: CallRunner;
  readonly #layout: KeyLayout;
  readonly #releases: ReleaseListener;
  readonly #replication: ResolvedLockReplication | undefined;

  constructor(options: RedisLocksOptions) {
    const { client, calls, layout, timeoutMs, replication } = options;
    this.#client = client;
    this.#calls = calls;
    this.#layout = layout;
    this.#replication = replication;
    this.waiters = new LockWaiters({
      name: NAME,
      protocol: this,
      retry: wakeUpRetry({ hearing: () => this.#releases.hearing(), fallbackMs: UNHEARD_RELEASE_POLL_MS }),
    });
    const connect = subscriberFactory(client, timeoutMs);
    // A digested key cannot be told from its data key (the store's default mangler never makes one): undefined wakes all.
    const storedKeyOf = (dataKey: string): string | undefined => layout.storedKeyOf(dataKey);
    this.#releases = new ReleaseListener({
      target: this.waiters,
      timeoutMs,
      open: (events) => subscribeToReleases(connect, layout.channel, storedKeyOf, events),
    });
  }

  /**
   * One acquire script: the lease when the lock was free, else how long the holder's lease
   * has left. With replicated locks the script raises the fence to the server's clock and is
   * followed by `WAIT`: a lock too few replicas acknowledged is given back and the attempt
   * rejects with `BackendUnavailableError`.
   */
  async attempt(key: string, leaseMs: number, giveBack: (lease: Lease) => void): Promise<AttemptOutcome> {
    const dataKey = this.#layout.dataKey(key);
    const token = randomUUID();
    const acquiredAt = performance.now();
    const args = [lockKeyOf(dataKey), fenceKeyOf(dataKey), token, String(Math.ceil(leaseMs))];
    const replication = this.#replication;
    let sent = false;
    let reply: unknown;
    let replicas = 0;
    try {
      reply = await this.#calls.run('acquireLock', async (call) => {
        sent = true;
        if (replication === undefined) return runScript(this.#client, ACQUIRE, args);
        const confirmed = await runConfirmed(this.#client, CLOCKED_ACQUIRE, args, replication, call);
        replicas = confirmed.replicas;
        return confirmed.reply;
      });
    } catch (error) {
      // The script may have run although its answer was lost: let go of what it may have taken.
      if (sent && !neverWritten(error)) giveBack({ key, token, fencingToken: 0n });
      throw error;
    }
    const [won, value] = reply as [unknown, unknown];
    if (Number(won) === 1) {
      const lease: Lease = { key, token, fencingToken: BigInt(String(value)), acquiredAt };
      if (replication !== undefined && replicas < replication.replicas) {
        // A failover to a replica without it would free the key while the caller held it: not granted.
        giveBack(lease);
        throw unconfirmedAcquire(replicas, replication);
      }
      return { lease };
    }
    const pttl = Number(value);
    return { retryInMs: pttl === -1 ? Infinity : pttl };
  }

  /** Deletes the lock if `lease` still holds it and announces the release. Runs during `close` too. */
  async release(lease: Lease): Promise<boolean> {
    const dataKey = this.#layout.dataKey(lease.key);
    const args = [lockKeyOf(dataKey), lease.token, this.#layout.channel, `${lease.token} ${dataKey}`];
    const reply = await this.#calls.run('releaseLock', () => runScript(this.#client, RELEASE, args), { evenIfClosed: true });
    return Number(reply) === 1;
  }

  /**
   * Renews the lock for `leaseMs` (`0`: no lapse) if `lease` still holds it. With replicated
   * locks, a renewal too few replicas acknowledged rejects with `BackendTimeoutError` (the
   * earlier lease still stands).
   */
  async extend(lease: Lease, leaseMs: number): Promise<boolean> {
    const lockKey = lockKeyOf(this.#layout.dataKey(lease.key));
    const args = [lockKey, lease.token, String(Math.ceil(leaseMs))];
    const replication = this.#replication;
    const reply = await this.#calls.run('extendLock', (call) =>
      runLockScript(this.#client, EXTEND, args, { replication, call, what: 'extendLock' }, (renewed) => Number(renewed) === 1),
    );
    return Number(reply) === 1;
  }

  /**
   * Ends every wait, gives back every lease this process holds and stops listening. The call
   * runner must still be open.
   */
  async close(): Promise<void> {
    this.#releases.close();
    await this.waiters.close();
  }
}
