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
import { entriesKeyOf, fenceKeyOf, lockKeyOf, queueKeyOf, type KeyLayout } from './key-layout.js';
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
 * A release whose backend has more waiters for the key keeps the lock for the next of them at
 * most this many times in a row while other backends are queued (then the first of those gets
 * it): hand-overs within a process cost no message and no other process to wake, and the bound
 * keeps the wait of the others finite. A process woken after sleeping runs its next critical
 * sections several times slower than one that kept running, so a longer cohort buys throughput
 * with the wait of the other processes (the adapter's README gives the measurements that set 16).
 */
export const COHORT_MAX = 16;

/**
 * A lock handed over to a waiter that asked for a lease of 0 (no lapse) is held for it this
 * long until it claims it, so a waiter that crashed meanwhile does not hold the key for ever.
 */
export const CLAIM_MS = 1_000;

/** A lock the server handed over to this backend's entry (from the release message). */
interface Grant {
  readonly fencingToken: bigint;
  /** Monotonic ms at or before which the lease began on the server. */
  readonly acquiredAt: number;
}

/** What this backend knows about its entry in one key's server-side queue. */
interface Queued {
  readonly dataKey: string;
  /** The token the entry holds the lock with once it is handed over. */
  readonly token: string;
  /** The lease the entry asks for. */
  readonly leaseMs: number;
  /** Monotonic ms at which the entry's last refresh was sent (the server's `refreshed` is later). */
  readonly sentAt: number;
  /** Monotonic ms by which the entry must be refreshed (an attempt goes to the server then). */
  readonly refreshAt: number;
  /** A release was heard that may concern this entry: the next attempt asks the server. */
  woken: boolean;
  /** The lock was handed over to this entry, as the release message said. */
  grant?: Grant;
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
 * Across processes the waiters queue on the server (FIFO between backends, but a backend may
 * pass the lock to its own next waiter up to {@link COHORT_MAX} times in a row first): a
 * backend whose head attempt finds the lock held joins the key's FIFO (one entry per backend, with the token it will hold the lock
 * with; {@link LockWaiters} keeps its own waiters in order behind it), and a release hands the
 * lock straight to the first live entry and tells that backend alone, whose head then has the
 * lease without another command. So a release costs one hand-over to one waiter, however many
 * processes wait. While queued and not handed the lock, the head's attempts are answered here
 * without a command, except one every {@link QUEUE_REFRESH_MS} that keeps the entry alive and
 * sees a lease that lapsed or a hand-over whose message was missed.
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
  /** The leaseMs of each lease won here, by token, for queueing again at its release with the same lease. */
  readonly #leaseMsOf = new Map<string, number>();
  /** Hand-overs in a row to this backend's own next waiter while others were queued, by key. */
  readonly #streak = new Map<string, number>();

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
    // The hand-over scripts publish to `<channel>@<waiter>` (see QUEUE_HELPERS in scripts.ts).
    const channels = { shared: layout.channel, own: `${layout.channel}@${this.#waiterId}` };
    this.#releases = new ReleaseListener({
      target: { wake: (key) => this.#wake(key), wakeAll: () => this.#wakeAll() },
      timeoutMs,
      open: (events) => subscribeToReleases(connect, channels, storedKeyOf, events, (to, dataKey) => this.#handedOver(to, dataKey)),
    });
  }

  /**
   * The lease when the release message handed the lock to this backend's entry (no command);
   * else one acquire script: the lease when the lock was free or handed over to this entry's
   * token, else how long the holder's lease has left, a waiting attempt queueing this backend.
   * While queued, not woken and hearing releases, a waiting attempt is answered without a
   * command until the entry is due for a refresh. With replicated locks the script raises the
   * fence to the server's clock and is followed by `WAIT` (a hand-over is claimed by the script
   * too, so `WAIT` covers it): a lock too few replicas acknowledged is given back and the attempt
   * rejects with `BackendUnavailableError`.
   */
  async attempt(
    key: string,
    leaseMs: number,
    giveBack: (lease: Lease) => void,
    context: Parameters<LockProtocol['attempt']>[3] = { waiting: false },
  ): Promise<AttemptOutcome> {
    const queued = context.waiting ? this.#queued.get(key) : undefined;
    const startedAt = performance.now();
    if (queued !== undefined) {
      const { grant } = queued;
      // Claimed by the script instead: a lease of another length than the entry asked for, one of
      // 0 (handed over for CLAIM_MS only), and any with replicated locks (WAIT must cover it).
      if (grant !== undefined && leaseMs > 0 && queued.leaseMs === leaseMs && this.#replication === undefined) {
        this.#queued.delete(key);
        this.#leaseMsOf.set(queued.token, leaseMs);
        return { lease: { key, token: queued.token, fencingToken: grant.fencingToken, acquiredAt: grant.acquiredAt } };
      }
      if (grant === undefined && !queued.woken && startedAt < queued.refreshAt && this.#releases.listening) {
        return { retryInMs: queued.refreshAt - startedAt };
      }
    }
    const dataKey = this.#layout.dataKey(key);
    // A queued entry keeps its token, so a hand-over made to it is recognised by the script.
    const token = queued?.token ?? randomUUID();
    const acquiredAt = startedAt;
    const heard = this.#heard;
    const waiter = context.waiting ? this.#waiterId : '';
    const args = [
      lockKeyOf(dataKey),
      fenceKeyOf(dataKey),
      queueKeyOf(dataKey),
      entriesKeyOf(dataKey),
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
      this.#leaseMsOf.set(token, leaseMs);
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
    // Queued: look again by the entry's refresh, or when the lease lapses if sooner.
    const retryInMs = Math.min(untilLapse, QUEUE_REFRESH_MS);
    this.#queued.set(key, { dataKey, token, leaseMs, sentAt: startedAt, refreshAt: startedAt + retryInMs, woken: this.#heard !== heard });
    return { retryInMs };
  }

  /**
   * Lets go of the lock if `lease` still holds it. When more waiters of this backend wait, it
   * keeps the lock for the next of them (at most {@link COHORT_MAX} times in a row while other
   * backends are queued), else hands it to the first backend queued for it (queueing this one
   * again behind the others), or frees it and announces that. Runs during `close` too.
   */
  async release(lease: Lease): Promise<boolean> {
    const { key } = lease;
    const dataKey = this.#layout.dataKey(key);
    const leaseMs = this.#leaseMsOf.get(lease.token);
    this.#leaseMsOf.delete(lease.token);
    const requeue = leaseMs !== undefined && this.waiters.waiting(key) > 0 ? this.#waiterId : '';
    const streak = this.#streak.get(key) ?? 0;
    this.#streak.delete(key);
    const token = randomUUID();
    const heard = this.#heard;
    const startedAt = performance.now();
    const args = [
      lockKeyOf(dataKey),
      fenceKeyOf(dataKey),
      queueKeyOf(dataKey),
      entriesKeyOf(dataKey),
      lease.token,
      this.#layout.channel,
      dataKey,
      requeue,
      token,
      String(Math.ceil(leaseMs ?? 0)),
      String(QUEUE_ENTRY_MS),
      String(CLAIM_MS),
      this.#clocked,
      streak < COHORT_MAX ? '1' : '0',
    ];
    const answer = await this.#calls.run('releaseLock', () => runScript(this.#client, RELEASE, args), { evenIfClosed: true });
    if (Array.isArray(answer)) {
      // Kept for this backend's next waiter: its head takes the lease without a command.
      const [, fence, queued] = answer as [unknown, unknown, unknown];
      if (Number(queued) > 0) this.#streak.set(key, streak + 1);
      this.#queued.set(key, {
        dataKey,
        token,
        leaseMs: leaseMs ?? 0,
        sentAt: startedAt,
        refreshAt: startedAt + QUEUE_REFRESH_MS,
        woken: false,
        grant: { fencingToken: BigInt(String(fence)), acquiredAt: startedAt },
      });
      if (this.waiters.waiting(key) === 0) void this.leave(key);
      return true;
    }
    const reply = Number(answer);
    // Handed over with this backend queued behind: its next head waits for its turn without asking.
    if (reply === 2 && requeue !== '') {
      this.#queued.set(key, {
        dataKey,
        token,
        leaseMs: leaseMs ?? 0,
        sentAt: startedAt,
        refreshAt: startedAt + QUEUE_REFRESH_MS,
        woken: this.#heard !== heard,
      });
      // Its waiters here all left while the release was on its way (their leave found nothing to do).
      if (this.waiters.waiting(key) === 0) void this.leave(key);
    }
    return reply !== 0;
  }

  /**
   * Takes this backend out of `key`'s queue once its waiters here all stopped waiting, and
   * passes on a hand-over that reached it meanwhile. A failure is not reported: the entry
   * lapses by itself within {@link QUEUE_ENTRY_MS}, and a hand-over with its lease.
   */
  async leave(key: string): Promise<void> {
    const queued = this.#queued.get(key);
    if (queued === undefined) return;
    this.#queued.delete(key);
    const { dataKey } = queued;
    const args = [
      lockKeyOf(dataKey),
      fenceKeyOf(dataKey),
      queueKeyOf(dataKey),
      entriesKeyOf(dataKey),
      this.#waiterId,
      queued.token,
      this.#layout.channel,
      dataKey,
      String(QUEUE_ENTRY_MS),
      String(CLAIM_MS),
      this.#clocked,
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

  /** `'1'` when hand-overs must raise the fence to the server's clock (replicated locks). */
  get #clocked(): string {
    return this.#replication === undefined ? '0' : '1';
  }

  /**
   * A message meant for one waiter (`@<waiter>/<token>/<fence>/<ms since refresh>`): whether it
   * is for this backend, noting the hand-over on the entry it names. The lease began at the
   * earliest when the entry's last refresh was sent plus the server's ms since that refresh.
   */
  #handedOver(to: string, dataKey: string): boolean {
    const [waiter, token, fence, since] = to.slice(1).split('/');
    if (waiter !== this.#waiterId) return false;
    for (const queued of this.#queued.values()) {
      if (queued.dataKey !== dataKey || queued.token !== token || fence === undefined || !/^\d+$/.test(fence)) continue;
      const acquiredAt = Math.min(performance.now(), queued.sentAt + Math.max(0, Number(since) - 1));
      queued.grant = { fencingToken: BigInt(fence), acquiredAt: Number.isFinite(acquiredAt) ? acquiredAt : queued.sentAt };
    }
    return true;
  }

  /** A release of `key` was heard (maybe a hand-over to this backend): its head looks next. */
  #wake(key: string): void {
    this.#heard += 1;
    const queued = this.#queued.get(key);
    if (queued !== undefined) {
      queued.woken = true;
      // Handed over after every waiter here left: pass it on.
      if (queued.grant !== undefined && this.waiters.waiting(key) === 0) void this.leave(key);
    }
    this.waiters.wake(key);
  }

  /** Releases may have gone unheard: every queued head asks the server next. */
  #wakeAll(): void {
    this.#heard += 1;
    for (const queued of this.#queued.values()) queued.woken = true;
    this.waiters.wakeAll();
  }
}
