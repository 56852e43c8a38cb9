import { randomUUID } from 'node:crypto';
import {
  BackendClosedError,
  BackendError,
  reportGiveBackFailure,
  type AttemptOutcome,
  type Call,
  type CallRunner,
  type DeleteOutcome,
  type Lease,
  type LockProtocol,
  type WriteOutcome,
} from '@latchkey/core';
import { BACKEND_NAME, statusError } from './errors.js';
import { absoluteLeaseExptime, ALREADY_EXPIRED, leaseExptime } from './expiry.js';
import type { Generations } from './generations.js';
import { ItemFlags, requests, Status, statusText, type Reply } from './protocol.js';
import type { Route, Router } from './router.js';
import { localNow } from './server-clock.js';

/** How often a step that lost a race (the item changed under it) is retried. */
const MAX_RACES = 8;
const EMPTY = new Uint8Array(0);

/** What the backend remembers about a lease it granted (not needed for correctness). */
interface LeaseState {
  /** The lock item's CAS after our last add/extend: lets release and extend skip a read. */
  lockCas: bigint | undefined;
  /** The CAS of the placeholder added at acquire, to delete it on release if nobody wrote. */
  readonly placeholderCas: bigint | undefined;
}

/**
 * Lease locks on memcached, built from its compare-and-swap (CAS) values.
 *
 * - **Acquire**: `add` of the lock item (value: a fresh owner token, expiry: see
 *   {@link lockExptime}), then the server's fence counter is incremented and the data item's
 *   CAS is bumped (an empty `append`, or an empty placeholder item when the key is missing).
 *   The bump is the fence: any holder that read the data item's CAS before it can no longer
 *   write.
 * - **Locked write/delete**: one pipelined round trip reads the data item's CAS and then the
 *   lock item; if the lock item no longer carries this lease's token the result is
 *   `lease-lost`, otherwise the write is a `set`/`delete` with that CAS (or an `add` when the
 *   item is missing), so it applies only if the item is unchanged since the check.
 * - **Release/extend**: `delete`/`set` of the lock item with its CAS, re-read (and checked for
 *   our token) when the CAS moved; never touches another holder's lock item.
 *
 * Every step runs under the backend's {@link CallRunner}. An attempt cannot tell how long the
 * holder's lease has left (memcached does not return an item's expiry), so it never says.
 */
export class MemcachedLocks implements LockProtocol {
  readonly #states = new WeakMap<Lease, LeaseState>();
  readonly #router: Router;
  readonly #calls: CallRunner;
  readonly #generations: Generations;

  constructor(router: Router, calls: CallRunner, generations: Generations) {
    this.#router = router;
    this.#calls = calls;
    this.#generations = generations;
  }

