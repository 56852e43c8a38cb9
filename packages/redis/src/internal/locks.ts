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
import { entriesKeyOf, fenceKeyOf, grantKeyOf, lockKeyOf, queueKeyOf, type KeyLayout } from './key-layout.js';
import { subscribeToReleases } from './release-listener.js';
import { runConfirmed, runLockScript, unconfirmedAcquire } from './replication.js';
import { ACQUIRE, CLOCKED_ACQUIRE, EXTEND, LEAVE, RELEASE, runScript } from './scripts.js';
import type { ResolvedLockReplication } from '../redis-backend-options.js';

const NAME = 'RedisBackend';

/** While releases cannot be heard (the subscription is down), a waiter looks again at least this often. */
const UNHEARD_RELEASE_POLL_MS = 250;

/**
 * A queued waiter's entry on the server lives this long after its last refresh; a waiter
 * that stopped refreshing it (its process crashed or hangs) is skipped at hand-over after that.
 */
export const QUEUE_ENTRY_MS = 3_000;

/** A queued waiter refreshes its entry (one acquire attempt) at least this often, well within {@link QUEUE_ENTRY_MS}. */
export const QUEUE_REFRESH_MS = 1_000;

/**
 * A lock handed over to a waiter is kept for it this long (its grant); a waiter that does
 * not claim it in time (crashed, or gone without leaving) costs the queue at most this, after
 * which the lock is free for whoever looks first.
 */
export const CLAIM_MS = 1_000;

/** What this process knows about its place in one key's server-side queue. */
interface Queued {
  /** Monotonic ms by which the entry must be refreshed (an attempt goes to the server then). */
  readonly refreshAt: number;
  /** A release was heard (maybe the hand-over to this process): the next attempt asks the server. */
  woken: boolean;
}

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
 * The Redis side of the locks: one script each to acquire, release, extend and leave the
 * queue, and the subscription that hears releases of other processes and wakes the waiters
 * here. Waiters and leases are keyed by stored key.
 *
 * Across processes the waiters queue on the server: a process whose head attempt finds the
 * lock held joins the key's FIFO (one entry per process; {@link LockWaiters} keeps its own
 * waiters in order behind it), and a release hands the lock straight to the first live entry
 * and tells that process alone. So a release costs one attempt by one waiter, however many
 * processes wait. While queued and not woken, the head's attempts are answered here without a
 * command, except one every {@link QUEUE_REFRESH_MS} to keep the entry alive and to see a
 * lapsed lease or claim window.
 */
