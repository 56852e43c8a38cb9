/**
 * What a fault-suite worker can be asked to do. The same handlers run inside forked worker
 * processes (redis, memcached, mongo: one OS process per worker) and inside the test process
 * (memory, whose locks are visible within one process only), so every scenario is written
 * once against {@link Commands}.
 *
 * @module
 */
import { AsyncLocalStorage, createHook } from 'node:async_hooks';
import { getEventListeners } from 'node:events';
import {
  KeyValueStore,
  NotFoundError,
  type Backend,
  type BackendCapabilities,
  type Lease,
  type ProxyBackend,
  type KeyValueStoreLock,
} from '@latchkey/core';
import { RecordingProxy } from '@latchkey/conformance';
import type { BackendTarget } from '../backends.js';
import { epochNow, outcomeOf, sleep, type Outcome } from './outcome.js';

/**
 * How long after an aborted acquire settles its key may still be held: a lock the backend
 * granted just as the waiter left is released by a call still travelling. (A lock truly
 * left behind stays held for the whole lease, 10 s in the abort trials.)
 */
export const LOCK_RELEASE_GRACE_MS = 2000;

/** How soon an aborted acquire must settle (the suite's target, docs/FAULT-TESTS.md). */
export const ABORT_SETTLE_MS = 50;

/** A value scenarios store: anything that survives structured clone and JSON. */
export type PlainValue = string | number | boolean | null;

/** Store settings a scenario picks. */
export interface StoreSettings {
  readonly lockTimeoutMs: number;
  readonly lockSafetyWindowMs: number;
  readonly lockWaitMs: number;
  /** The store's backstop deadline (set above the adapter's own, so the adapter's is what is tested). */
  readonly operationTimeoutMs: number;
}

/** Arguments of {@link Commands.increment}. */
export interface IncrementArgs {
  readonly key: string;
  /** Successful increments (or attempts, without `retry`) each concurrent worker makes. */
  readonly perWorker: readonly number[];
  readonly waitMs: number;
  /** Retry an increment whose acquire or locked write failed until it succeeds. */
  readonly retry: boolean;
}

/** What {@link Commands.increment} measured. */
export interface IncrementReport {
  readonly successes: number;
  readonly attempts: number;
  /** Failed attempts by outcome (`LOCK_ACQUIRE_TIMEOUT`, …). */
  readonly failures: Record<Outcome, number>;
  /** Failed releases by outcome (a release failure does not undo the increment). */
  readonly releaseFailures: Record<Outcome, number>;
  /** Wait of every successful acquisition, ms. */
  readonly acquireMs: number[];
  /** Every accepted write: the lock's fencing token (decimal) and the value written. */
  readonly writes: [string, number][];
}

/** What a holder's late attempts did after its lease was gone. */
export interface StaleReport {
  readonly key: string;
  /** `store.set(key, v, { lock })`. */
  readonly storeSet: Outcome;
  /** `store.delete(key, { lock })`. */
  readonly storeDelete: Outcome;
  /** The same write straight to the backend with the old lease (no client expiry check): `written` / `lease-lost`. */
  readonly rawSet: Outcome;
  /** The same delete straight to the backend with the old lease: `deleted` / `missing` / `lease-lost`. */
  readonly rawDelete: Outcome;
}

/** One key's value, or why it could not be read. */
export interface ReadResult {
  readonly key: string;
  /** `'ok'` with `value`, `'NOT_FOUND'`, or another outcome. */
  readonly outcome: Outcome;
  readonly value?: unknown;
}

/** The abort signal of a held lock. */
export interface SignalState {
  readonly key: string;
  readonly aborted: boolean;
  /** The abort reason's outcome (e.g. `LOCK_TIMEOUT`). */
  readonly reason?: Outcome;
  /** When it aborted (epoch ms). */
  readonly abortedAt?: number;
}

/** Arguments of {@link Commands.startLoad}. */
export interface LoadArgs {
  readonly keys: readonly string[];
  readonly concurrency: number;
  /** Pause between a loop's calls, ms. */
  readonly pauseMs: number;
}

