/**
 * Delayed locked write: the server-side refusal path, exercised on purpose. A holder sends a
 * locked `set` while its lock is still trusted (the client-side expiry check passes), and the
 * TCP proxy holds the bytes on their way to the server until the lease has lapsed and another
 * holder has taken the key and written. Then the bytes arrive: the server must refuse every one
 * of these writes (`lease-lost`, so the store throws `LockTimeoutError`), and the newer holder's
 * value must be what is stored afterwards.
 *
 * On memcached a locked write is two round trips (read the CAS and check the lock item, then
 * the CAS write), so half the rounds hold the first byte of the write and half let the check
 * through and hold the CAS write that follows it (the later acquire bumped the CAS).
 *
 * @module
 */
import {
  KeyValueStore,
  ProxyBackend,
  type BackendWriteOptions,
  type KeyValueStoreLock,
  type StoredValue,
  type WriteOutcome,
} from '@latchkey/core';
import { describe, expect, it } from 'vitest';
import { createBackend, leaseFor, type BackendTarget } from '../backends.js';
import type { SuiteContext } from '../context.js';
import { FULL } from '../profiles.js';
import { addressFor, hostPort } from '../servers.js';
import { record, summarize } from '../stats.js';
import { TcpFaultProxy } from '@latchkey/conformance';
import { epochNow, outcomeOf, tally, type Outcome } from '../worker/outcome.js';

/** Trials per backend (keys whose write is held past the lease). */
const TRIALS = FULL ? 100 : 20;
/** Keys per round: their writes are held together. */
const KEYS_PER_ROUND = 5;
/** The adapter's deadline: far above the hold, so the answer is the server's, not a timeout. */
const DEADLINE_MS = 20_000;
const SAFETY_WINDOW_MS = 50;

/** Where the proxy starts holding the write. */
type HoldPoint = 'first byte' | 'after the lock check';

/** One locked `set` as the backend saw it. */
interface SeenWrite {
  readonly key: string;
  /** Epoch ms of the call (the client-side checks had passed). */
  readonly calledAt: number;
  /** Whether every lock of the round was still trusted (active, not expired) at the call. */
  readonly trusted: boolean;
  /** The backend's answer: `written`, `lease-lost`, or the error's outcome. */
  outcome?: WriteOutcome | Outcome;
}

/** Records every locked `set` that reaches the backend, with the backend's answer. */
class LockedWriteRecorder extends ProxyBackend {
  readonly writes: SeenWrite[] = [];
  /** Set by the scenario: whether the holder's locks are trusted right now. */
  trusted: () => boolean = () => false;

  override async set(key: string, value: StoredValue, options?: BackendWriteOptions): Promise<WriteOutcome> {
    if (options?.lease === undefined) return super.set(key, value, options);
    const seen: SeenWrite = { key, calledAt: epochNow(), trusted: this.trusted() };
    this.writes.push(seen);
    try {
      const outcome = await super.set(key, value, options);
      seen.outcome = outcome;
      return outcome;
    } catch (error) {
      seen.outcome = outcomeOf(error);
      throw error;
    }
  }
}

/** What one held write ended as. */
interface Trial {
  readonly key: string;
  readonly holdPoint: HoldPoint;
  /** The holder's `store.set` outcome (`ok` or an error code). */
  readonly storeOutcome: Outcome;
  /** What the backend answered the holder (`written` would be a stale write accepted). */
  readonly backendOutcome: WriteOutcome | Outcome | undefined;
  readonly trustedWhenSent: boolean;
  /** The value read afterwards. */
  readonly valueAfter: unknown;
  readonly expectedValue: string;
  /** How long the bytes were held, ms. */
  readonly heldMs: number;
  /** When the other holder got the key, ms after the holder's acquire. */
  readonly takenOverAfterMs: number;
}

async function openStore(name: string, target: BackendTarget, leaseMs: number, proxies: ProxyBackend[] = []): Promise<KeyValueStore> {
  const store = new KeyValueStore(name);
  await store.configure(await createBackend(target), {
    // Keys as given, so the recorded backend calls name the scenario's keys.
    keyMangler: null,
    proxies,
    lockTimeoutMs: leaseMs,
    lockSafetyWindowMs: SAFETY_WINDOW_MS,
    lockWaitMs: 0,
    operationTimeoutMs: DEADLINE_MS + 5000,
  });
  return store;
}

async function settle(work: Promise<unknown>): Promise<Outcome> {
  try {
    await work;
    return 'ok';
  } catch (error) {
    return outcomeOf(error);
  }
}

