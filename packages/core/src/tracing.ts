// What latchkey publishes on node:diagnostics_channel: the channel names, the messages'
// shapes, the channels themselves, and typed views of them for subscribers.
import { tracingChannel, type Channel, type TracingChannel, type TracingChannelSubscribers } from 'node:diagnostics_channel';

/**
 * The tracing channel of a store's data calls (`get`, `find`, `getMany`, `set`, `setMany`,
 * `delete`, `deleteMany`, `has`, `ttl`, `touch`, `clear`, `keys`, `getOrCreate`). Its events are `tracing:latchkey:store:operation:start`,
 * `…:end`, `…:asyncStart`, `…:asyncEnd` and `…:error`; each carries a {@link StoreOperationMessage}.
 */
export const STORE_OPERATION_CHANNEL = 'latchkey:store:operation';

/**
 * The tracing channel of lock acquisition (`acquire`, `tryAcquire`, and the waits of
 * `withLock` and `getOrCreate`), from the start of the wait until it is won or given up;
 * each event carries a {@link LockAcquireMessage}.
 */
export const LOCK_ACQUIRE_CHANNEL = 'latchkey:lock:acquire';

/**
 * The tracing channel of letting go of an active lock (`release`, `await using`, the end of
 * `withLock`, and the give-back of held locks by the store's `close`); each event carries a
 * {@link LockReleaseMessage}.
 */
export const LOCK_RELEASE_CHANNEL = 'latchkey:lock:release';

/** The store calls published on {@link STORE_OPERATION_CHANNEL}. */
export type StoreOperation =
  'get' | 'find' | 'getMany' | 'set' | 'setMany' | 'delete' | 'deleteMany' | 'has' | 'ttl' | 'touch' | 'clear' | 'keys' | 'getOrCreate';

/**
 * How a store call ended, when it ended the way its contract describes:
 * - `hit` / `miss`: `get`, `find`, `has` and `ttl` found the key or not; `getMany` found every
 *   key or missed at least one; `delete` and `touch` give `miss` for a missing key. A miss
 *   rejects with `NotFoundError`, except from `find`, `has` and `getMany` with `allowMissing`,
 *   which resolve.
 * - `written`: `set`, `setMany`, `touch`. `deleted`: `delete`, `deleteMany`, `clear`.
 * - `listed`: a `keys()` iteration ended (ran to its end, or the caller stopped it); its
 *   `keyCount` is then the number of keys yielded, and its `durationMs` spans the whole
 *   iteration, the caller's time between steps included. A failed listing (`NotSupportedError`
 *   included) has `error` instead. An iteration the caller abandons without ending it (no
 *   `break`, `return()` or last step) never publishes its end.
 * - `lease-lost`: a locked `set` or `delete` was refused because the lock no longer holds the
 *   key (the call rejects with `LockTimeoutError`, nothing written).
 * - `getOrCreate`: `hit` (the value was there), `waited` (another caller created it while this
 *   one waited for the lock), `created` (this caller ran the creator and stored its value).
 */
export type StoreOperationOutcome = 'hit' | 'miss' | 'written' | 'deleted' | 'listed' | 'lease-lost' | 'waited' | 'created';

/**
 * The message of every event on {@link STORE_OPERATION_CHANNEL}: the same object from `start`
 * to `asyncEnd`, so a subscriber can keep per-call state in a `WeakMap` keyed by it.
 *
 * When `asyncEnd` fires exactly one of `outcome` and `error` is set. Values never appear in
 * messages (the channel's `result` field is always `undefined`), and keys only with
 * `traceKeys: true`.
 */
export interface StoreOperationMessage {
  /** The store's name. */
  readonly store: string;
  readonly operation: StoreOperation;
  /**
   * The constructor name of the backend beneath the proxies (`'MemoryBackend'`);
   * `undefined` when the store is not configured (the call rejects with `NotConfiguredError`).
   */
  readonly backend: string | undefined;
  /**
   * The user key of a single-key call, only when the store was configured with
   * `traceKeys: true` (keys often hold user ids, e-mail addresses or tokens). Batches never
   * carry their keys.
   */
  readonly key: string | undefined;
  /**
   * How many keys the call names: 1 for single-key calls, the number of keys or entries for
   * batches (duplicates counted), 0 for `clear`. For `setMany` with entries that are not an
   * array it is counted when the entries are read, before `end`; for `keys` it is 0 until the
   * listing ends and then the number of keys yielded.
   */
  readonly keyCount: number;
  /** Set before `asyncStart` when the call ended as its contract describes (see {@link StoreOperationOutcome}). */
  readonly outcome: StoreOperationOutcome | undefined;
  /**
   * `get`, `find` and `getMany`: how many of the keys were missing (duplicates counted), so
   * `keyCount - missCount` were hits; `undefined` for the other calls.
   */
  readonly missCount: number | undefined;
  /** Milliseconds the call took (monotonic clock), set before `error` and `asyncStart`. */
  readonly durationMs: number | undefined;
  /**
   * Set by the channel when the call failed in a way without an outcome (bad input, backend
   * unreachable, timeouts, a throwing creator): the error the call rejects with, unchanged.
   * Its message or `target` may name the key; export `error.code` where keys are sensitive.
   */
  readonly error?: unknown;
}

/** The lock calls published on {@link LOCK_ACQUIRE_CHANNEL}. */
export type LockAcquireOperation = 'acquire' | 'tryAcquire';

/**
 * How an acquisition ended: `acquired`; `timeout` when `waitMs` ran out (`acquire` then
 * rejects with `LockAcquireTimeoutError`; a `tryAcquire` that found the lock held resolves
 * `false`); `aborted` when the caller's `signal` aborted (the call rejects with `signal.reason`).
 */