/** One call of a load: start and end (epoch ms), outcome and operation. */
export type CallRecord = [start: number, end: number, outcome: Outcome, op: string];

/** A stretch of time the worker's event loop could not run: from `start` to `end` (epoch ms). */
export type Stall = [start: number, end: number];

/** What a load measured. */
export interface LoadReport {
  readonly calls: CallRecord[];
  /** Calls still unsettled when the load was stopped (after waiting out their deadline). */
  readonly pending: number;
  /** When the worker's event loop stood still for more than {@link StallRecorder.MIN_STALL_MS} (the machine was starved). */
  readonly stalls: Stall[];
}

/**
 * Notices when this process's event loop stands still: a 5 ms timer chain records every
 * tick that fires late. A deadline timer cannot fire while the loop stands still, whoever
 * armed it, so a call's lateness during such a stall is the machine's, not the library's.
 */
export class StallRecorder {
  /** Lateness below this is timer jitter, not a stall. */
  static readonly MIN_STALL_MS = 10;
  static readonly #TICK_MS = 5;
  /** The stalls seen. */
  readonly stalls: Stall[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** Starts watching. */
  start(): void {
    const tick = (expected: number): void => {
      this.#timer = setTimeout(() => {
        const now = epochNow();
        if (now - expected > StallRecorder.MIN_STALL_MS) this.stalls.push([expected, now]);
        tick(now + StallRecorder.#TICK_MS);
      }, StallRecorder.#TICK_MS);
      this.#timer.unref();
    };
    tick(epochNow() + StallRecorder.#TICK_MS);
  }

  /** Stops watching. */
  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** Arguments of {@link Commands.aborts}. */
export interface AbortArgs {
  readonly prefix: string;
  readonly trials: number;
  readonly concurrency: number;
  /** Aborts happen at a random moment in `[0, maxDelayMs]` after the acquire starts. */
  readonly maxDelayMs: number;
  /** Lease of the locks involved. */
  readonly lockTimeoutMs: number;
}

/** What {@link Commands.aborts} measured. */
export interface AbortReport {
  readonly trials: number;
  /** Trials whose key was held by someone else (the acquire was waiting). */
  readonly waiting: number;
  /** Trials whose acquire won the free key before the abort landed. */
  readonly wonBeforeAbort: number;
  /** Trials rejected with the signal's reason. */
  readonly rejectedWithReason: number;
  /** Trials that settled some other way (outcome → count). */
  readonly otherOutcomes: Record<Outcome, number>;
  /** Abort → settle latency of every rejected trial, ms (wall clock: includes any stall of the process). */
  readonly settleMs: number[];
  /**
   * Rejected trials that settled in the same event-loop turn as the abort (before any timer,
   * I/O or immediate could run): prompt whatever the wall clock says, since nothing else ran.
   */
  readonly settledInAbortTurn: number;
  /** Settle latencies over {@link ABORT_SETTLE_MS} of trials that did not settle in the abort's turn. */
  readonly lateSettles: number[];
  /** Trials whose key another client could not take within {@link LOCK_RELEASE_GRACE_MS} once everyone let go. */
  readonly locksLeftBehind: number;
  /** Trials whose key needed a retry within that grace (a release still travelling). */
  readonly locksFreedLate: number;
  /** Trials whose signal still had abort listeners after settling. */
  readonly listenersLeftBehind: number;
  /** Timers created during the trials and still alive after the stores closed. */
  readonly timersLeftBehind: number;
  /** Where those timers were created (first stack frames), for the failure message. */
  readonly timerOrigins: string[];
}

/** What a worker had left when it closed. */
export interface CloseReport {
  readonly unhandledRejections: string[];
  /** Active resources (`process.getActiveResourcesInfo()`) after closing, IPC excluded. */
  readonly resources: string[];
}

/** The commands of a worker. Every argument and result is plain data. */
export interface Commands {
  /** Builds the worker's backend and store. */
  open(args: { target: BackendTarget; store: StoreSettings }): Promise<{ capabilities: BackendCapabilities }>;
  /** Lock-protected read-increment-write loops on one key. */
  increment(args: IncrementArgs): Promise<IncrementReport>;
  /** Takes each key's lock (waiting up to `waitMs`) and writes `value` under it; keeps the locks. */
  hold(args: {
    keys: readonly string[];
    value: PlainValue;
    waitMs: number;
    lockTimeoutMs?: number;
    autoExtend?: boolean;
  }): Promise<{ tokens: string[]; acquiredAt: number[] }>;
  /** Releases the held locks of `keys`. */
  release(args: { keys: readonly string[] }): Promise<{ outcomes: Outcome[] }>;
  /** A holder whose lease is gone tries to write and delete, through the store and straight at the backend. */
  stale(args: { keys: readonly string[]; value: PlainValue }): Promise<StaleReport[]>;
  /** Writes under the held lock of each key, retrying while the backend is unreachable (up to `retryForMs`). */
  lockedWrite(args: { keys: readonly string[]; value: PlainValue; retryForMs: number }): Promise<Outcome[]>;
  /** Unconditional writes. */
  write(args: { entries: readonly (readonly [string, PlainValue])[] }): Promise<void>;
  /** Reads each key. */
  read(args: { keys: readonly string[] }): Promise<ReadResult[]>;
  /** The abort signals of held locks. */
  signals(args: { keys: readonly string[] }): Promise<SignalState[]>;
  /** Whether each key's lock can be taken right now (taken and released again). */
  probeFree(args: { keys: readonly string[] }): Promise<boolean[]>;
  /** Starts a mixed load (get, set, locked increments) that runs until {@link stopLoad}. */
  startLoad(args: LoadArgs): Promise<void>;
  /** Stops the load and reports every call. */
  stopLoad(args: { settleMs: number }): Promise<LoadReport>;
  /** Starts writing `prefix<i>` = i for i = 1, 2, … until {@link stopWrites}. */
  startWrites(args: { prefix: string; concurrency: number }): Promise<void>;
  /** Stops writing; reports every acknowledged `i`. */
  stopWrites(): Promise<{ acked: number[]; failures: Record<Outcome, number> }>;
  /** Aborts acquires at random moments and checks nothing is left behind. */
  aborts(args: AbortArgs): Promise<AbortReport>;
  /** Closes the store (releasing nothing: a closing worker's locks lapse) and reports leftovers. */
  close(): Promise<CloseReport>;
}

/** How a worker gets its backend. */
export interface WorkerEnvironment {
  /** Builds (or hands out) the backend for `target`. */
  backend(target: BackendTarget): Promise<Backend>;
  /** Extra proxies in front of it (e.g. one that keeps a shared backend open). */
  proxies(): ProxyBackend[];
  /** Unhandled rejections seen so far (forked workers count them). */
  unhandledRejections(): string[];
}

interface Held {
  readonly lock: KeyValueStoreLock;
  readonly lease: Lease | undefined;
  abortedAt?: number;
}

interface Session {
  readonly target: BackendTarget;
  readonly settings: StoreSettings;
  readonly store: KeyValueStore;
  readonly recorder: RecordingProxy;
  readonly capabilities: BackendCapabilities;
}

let storeCounter = 0;

/** Creates the command handlers of one worker. */
export function createCommands(environment: WorkerEnvironment): Commands {
  let session: Session | undefined;
  const held = new Map<string, Held>();
  let load:
    { stop: boolean; loops: Promise<void>[]; calls: CallRecord[]; inflight: Set<Promise<unknown>>; stalls: StallRecorder } | undefined;
  let writes: { stop: boolean; loops: Promise<void>[]; acked: number[]; failures: Record<Outcome, number> } | undefined;

  const current = (): Session => {
    if (session === undefined) throw new Error('worker: open() first');
    return session;
  };

  async function openStore(
    target: BackendTarget,
    settings: StoreSettings,
    recorder?: RecordingProxy,
  ): Promise<{ store: KeyValueStore; capabilities: BackendCapabilities }> {
    const backend = await environment.backend(target);
    const store = new KeyValueStore(`faults-${process.pid}-${++storeCounter}`);
    await store.configure(backend, {
      proxies: [...(recorder === undefined ? [] : [recorder]), ...environment.proxies()],
      lockTimeoutMs: settings.lockTimeoutMs,
      lockSafetyWindowMs: settings.lockSafetyWindowMs,
      lockWaitMs: settings.lockWaitMs,
      operationTimeoutMs: settings.operationTimeoutMs,
    });
    return { store, capabilities: backend.capabilities };
  }

  async function readOne(store: KeyValueStore, key: string): Promise<ReadResult> {
    try {
      return { key, outcome: 'ok', value: await store.get(key) };
    } catch (error) {
      return { key, outcome: outcomeOf(error) };
    }
  }

  async function settle(work: () => Promise<unknown>): Promise<Outcome> {
    try {
      await work();
      return 'ok';
    } catch (error) {
      return outcomeOf(error);
    }
  }

  return {
    async open({ target, store: settings }) {
      if (session !== undefined) throw new Error('worker: already open');
      const recorder = new RecordingProxy();
      const { store, capabilities } = await openStore(target, settings, recorder);
      session = { target, settings, store, recorder, capabilities };
      return { capabilities };
    },

    async increment({ key, perWorker, waitMs, retry }) {
      const { store } = current();
      const report: IncrementReport = { successes: 0, attempts: 0, failures: {}, releaseFailures: {}, acquireMs: [], writes: [] };
      const fail = (bucket: Record<Outcome, number>, error: unknown): void => {
        const outcome = outcomeOf(error);
        bucket[outcome] = (bucket[outcome] ?? 0) + 1;
      };
      const worker = async (quota: number): Promise<void> => {
        let remaining = quota;
        while (remaining > 0) {
          (report as { attempts: number }).attempts += 1;
          const lock = store.getLock(key);
          const started = performance.now();
          try {
            await lock.acquire({ waitMs });
          } catch (error) {
            fail(report.failures, error);
            if (!retry) remaining -= 1;
            continue;
          }
          report.acquireMs.push(performance.now() - started);
          try {
            const value = await store.get<number>(key).catch((error: unknown) => {
              if (error instanceof NotFoundError) return 0;
              throw error;
            });
            await store.set(key, value + 1, { lock });
            report.writes.push([String(lock.fencingToken), value + 1]);
            (report as { successes: number }).successes += 1;
            remaining -= 1;
          } catch (error) {
            fail(report.failures, error);
            if (!retry) remaining -= 1;
          } finally {
            await lock.release().catch((error: unknown) => fail(report.releaseFailures, error));
          }
        }
      };
      await Promise.all(perWorker.map((quota) => worker(quota)));
      return report;
    },

    async hold({ keys, value, waitMs, lockTimeoutMs, autoExtend }) {
      const { store, recorder } = current();
      const tokens: string[] = [];
      const acquiredAt: number[] = [];
      for (const key of keys) {
        const lock = store.getLock(key, {
          ...(lockTimeoutMs === undefined ? {} : { lockTimeoutMs }),
          ...(autoExtend === undefined ? {} : { autoExtend }),
        });
        await lock.acquire({ waitMs });
        acquiredAt.push(epochNow());
        const entry: Held = { lock, lease: recorder.lastLease };
        lock.signal.addEventListener('abort', () => (entry.abortedAt = epochNow()), { once: true });
        held.set(key, entry);
        await store.set(key, value, { lock });
        tokens.push(String(lock.fencingToken));
      }
      return { tokens, acquiredAt };
    },

    async release({ keys }) {
      const outcomes: Outcome[] = [];
      for (const key of keys) {
        const entry = held.get(key);
        held.delete(key);
        outcomes.push(entry === undefined ? 'NOT_HELD' : await settle(() => entry.lock.release()));
      }
      return { outcomes };
    },

    async stale({ keys, value }) {
      const { store, recorder } = current();
      const reports: StaleReport[] = [];
      for (const key of keys) {
        const entry = held.get(key);
        if (entry?.lease === undefined) throw new Error(`worker: no held lease for ${key}`);
        const lease = entry.lease;
        const storeSet = await settle(() => store.set(key, value, { lock: entry.lock }));
        const storeDelete = await settle(() => store.delete(key, { lock: entry.lock }));
        const bytes = recorder.lastSetValue(lease.key);
        if (bytes === undefined) throw new Error(`worker: no bytes recorded for ${key}`);
        let rawSet: Outcome;
        try {
          rawSet = await recorder.set(lease.key, bytes, { lease });
        } catch (error) {
          rawSet = outcomeOf(error);
        }
        let rawDelete: Outcome;
        try {
          rawDelete = await recorder.delete(lease.key, { lease });
        } catch (error) {
          rawDelete = outcomeOf(error);
        }
        reports.push({ key, storeSet, storeDelete, rawSet, rawDelete });
      }
      return reports;
    },

    async lockedWrite({ keys, value, retryForMs }) {
      const { store } = current();
      const outcomes: Outcome[] = [];
      for (const key of keys) {
        const entry = held.get(key);
        if (entry === undefined) throw new Error(`worker: ${key} is not held`);
        const until = performance.now() + retryForMs;
        let outcome: Outcome;
        for (;;) {
          outcome = await settle(() => store.set(key, value, { lock: entry.lock }));
          if (!outcome.startsWith('BACKEND_') || performance.now() > until) break;
          await sleep(50);
        }
        outcomes.push(outcome);
      }
      return outcomes;
    },

    async write({ entries }) {
      await current().store.setMany(entries);
    },

    async read({ keys }) {
      const { store } = current();
      const results: ReadResult[] = [];
      // Bounded concurrency: thousands of parallel reads would only measure queueing.
      for (let start = 0; start < keys.length; start += 50) {
        results.push(...(await Promise.all(keys.slice(start, start + 50).map((key) => readOne(store, key)))));
      }
      return results;
    },

    async signals({ keys }) {
      return keys.map((key): SignalState => {
        const entry = held.get(key);
        if (entry === undefined) return { key, aborted: false, reason: 'NOT_HELD' };
        const signal = entry.lock.signal;
        if (!signal.aborted) return { key, aborted: false };
        return {
          key,
          aborted: true,
          reason: outcomeOf(signal.reason),
          ...(entry.abortedAt === undefined ? {} : { abortedAt: entry.abortedAt }),
        };
      });
    },

    async probeFree({ keys }) {
      const { store } = current();
      const free: boolean[] = [];
      for (const key of keys) {
        const lock = store.getLock(key);
        const taken = await lock.tryAcquire();
        if (taken) await lock.release();
        free.push(taken);
      }
      return free;
    },

    async startLoad({ keys, concurrency, pauseMs }) {
      const { store } = current();
      if (load !== undefined) throw new Error('worker: a load is running');
      const state = {
        stop: false,
        loops: [] as Promise<void>[],
        calls: [] as CallRecord[],
        inflight: new Set<Promise<unknown>>(),
        stalls: new StallRecorder(),
      };
      load = state;
      state.stalls.start();
      const timed = async <T>(op: string, work: () => Promise<T>): Promise<T | undefined> => {
        const start = epochNow();
        const promise = work();
        state.inflight.add(promise);
        try {
          const value = await promise;
          state.calls.push([start, epochNow(), 'ok', op]);
          return value;
        } catch (error) {
          state.calls.push([start, epochNow(), outcomeOf(error), op]);
          return undefined;
        } finally {
          state.inflight.delete(promise);
        }
      };
      const pick = (): string => keys[Math.floor(Math.random() * keys.length)] as string;
      const loop = async (): Promise<void> => {
        while (!state.stop) {
          const key = pick();
          const roll = Math.random();
          if (roll < 0.4) {
            await timed('get', () =>
              store.get(key).catch((error: unknown) => {
                if (error instanceof NotFoundError) return undefined;
                throw error;
              }),
            );
          } else if (roll < 0.7) {
            await timed('set', () => store.set(key, Date.now()));
          } else {
            const lock = store.getLock(key);
            const taken = await timed('tryAcquire', () => lock.tryAcquire());
            if (taken === true) {
              await timed('lockedSet', () => store.set(key, Date.now(), { lock }));
              await timed('release', () => lock.release());
            }
          }
          await sleep(pauseMs);
        }
      };
      for (let i = 0; i < concurrency; i += 1) state.loops.push(loop());
    },

    async stopLoad({ settleMs }) {
      const state = load;
      if (state === undefined) throw new Error('worker: no load is running');
      state.stop = true;
      const done = Promise.all(state.loops).then(() => true);
      const finished = await Promise.race([done, sleep(settleMs).then(() => false)]);
      state.stalls.stop();
      load = undefined;
      return { calls: state.calls, pending: finished ? 0 : Math.max(1, state.inflight.size), stalls: state.stalls.stalls };
    },

    async startWrites({ prefix, concurrency }) {
      const { store } = current();
      if (writes !== undefined) throw new Error('worker: writes are running');
      const state = { stop: false, loops: [] as Promise<void>[], acked: [] as number[], failures: {} as Record<Outcome, number> };
      writes = state;
      let next = 0;
      const loop = async (): Promise<void> => {
        while (!state.stop) {
          next += 1;
          const i = next;
          try {
            await store.set(`${prefix}${i}`, i);
            state.acked.push(i);
          } catch (error) {
            const outcome = outcomeOf(error);
            state.failures[outcome] = (state.failures[outcome] ?? 0) + 1;
            await sleep(20);
          }
        }
      };
      for (let i = 0; i < concurrency; i += 1) state.loops.push(loop());
    },

    async stopWrites() {
      const state = writes;
      if (state === undefined) throw new Error('worker: no writes are running');
      state.stop = true;
      await Promise.all(state.loops);
      writes = undefined;
      return { acked: state.acked.sort((a, b) => a - b), failures: state.failures };
    },

    async aborts(args) {
      const { target, settings } = current();
      return runAbortTrials(args, () => openStore(target, { ...settings, lockTimeoutMs: args.lockTimeoutMs }));
    },

    async close() {
      held.clear();
      if (session !== undefined) await session.store.close();
      session = undefined;
      return {
        unhandledRejections: environment.unhandledRejections(),
        resources: process.getActiveResourcesInfo().filter((name) => name !== 'PipeWrap' && name !== 'TTYWrap'),
      };
    },
  };
}

/**
 * Aborted acquires: each trial starts an acquire on its own key, aborts it at a random moment,
 * and checks it settled promptly with the signal's reason (or had already won), that the key
 * is free again once everyone let go, and that no abort listener stayed on the signal. Every
 * other trial's key is held by a second client, so the acquire is waiting when the abort lands.
 */
async function runAbortTrials(args: AbortArgs, open: () => Promise<{ store: KeyValueStore }>): Promise<AbortReport> {
  // Only timers made on behalf of the trials count (their async context carries `trialScope`),
  // not the periodic timers of the worker's other clients.
  const trialScope = new AsyncLocalStorage<true>();
  const liveTimers = new Map<number, string>();
  const hook = createHook({
    init(id, type) {
      if (type === 'Timeout' && trialScope.getStore() === true) liveTimers.set(id, timerOrigin(new Error().stack ?? ''));
    },
    destroy(id) {
      liveTimers.delete(id);
    },
  });
  hook.enable();
  return trialScope.run(true, async () => {
    const { store } = await open();
    const { store: other } = await open();
    const report = {
      trials: 0,
      waiting: 0,
      wonBeforeAbort: 0,
      rejectedWithReason: 0,
      otherOutcomes: {} as Record<Outcome, number>,
      settleMs: [] as number[],
      settledInAbortTurn: 0,
      lateSettles: [] as number[],
      locksLeftBehind: 0,
      locksFreedLate: 0,
      listenersLeftBehind: 0,
      timersLeftBehind: 0,
      timerOrigins: [] as string[],
    };
    const trial = async (index: number): Promise<void> => {
      const key = `${args.prefix}${index}`;
      const waiting = index % 2 === 0;
      const blocker = other.getLock(key);
      if (waiting) await blocker.acquire({ waitMs: 5000 });
      const controller = new AbortController();
      const reason = new Error(`abort ${index}`);
      const lock = store.getLock(key);
      let abortedAt: number | undefined;
      let turnEnded = false;
      const abort = (): void => {
        abortedAt = performance.now();
        controller.abort(reason);
        setImmediate(() => (turnEnded = true));
      };
      // Free keys: abort before the call, right after it (same tick), or at a random moment.
      // Held keys: always at a random moment, while the acquire waits.
      const moment = waiting ? 'later' : (['before', 'same-tick', 'later'] as const)[index % 3];
      if (moment === 'before') abort();
      const timer = moment === 'later' ? setTimeout(abort, Math.random() * args.maxDelayMs) : undefined;
      let outcome: 'won' | 'reason' | Outcome;
      try {
        const acquiring = lock.acquire({ waitMs: 10_000, signal: controller.signal });
        if (moment === 'same-tick') abort();
        await acquiring;
        outcome = 'won';
      } catch (error) {
        outcome = error === reason ? 'reason' : outcomeOf(error);
      }
      const settledAt = performance.now();
      const inAbortTurn = abortedAt !== undefined && !turnEnded;
      clearTimeout(timer);
      if (outcome === 'won') {
        report.wonBeforeAbort += 1;
        await lock.release();
      } else if (outcome === 'reason') {
        report.rejectedWithReason += 1;
        const ms = settledAt - (abortedAt ?? settledAt);
        report.settleMs.push(ms);
        if (inAbortTurn) report.settledInAbortTurn += 1;
        else if (ms > ABORT_SETTLE_MS) report.lateSettles.push(ms);
      } else {
        report.otherOutcomes[outcome] = (report.otherOutcomes[outcome] ?? 0) + 1;
      }
      if (waiting) {
        report.waiting += 1;
        await blocker.release();
      }
      if (getEventListeners(controller.signal, 'abort').length > 0) report.listenersLeftBehind += 1;
      const probe = other.getLock(key);
      const graceUntil = performance.now() + LOCK_RELEASE_GRACE_MS;
      let free = await probe.tryAcquire();
      if (!free) {
        while (!free && performance.now() < graceUntil) {
          await sleep(25);
          free = await probe.tryAcquire();
        }
        if (free) report.locksFreedLate += 1;
      }
      if (free) await probe.release();
      else report.locksLeftBehind += 1;
      report.trials += 1;
    };
    let next = 0;
    const runner = async (): Promise<void> => {
      while (next < args.trials) {
        const index = next;
        next += 1;
        await trial(index);
      }
    };
    try {
      await Promise.all(Array.from({ length: args.concurrency }, () => runner()));
    } finally {
      await store.close();
      await other.close();
      // Timer destruction is reported asynchronously: let it arrive before counting.
      await sleep(20);
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      hook.disable();
    }
    report.timersLeftBehind = liveTimers.size;
    report.timerOrigins.push(...new Set(liveTimers.values()));
    return report;
  });
}

/** The first frames of a stack outside node internals and this file: where a timer was made. */
function timerOrigin(stack: string): string {
  return stack
    .split('\n')
    .slice(1)
    .map((line) => line.trim())
    .filter((line) => !line.includes('node:') && !line.includes('/faults/worker/commands.ts'))
    .slice(0, 3)
    .join(' < ');
}