/** Registers the delayed-write scenario (networked backends only). */
export function defineDelayedWriteTests(context: SuiteContext): void {
  const { kind } = context;
  if (kind === 'memory') return;
  const holdPoints: readonly HoldPoint[] = kind === 'memcached' ? ['first byte', 'after the lock check'] : ['first byte'];

  describe('delayed locked write', () => {
    it(
      `refuses every locked write whose bytes reach the server after the lease lapsed and another holder took the key (${TRIALS} trials)`,
      { timeout: 300_000 },
      async () => {
        const leaseMs = leaseFor(context.capabilities(), 1000);
        const target = context.target({ operationTimeoutMs: DEADLINE_MS });
        const proxy = await TcpFaultProxy.start(hostPort(context.address).port);
        const recorder = new LockedWriteRecorder();
        const stores: KeyValueStore[] = [];
        const trials: Trial[] = [];
        try {
          const holder = await openStore('delayed-write-holder', { ...target, address: addressFor(kind, proxy.port) }, leaseMs, [recorder]);
          stores.push(holder);
          const successor = await openStore('delayed-write-successor', target, leaseMs);
          stores.push(successor);
          const rounds = Math.ceil(TRIALS / KEYS_PER_ROUND);
          for (let round = 0; round < rounds; round += 1) {
            const holdPoint = holdPoints[round % holdPoints.length] as HoldPoint;
            const keys = Array.from(
              { length: Math.min(KEYS_PER_ROUND, TRIALS - round * KEYS_PER_ROUND) },
              (_, i) => `delayed:${round}:${i}`,
            );
            trials.push(...(await heldRound(holder, successor, proxy, recorder, keys, holdPoint, round)));
          }
        } finally {
          proxy.releaseToServer();
          await Promise.allSettled(stores.map((store) => store.close()));
          await proxy.close();
        }

        const accepted = trials.filter((trial) => trial.backendOutcome === 'written');
        const overwritten = trials.filter((trial) => trial.valueAfter !== trial.expectedValue);
        record(kind, 'delayed-write', {
          leaseMs,
          trials: trials.length,
          holdPoints: tally(trials.map((trial) => trial.holdPoint)),
          trustedWhenSent: trials.filter((trial) => trial.trustedWhenSent).length,
          backendOutcomes: tally(trials.map((trial) => String(trial.backendOutcome))),
          storeOutcomes: tally(trials.map((trial) => trial.storeOutcome)),
          staleWritesAccepted: accepted.length,
          newerValueOverwritten: overwritten.length,
          heldMs: summarize(trials.map((trial) => trial.heldMs)),
          takenOverAfterLeaseStartMs: summarize(trials.map((trial) => trial.takenOverAfterMs)),
        });
        expect(trials).toHaveLength(TRIALS);
        // Every write left while its lock was trusted: only the server could refuse it.
        expect(trials.filter((trial) => !trial.trustedWhenSent)).toEqual([]);
        expect(accepted).toEqual([]);
        expect(trials.filter((trial) => trial.backendOutcome !== 'lease-lost' || trial.storeOutcome !== 'LOCK_TIMEOUT')).toEqual([]);
        expect(overwritten).toEqual([]);
      },
    );
  });
}

/**
 * One round: the holder takes `keys`, the proxy starts holding at `holdPoint`, the holder sends
 * its locked writes, the successor waits for the leases to lapse, takes every key and writes,
 * then the held bytes go through.
 */
async function heldRound(
  holder: KeyValueStore,
  successor: KeyValueStore,
  proxy: TcpFaultProxy,
  recorder: LockedWriteRecorder,
  keys: readonly string[],
  holdPoint: HoldPoint,
  round: number,
): Promise<Trial[]> {
  const acquiredAt: number[] = [];
  const locks: KeyValueStoreLock[] = [];
  for (const key of keys) {
    acquiredAt.push(epochNow());
    locks.push(await holder.getLock(key).acquire({ waitMs: 5000 }));
  }
  recorder.trusted = () => locks.every((lock) => lock.active && !lock.expired);
  const seenBefore = recorder.writes.length;
  if (holdPoint === 'first byte') proxy.holdToServer();
  else proxy.holdToServerAfterNextReply();
  const stale = `stale-${round}`;
  const newer = `newer-${round}`;
  const writes = keys.map((key, i) => settle(holder.set(key, stale, { lock: locks[i] as KeyValueStoreLock })));
  const successorLocks = await Promise.all(keys.map((key) => successor.getLock(key).acquire({ waitMs: 30_000 })));
  const takenAt = epochNow();
  for (const [i, key] of keys.entries()) await successor.set(key, newer, { lock: successorLocks[i] as KeyValueStoreLock });
  const releasedAt = epochNow();
  proxy.releaseToServer();
  const storeOutcomes = await Promise.all(writes);
  const seen = recorder.writes.slice(seenBefore);
  const values = await Promise.all(keys.map((key) => successor.get(key).catch((error: unknown) => outcomeOf(error))));
  for (const lock of successorLocks) await lock.release();
  for (const lock of locks) await settle(lock.release());
  return keys.map((key, i): Trial => {
    // The holder's one locked write of this key in the round (a memcached write that loses a
    // CAS race retries inside the same backend call).
    const write = seen.find((entry) => entry.key === key);
    return {
      key,
      holdPoint,
      storeOutcome: storeOutcomes[i] as Outcome,
      backendOutcome: write?.outcome,
      trustedWhenSent: write?.trusted ?? false,
      valueAfter: values[i],
      expectedValue: newer,
      heldMs: Math.round(releasedAt - (write?.calledAt ?? releasedAt)),
      takenOverAfterMs: Math.round(takenAt - (acquiredAt[i] as number)),
    };
  });
}