  /** One try at the lease on backend key `key`: `{ lease }`, or `{}` when another owner holds it. */
  attempt(key: string, leaseMs: number, giveBack: (lease: Lease) => void): Promise<AttemptOutcome> {
    const route = this.#router.route(key);
    return this.#calls.run('acquireLock', (call) => this.#attempt(route, leaseMs, call), {
      // Won after the attempt had settled: nobody will hold it.
      onLate: ({ lease }) => {
        if (lease !== undefined) giveBack(lease);
      },
    });
  }

  /** Frees the key if `lease` still holds it; runs even while the backend closes (to give back what it holds). */
  release(lease: Lease): Promise<boolean> {
    const route = this.#router.route(lease.key);
    return this.#calls.run('releaseLock', (call) => this.#release(route, lease, call), { evenIfClosed: true });
  }

  /** Renews `lease` for `leaseMs` from now if it still holds the key. */
  extend(lease: Lease, leaseMs: number): Promise<boolean> {
    const route = this.#router.route(lease.key);
    return this.#calls.run('extendLock', (call) => this.#extend(route, lease, leaseMs, call));
  }

  async #attempt(route: Route, leaseMs: number, call: Call): Promise<AttemptOutcome> {
    const token = randomUUID();
    const acquiredAt = performance.now();
    const exptime = lockExptime(route, leaseMs, performance.timeOrigin + acquiredAt);
    const [added] = (await route.channel.send([requests.add(route.lockKey, Buffer.from(token, 'latin1'), ItemFlags.lock, exptime)])) as [
      Reply,
    ];
    if (added.status === Status.exists || added.status === Status.notStored) return {};
    if (added.status !== Status.ok) throw statusError('adding the lock item', route, added);
    try {
      if (added.cas === 0n) {
        throw new BackendError(`memcached ${route.channel.name} runs without CAS values (-C); lease locks need them.`);
      }
      call.check();
      const [fence, bump] = (await route.channel.send([
        requests.increment(route.fenceKey, initialFence()),
        requests.touchCas(route.dataKey),
      ])) as [Reply, Reply];
      if (fence.status !== Status.ok || fence.value.length !== 8) throw statusError('incrementing the fence counter', route, fence);
      const placeholderCas = bump.status === Status.ok ? undefined : await this.#fenceMissing(route, bump, exptime, call);
      const lease: Lease = Object.freeze({ key: route.key, token, fencingToken: fence.value.readBigUInt64BE(0), acquiredAt });
      this.#states.set(lease, { lockCas: added.cas, placeholderCas });
      return { lease };
    } catch (error) {
      // We hold the lock item but cannot hand out the lease: give it back (it lapses by itself otherwise).
      this.#giveBack(route, () => route.channel.send([requests.delete(route.lockKey, added.cas)]));
      throw error;
    }
  }

  /**
   * Gives back, best effort, a lock item nobody will hold; a failure is reported. Not once the
   * backend is closed: its connections may be gone, and sending would open new ones.
   */
  #giveBack(lease: Pick<Lease, 'key'>, send: () => Promise<unknown>): void {
    const sent = this.#calls.closed
      ? Promise.reject(new BackendClosedError(`${BACKEND_NAME} was closed before it could give back.`))
      : send();
    sent.catch((error: unknown) => reportGiveBackFailure(BACKEND_NAME, lease, error));
  }

  async #release(route: Route, lease: Lease, call: Call): Promise<boolean> {
    const state = this.#states.get(lease);
    let cas = state?.lockCas;
    // An untouched placeholder stands for "missing"; delete it with its CAS so it goes only if
    // nobody wrote since (a later holder's fence bump changes the CAS too).
    let extra = state?.placeholderCas === undefined ? [] : [requests.delete(route.dataKey, state.placeholderCas)];
    for (let race = 0; race < MAX_RACES; race++) {
      call.check();
      if (cas === undefined) {
        cas = await this.#ownedLockCas(route, lease);
        if (cas === undefined) return false;
      }
      const [deleted] = (await route.channel.send([requests.delete(route.lockKey, cas), ...extra])) as [Reply];
      extra = [];
      if (deleted.status === Status.ok) {
        this.#states.delete(lease);
        return true;
      }
      if (deleted.status === Status.notFound) return false;
      if (deleted.status !== Status.exists) throw statusError('deleting the lock item', route, deleted);
      cas = undefined;
    }
    throw raceError(route, 'release');
  }

  async #extend(route: Route, lease: Lease, leaseMs: number, call: Call): Promise<boolean> {
    const state = this.#states.get(lease);
    let cas = state?.lockCas;
    const exptime = lockExptime(route, leaseMs, localNow());
    for (let race = 0; race < MAX_RACES; race++) {
      call.check();
      if (cas === undefined) {
        cas = await this.#ownedLockCas(route, lease);
        if (cas === undefined) return false;
      }
      const [renewed] = (await route.channel.send([
        requests.set(route.lockKey, Buffer.from(lease.token, 'latin1'), ItemFlags.lock, exptime, cas),
      ])) as [Reply];
      if (renewed.status === Status.ok) {
        if (state !== undefined) state.lockCas = renewed.cas;
        return true;
      }
      if (renewed.status === Status.notFound) return false;
      if (renewed.status !== Status.exists) throw statusError('renewing the lock item', route, renewed);
      cas = undefined;
    }
    throw raceError(route, 'extend');
  }

  /**
   * Writes `value` (or, for an `exptime` of {@link ALREADY_EXPIRED}, removes the key) only
   * while `lease` holds the key.
   */
  async set(route: Route, value: Uint8Array, exptime: number, lease: Lease, call: Call): Promise<WriteOutcome> {
    for (let race = 0; race < MAX_RACES; race++) {
      call.check();
      // Reading the CAS (by bumping it) before checking the lock is what makes the check
      // hold until the write: a later holder's acquire bumps the CAS again.
      const [current, lock, generation] = (await route.channel.send([
        requests.touchCas(route.dataKey),
        requests.get(route.lockKey),
        this.#generations.read(route),
      ])) as [Reply, Reply, Reply];
      if (!this.#owns(lease, lock)) return 'lease-lost';
      // The CAS keeps the item unchanged from this read to the write, so the write counts as
      // made at the read: under the generation read with it (a clear in between hides it).
      const flags = this.#generations.observe(route, generation) ?? (await this.#generations.flags(route));
      const exists = current.status === Status.ok;
      if (!exists && current.status !== Status.notStored) throw statusError('reading the CAS', route, current);
      call.check();
      let write: Reply;
      if (exptime === ALREADY_EXPIRED) {
        if (!exists) return 'written';
        [write] = (await route.channel.send([requests.delete(route.dataKey, current.cas)])) as [Reply];
      } else {
        const request = exists
          ? requests.set(route.dataKey, value, flags, exptime, current.cas)
          : requests.add(route.dataKey, value, flags, exptime);
        [write] = (await route.channel.send([request])) as [Reply];
      }
      if (write.status === Status.ok) return 'written';
      if (!isLostRace(write)) throw statusError('the locked write', route, write);
    }
    throw raceError(route, 'locked write');
  }

  /** Deletes the key only while `lease` holds it. */
  async delete(route: Route, lease: Lease, call: Call): Promise<DeleteOutcome> {
    for (let race = 0; race < MAX_RACES; race++) {
      call.check();
      const [current, lock, generation] = (await route.channel.send([
        requests.get(route.dataKey),
        requests.get(route.lockKey),
        this.#generations.read(route),
      ])) as [Reply, Reply, Reply];
      if (!this.#owns(lease, lock)) return 'lease-lost';
      // A placeholder or a value of an older generation (a clear hid it) counts as missing.
      if (
        current.status === Status.notFound ||
        (current.status === Status.ok && current.flags !== this.#generations.observe(route, generation))
      )
        return 'missing';
      if (current.status !== Status.ok) throw statusError('reading the CAS', route, current);
      call.check();
      const [deleted] = (await route.channel.send([requests.delete(route.dataKey, current.cas)])) as [Reply];
      if (deleted.status === Status.ok) return 'deleted';
      if (!isLostRace(deleted)) throw statusError('the locked delete', route, deleted);
    }
    throw raceError(route, 'locked delete');
  }

  /** After a fence bump found no data item: add an empty placeholder to carry the CAS. */
  async #fenceMissing(route: Route, bump: Reply, exptime: number, call: Call): Promise<bigint | undefined> {
    let last = bump;
    for (let race = 0; race < MAX_RACES; race++) {
      if (last.status !== Status.notStored) throw statusError('bumping the CAS', route, last);
      call.check();
      const [added] = (await route.channel.send([requests.add(route.dataKey, EMPTY, ItemFlags.placeholder, exptime)])) as [Reply];
      if (added.status === Status.ok) return added.cas;
      if (added.status !== Status.exists && added.status !== Status.notStored) throw statusError('adding the placeholder', route, added);
      // Someone wrote the key in between: bump that item instead.
      call.check();
      [last] = (await route.channel.send([requests.touchCas(route.dataKey)])) as [Reply];
      if (last.status === Status.ok) return undefined;
    }
    throw raceError(route, 'acquire');
  }

  /** The lock item's current CAS if it carries `lease`'s token, else `undefined`. */
  async #ownedLockCas(route: Route, lease: Lease): Promise<bigint | undefined> {
    const [lock] = (await route.channel.send([requests.get(route.lockKey)])) as [Reply];
    if (!this.#owns(lease, lock)) return undefined;
    const state = this.#states.get(lease);
    if (state !== undefined) state.lockCas = lock.cas;
    return lock.cas;
  }

  #owns(lease: Lease, lock: Reply): boolean {
    if (lock.status === Status.notFound) return false;
    if (lock.status !== Status.ok) throw new BackendError(`memcached: reading a lock item failed: ${statusText(lock.status)}.`);
    return lock.flags === ItemFlags.lock && lock.value.toString('latin1') === lease.token;
  }
}