export class RedisLocks implements LockProtocol {
  /** The waiters of this backend: acquire, release and extend go through them. */
  readonly waiters: LockWaiters;
  readonly #client: RedisClient;
  readonly #calls: CallRunner;
  readonly #layout: KeyLayout;
  readonly #releases: ReleaseListener;
  readonly #replication: ResolvedLockReplication | undefined;
  /** This backend's id in the servers' waiter queues. */
  readonly #waiterId = randomUUID();
  /** Keys whose server-side queue holds this process's entry. */
  readonly #queued = new Map<string, Queued>();
  /** Bumped by every release heard, so a script in flight can tell that one came meanwhile. */
  #heard = 0;

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
    const target = `@${this.#waiterId}`;
    this.#releases = new ReleaseListener({
      target: { wake: (key) => this.#wake(key), wakeAll: () => this.#wakeAll() },
      timeoutMs,
      open: (events) => subscribeToReleases(connect, layout.channel, storedKeyOf, events, (to) => to === target),
    });
  }

  /**
   * One acquire script: the lease when the lock was free or handed over to this process,
   * else how long the holder's lease (or claim window) has left; a waiting attempt that finds
   * it held queues this process. While queued, not woken and hearing releases, a waiting
   * attempt is answered without a command until the entry is due for a refresh. With
   * replicated locks the script raises the fence to the server's clock and is followed by
   * `WAIT`: a lock too few replicas acknowledged is given back and the attempt rejects with
   * `BackendUnavailableError`.
   */
  async attempt(
    key: string,
    leaseMs: number,
    giveBack: (lease: Lease) => void,
    context: Parameters<LockProtocol['attempt']>[3] = { waiting: false },
  ): Promise<AttemptOutcome> {
    const queued = this.#queued.get(key);
    const startedAt = performance.now();
    if (context.waiting && queued !== undefined && !queued.woken && startedAt < queued.refreshAt && this.#releases.listening) {
      return { retryInMs: queued.refreshAt - startedAt };
    }
    const dataKey = this.#layout.dataKey(key);
    const token = randomUUID();
    const acquiredAt = startedAt;
    const heard = this.#heard;
    const waiter = context.waiting ? this.#waiterId : '';
    const args = [
      lockKeyOf(dataKey),
      fenceKeyOf(dataKey),
      queueKeyOf(dataKey),
      entriesKeyOf(dataKey),
      grantKeyOf(dataKey),
      token,
      String(Math.ceil(leaseMs)),
      waiter,
      String(QUEUE_ENTRY_MS),
    ];
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
      if (waiter !== '') this.#queued.delete(key);
      const lease: Lease = { key, token, fencingToken: BigInt(String(value)), acquiredAt };
      if (replication !== undefined && replicas < replication.replicas) {
        // A failover to a replica without it would free the key while the caller held it: not granted.
        giveBack(lease);
        throw unconfirmedAcquire(replicas, replication);
      }
      return { lease };
    }
    const pttl = Number(value);
    const untilLapse = pttl === -1 ? Infinity : pttl;
    if (waiter === '') return { retryInMs: untilLapse };
    // Queued: look again by the entry's refresh, or when the lease or claim window lapses if sooner.
    const retryInMs = Math.min(untilLapse, QUEUE_REFRESH_MS);
    this.#queued.set(key, { refreshAt: startedAt + retryInMs, woken: this.#heard !== heard });
    return { retryInMs };
  }

  /**
   * Lets go of the lock if `lease` still holds it: hands it to the first process queued for
   * it (queueing this process again behind the others when more of its waiters wait), or
   * frees it and announces that. Runs during `close` too.
   */
  async release(lease: Lease): Promise<boolean> {
    const { key } = lease;
    const dataKey = this.#layout.dataKey(key);
    const requeue = this.waiters.waiting(key) > 0 ? this.#waiterId : '';
    const heard = this.#heard;
    const startedAt = performance.now();
    const args = [
      lockKeyOf(dataKey),
      queueKeyOf(dataKey),
      entriesKeyOf(dataKey),
      grantKeyOf(dataKey),
      lease.token,
      this.#layout.channel,
      dataKey,
      requeue,
      String(QUEUE_ENTRY_MS),
      String(CLAIM_MS),
    ];
    const reply = Number(await this.#calls.run('releaseLock', () => runScript(this.#client, RELEASE, args), { evenIfClosed: true }));
    // Handed over with this process queued behind: its next head waits for its turn without asking.
    if (reply === 2 && requeue !== '') {
      this.#queued.set(key, { refreshAt: startedAt + QUEUE_REFRESH_MS, woken: this.#heard !== heard });
      // Its waiters here all left while the release was on its way (their leave found nothing to do).
      if (this.waiters.waiting(key) === 0) void this.leave(key);
    }
    return reply !== 0;
  }

  /**
   * Takes this process out of `key`'s queue once its waiters here all stopped waiting, and
   * passes on a hand-over that reached it meanwhile. A failure is not reported: the entry
   * lapses by itself within {@link QUEUE_ENTRY_MS}, and a hand-over within {@link CLAIM_MS}.
   */
  async leave(key: string): Promise<void> {
    if (!this.#queued.delete(key)) return;
    const dataKey = this.#layout.dataKey(key);
    const args = [
      queueKeyOf(dataKey),
      entriesKeyOf(dataKey),
      grantKeyOf(dataKey),
      this.#waiterId,
      this.#layout.channel,
      dataKey,
      String(CLAIM_MS),
    ];
    try {
      await this.#calls.run('leaveLockQueue', () => runScript(this.#client, LEAVE, args), { evenIfClosed: true });
    } catch {
      // Bounded without it (see above); the waiters that left have nothing to be told.
    }
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

  /** A release of `key` was heard (maybe a hand-over to this process): its head asks the server next. */
  #wake(key: string): void {
    this.#heard += 1;
    const queued = this.#queued.get(key);
    if (queued !== undefined) queued.woken = true;
    this.waiters.wake(key);
  }

  /** Releases may have gone unheard: every queued head asks the server next. */
  #wakeAll(): void {
    this.#heard += 1;
    for (const queued of this.#queued.values()) queued.woken = true;
    this.waiters.wakeAll();
  }
}