export type LockAcquireOutcome = 'acquired' | 'timeout' | 'aborted';

/**
 * The message of every event on {@link LOCK_ACQUIRE_CHANNEL}. `durationMs` is the time spent
 * waiting for the lock. When `asyncEnd` fires exactly one of `outcome` and `error` is set.
 */
export interface LockAcquireMessage {
  readonly store: string;
  readonly operation: LockAcquireOperation;
  /** The constructor name of the backend beneath the proxies. */
  readonly backend: string;
  /** The lock's user key, only with `traceKeys: true` (see {@link StoreOperationMessage.key}). */
  readonly key: string | undefined;
  /** The longest wait allowed (`acquire`'s `waitMs`; 0 for `tryAcquire`). */
  readonly waitMs: number;
  /** False for a store configured with `locking: false` (the lock never reaches the backend). */
  readonly enabled: boolean;
  readonly outcome: LockAcquireOutcome | undefined;
  /** Milliseconds from the start of the wait until it was won or given up (monotonic clock). */
  readonly durationMs: number | undefined;
  /** Set by the channel when the acquisition failed without an outcome (backend unreachable, store closed). */
  readonly error?: unknown;
}

/**
 * The message of every event on {@link LOCK_RELEASE_CHANNEL}, published only for a lock that
 * was active. `outcome` is `released` on success; `error` is set when the backend could not
 * be told (the lock is inactive anyway and its lease lapses on its own).
 */
export interface LockReleaseMessage {
  readonly store: string;
  /** `release` for the holder's own release; `close` for a lock given back by the store's `close()`. */
  readonly operation: 'release' | 'close';
  readonly backend: string;
  readonly key: string | undefined;
  /** Milliseconds the lock was held: from the moment it was won until the release started. */
  readonly heldMs: number;
  readonly outcome: 'released' | undefined;
  /** Milliseconds the release call took. */
  readonly durationMs: number | undefined;
  readonly error?: unknown;
}

/**
 * The handlers of a {@link LatchkeyTracingChannel} subscription: any of the five events.
 * Each receives the call's message; from `end` on it may carry the channel's `error` and
 * (always `undefined`) `result`.
 */
export type LatchkeyTraceSubscribers<M extends object> = Partial<TracingChannelSubscribers<M>>;

/**
 * A latchkey tracing channel as a subscriber sees it: a Node `TracingChannel` over the five
 * named channels `tracing:<name>:start` … `tracing:<name>:error` (the ones
 * `diagnostics_channel.tracingChannel(name)` gives too), typed for its message and accepting any
 * subset of the five handlers, as Node does.
 */
export interface LatchkeyTracingChannel<M extends object> {
  /** True while any of the five events has a subscriber. */
  readonly hasSubscribers: boolean;
  /** Subscribes each given handler to its event. */
  subscribe(subscribers: LatchkeyTraceSubscribers<M>): void;
  /** Unsubscribes handlers given to {@link subscribe}; `true` when every one was subscribed. */
  unsubscribe(subscribers: LatchkeyTraceSubscribers<M>): boolean;
  /** The five channels, e.g. `start.bindStore(asyncLocalStorage, …)` to carry a span through the call. */
  readonly start: Channel<unknown, M>;
  readonly end: Channel<unknown, M>;
  readonly asyncStart: Channel<unknown, M>;
  readonly asyncEnd: Channel<unknown, M>;
  readonly error: Channel<unknown, M>;
}

// The channels the store and its locks publish through (with tracePromise); what subscribers get
// are the typed views below, the same objects.

/** The store's data calls publish through this ({@link storeOperationChannel} is its public view). @internal */
export const storeOperationTracing: TracingChannel<unknown, StoreOperationMessage> = tracingChannel(STORE_OPERATION_CHANNEL);
/** Lock waits publish through this ({@link lockAcquireChannel} is its public view). @internal */
export const lockAcquireTracing: TracingChannel<unknown, LockAcquireMessage> = tracingChannel(LOCK_ACQUIRE_CHANNEL);
/** Lock releases publish through this ({@link lockReleaseChannel} is its public view). @internal */
export const lockReleaseTracing: TracingChannel<unknown, LockReleaseMessage> = tracingChannel(LOCK_RELEASE_CHANNEL);

// @types/node 20 types TracingChannel's subscribe as needing all five handlers and its
// unsubscribe as returning void; Node 20 takes any subset and returns a boolean.
const view = <M extends object>(channel: unknown) => channel as LatchkeyTracingChannel<M>;

/**
 * The tracing channel of {@link STORE_OPERATION_CHANNEL}, typed. Subscribing through it is the
 * same as through `diagnostics_channel.tracingChannel('latchkey:store:operation')`: channels
 * are process-wide by name, so every copy of `@latchkey/core` in the process publishes here.
 *
 * @example
 * storeOperationChannel.subscribe({
 *   asyncEnd: (message) => console.log(message.operation, message.outcome ?? message.error, message.durationMs),
 * })
 */
export const storeOperationChannel: LatchkeyTracingChannel<StoreOperationMessage> = view(storeOperationTracing);

/** The tracing channel of {@link LOCK_ACQUIRE_CHANNEL}, typed (see {@link storeOperationChannel}). */
export const lockAcquireChannel: LatchkeyTracingChannel<LockAcquireMessage> = view(lockAcquireTracing);

/** The tracing channel of {@link LOCK_RELEASE_CHANNEL}, typed (see {@link storeOperationChannel}). */
export const lockReleaseChannel: LatchkeyTracingChannel<LockReleaseMessage> = view(lockReleaseTracing);