/**
 * The exptime of `route`'s lock item for a lease of `leaseMs` from `startedAtMs` (epoch ms on
 * `localNow`'s clock): absolute once the server's clock has been measured, so a lease granted
 * by a server just back from a stall still lives its `leaseMs`; relative (whole seconds plus two
 * ticks) until then.
 */
function lockExptime(route: Route, leaseMs: number, startedAtMs: number): number {
  if (leaseMs === 0) return 0;
  const bound = route.channel.clock.offsetBound();
  const absolute = bound === undefined ? undefined : absoluteLeaseExptime(leaseMs, startedAtMs, bound);
  return absolute ?? leaseExptime(leaseMs, Date.now());
}

/**
 * The fence counter's value when it has to be created (first use, or after the server lost
 * it): the current time in microseconds, so tokens keep increasing across a counter loss as
 * long as clocks are roughly right and fewer than a million locks a second were taken.
 */
function initialFence(): bigint {
  return BigInt(Date.now()) * 1000n;
}

function isLostRace(reply: Reply): boolean {
  return reply.status === Status.exists || reply.status === Status.notFound || reply.status === Status.notStored;
}

function raceError(route: Route, what: string): BackendError {
  return new BackendError(
    `memcached ${route.channel.name}: ${what} on "${route.dataKey}" kept losing races with concurrent writers; gave up after ${MAX_RACES} tries.`,
  );
}
