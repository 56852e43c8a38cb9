import type { Lease } from './backend.js';
import {
  BackendClosedError,
  BackendError,
  LatchkeyError,
  LockAcquireTimeoutError,
  LockKeyMismatchError,
  LockNotActiveError,
  LockTimeoutError,
  ValidationError,
} from './errors.js';
import { leaseLengthMs, trustedForMs, type LockHost, type ResolvedConfig } from './internal/config.js';
import { withDeadline } from './backend-kit/call-runner.js';
import { reportGiveBackFailure } from './backend-kit/warnings.js';
import { timerDelay } from './internal/timers.js';
import { traceCall, type Writable } from './internal/trace.js';
import { optionalDuration, optionalObject, optionalSignal } from './internal/validate.js';
import {
  lockAcquireTracing,
  lockReleaseTracing,
  type LockAcquireMessage,
  type LockAcquireOperation,
  type LockReleaseMessage,
} from './tracing.js';

/** Options of {@link KeyValueStore.getLock}. */
export interface LockOptions {
  /** Lease length for this lock; `0` means it never expires. @default the store's `lockTimeoutMs` */
  readonly lockTimeoutMs?: number;
  /**
   * Keep the lease alive while the holder runs, renewing it every third of the time the lock
   * is trusted (`lockTimeoutMs` minus the store's safety window). If a renewal fails,
   * {@link KeyValueStoreLock.signal} aborts.
   * @default false
   */
  readonly autoExtend?: boolean;
}

/** Options of {@link KeyValueStoreLock.acquire}. */
export interface AcquireOptions {
  /** How long to wait for another holder. @default the store's `lockWaitMs` (10 000 ms) */
  readonly waitMs?: number;
  /** Aborts the wait: `acquire` rejects with `signal.reason` and leaves no lock behind. */
  readonly signal?: AbortSignal;
}

/** Passed by {@link createLock} so the constructor can tell the store's calls from anyone else's. */
const CONSTRUCT: unique symbol = Symbol('KeyValueStoreLock');

// Set by the class's static block: the only code allowed to call the private constructor.
let construct!: (host: LockHost, key: string, options: LockOptions | undefined) => KeyValueStoreLock;

/**
 * A per-key write lock (Keystone's `KeyValueStoreLock`). Locks are advisory and write-only:
 * reads never wait, and writes without a lock always proceed; a write or delete **with** the
 * lock succeeds only while this lock still holds the key, which the backend checks together
 * with the write.
 *
 * Get one from {@link KeyValueStore.getLock} (the constructor is private: a lock belongs to
 * the store that made it); the idiomatic form is
 * `await using lock = await store.getLock(key).acquire()`.
 *
 * Expiry: `expired` turns true once the time since the acquire (or the last successful
 * `extend`) was started, on a monotonic clock, plus the store's safety window exceeds
 * `lockTimeoutMs`. The backend's lease lasts at least `lockTimeoutMs` from a moment after that
 * start, so a lock the client still considers live is always live on the server too.
 */
export class KeyValueStoreLock implements AsyncDisposable {
  /** The user key this lock is for. */
  readonly key: string;
  /** False when the store was configured with `locking: false`: the lock never touches the backend. */
  readonly enabled: boolean;

  readonly #host: LockHost;
  // The store's configuration is immutable; keeping it lets release, extend and expiry work
  // even after the store was closed (acquire still checks that the store is open).
  readonly #config: ResolvedConfig;
  readonly #storedKey: string;
  readonly #autoExtend: boolean;
  #lockTimeoutMs: number;
  #lease: Lease | undefined;
  #active = false;
  #acquiring = false;
  #startedAt: number | undefined;
  /** When the lock was last won (monotonic clock), for the release message's `heldMs`. */
  #wonAt = 0;
  /** Made when {@link signal} is first read: most locks' signals are never looked at. */
  #controller: AbortController | undefined;
  /** Why the lock let go while nobody had read {@link signal}: the error is made once it is read. */
  #abortedBy: (() => LatchkeyError) | undefined;
  #expiryTimer: ReturnType<typeof setTimeout> | undefined;
  #extendTimer: ReturnType<typeof setTimeout> | undefined;

  static {
    construct = (host, key, options) => new KeyValueStoreLock(CONSTRUCT, host, key, options);
  }

  /**
   * Locks come from {@link KeyValueStore.getLock}, which ties them to their store.
   * @throws {ValidationError} when called any other way.
   */
  private constructor(token: typeof CONSTRUCT, host: LockHost, key: string, options: LockOptions = {}) {
    if (token !== CONSTRUCT) {
      throw new ValidationError('A KeyValueStoreLock cannot be constructed directly; get one from store.getLock(key).');
    }
    const config = host.resolved();
    this.#host = host;
    this.#config = config;
    this.#storedKey = host.storedKey(key);
    optionalObject('getLock options', options);
    this.key = key;
    this.enabled = config.locking;
    this.#lockTimeoutMs = leaseLengthMs(options.lockTimeoutMs, config.lockTimeoutMs, config.lockSafetyWindowMs);
    if (options.autoExtend !== undefined && typeof options.autoExtend !== 'boolean') {
      throw new ValidationError('autoExtend must be a boolean.');
    }
    this.#autoExtend = options.autoExtend ?? false;
  }

  /** The lease length in ms; `0` means the lock never expires. */
  get lockTimeoutMs(): number {
    return this.#lockTimeoutMs;
  }

  /** True from a successful acquire until release. */
  get active(): boolean {
    return this.#active;
  }

  /** True once the lock can no longer be trusted to hold the key (see the class notes). */
  get expired(): boolean {
    if (this.#startedAt === undefined) return false;
    return performance.now() - this.#startedAt > trustedForMs(this.#lockTimeoutMs, this.#config.lockSafetyWindowMs);
  }

  /**
   * Strictly greater than every earlier holder's token for this key; pass it to downstream
   * systems so they can refuse writes from a holder that lost the lock. `undefined` before
   * acquire and for disabled locks.
   */
  get fencingToken(): bigint | undefined {
    return this.#lease?.fencingToken;
  }

  /** Aborts when the lock is released, expires, or is found lost; the reason says which. */
  get signal(): AbortSignal {
    let controller = this.#controller;
    if (controller === undefined) {
      controller = new AbortController();
      this.#controller = controller;
      const reason = this.#abortedBy;
      this.#abortedBy = undefined;
      if (reason !== undefined) controller.abort(reason());
    }
    return controller.signal;
  }

  /**
   * Takes the lock, waiting up to `waitMs` for another holder to let go.
   *
   * @throws {LockAcquireTimeoutError} when the wait runs out.
   * @throws `signal.reason` when `signal` aborts (promptly; no lock is left behind).
   * @throws {ValidationError} when the lock is already active or being acquired.
   * @throws {BackendUnavailableError | BackendTimeoutError} when the backend cannot be reached.
   */
  async acquire(options: AcquireOptions = {}): Promise<this> {
    const config = this.#host.resolved();
    optionalObject('acquire options', options);
    const waitMs = optionalDuration('waitMs', options.waitMs) ?? config.lockWaitMs;
    const signal = optionalSignal('signal', options.signal);
    const won = await this.#take('acquire', waitMs, signal);
    if (!won) throw new LockAcquireTimeoutError(this.key, waitMs);
    return this;
  }

  /**
   * Tries once to take the lock without waiting. Resolves `true` when taken.
   * @throws {ValidationError} when the lock is already active or being acquired.
   */
  async tryAcquire(): Promise<boolean> {
    return this.#take('tryAcquire', 0, undefined);
  }

  /**
   * Renews the lease for `lockTimeoutMs` (default: this lock's current one) from now.
   * @throws {LockTimeoutError} when the lock is no longer held (released, lapsed or taken over).
   */
  async extend(lockTimeoutMs?: number): Promise<void> {
    const config = this.#config;
    const next = leaseLengthMs(lockTimeoutMs, this.#lockTimeoutMs, config.lockSafetyWindowMs);
    if (!this.#active) throw new LockTimeoutError(this.key);
    const startedAt = performance.now();
    if (this.enabled) {
      const lease = this.#lease;
      const chain = config.chain;
      if (lease === undefined || chain.extendLock === undefined) throw new LockTimeoutError(this.key);
      const extendLock = chain.extendLock.bind(chain);
      const renewed = await config.calls.run(`extendLock(${this.key})`, () => extendLock(lease, next));
      if (!renewed) {
        this.#lost(new LockTimeoutError(this.key));
        throw new LockTimeoutError(this.key);
      }
      if (!this.#active || this.#lease !== lease) return;
    }
    this.#startedAt = startedAt;
    this.#lockTimeoutMs = next;
    this.#armTimers();
  }

  /**
   * Lets go of the lock: `active` turns false and `signal` aborts. Never removes a lock that
   * another holder now owns. Idempotent; after the store was closed it only updates the lock.
   *
   * @throws {BackendUnavailableError | BackendTimeoutError} when the backend cannot be reached
   * (the lock is inactive anyway and its lease lapses on its own).
   */
  release(): Promise<void> {
    if (!this.#active || !lockReleaseTracing.hasSubscribers) return this.#letGo(false);
    return this.#tracedRelease('release', () => this.#letGo(false));
  }

  /**
   * Called by the store's `close()` while the chain is still open: lets go of the lock like
   * {@link release}, reporting (not throwing) a failed give-back.
   * @internal
   */
  giveBackAtClose(): Promise<void> {
    if (!this.#active) return Promise.resolve();
    const lease = this.#lease;
    const letGo = lockReleaseTracing.hasSubscribers ? this.#tracedRelease('close', () => this.#letGo(true)) : this.#letGo(true);
    return letGo.catch((error: unknown) => {
      // A backend closed already (shared with another store) has let go of its leases itself.
      if (!(error instanceof BackendClosedError)) reportGiveBackFailure(this.#host.name, lease ?? { key: this.key }, error);
    });
  }

  /** Deactivates the lock and gives its lease back; `atClose`: the store is closing, its chain still open. */
  async #letGo(atClose: boolean): Promise<void> {
    if (!this.#active) return;
    const lease = this.#lease;
    this.#deactivate(() => new LockNotActiveError(this.key));
    if (lease === undefined || (!atClose && this.#host.isClosed())) return;
    const config = this.#config;
    const chain = config.chain;
    if (chain.releaseLock !== undefined) {
      const releaseLock = chain.releaseLock.bind(chain);
      await config.calls.run(`releaseLock(${this.key})`, () => releaseLock(lease));
    }
  }

  /** Runs a release of this (active) lock under the release tracing channel. */
  #tracedRelease(operation: LockReleaseMessage['operation'], letGo: () => Promise<void>): Promise<void> {
    const message: Writable<LockReleaseMessage> = {
      store: this.#host.name,
      operation,
      backend: this.#config.backendName,
      key: this.#config.traceKeys ? this.key : undefined,
      heldMs: performance.now() - this.#wonAt,
      outcome: undefined,
      durationMs: undefined,
    };
    return traceCall(lockReleaseTracing, message, async () => {
      await letGo();
      message.outcome = 'released';
    });
  }

  /** Same as {@link release}; lets `await using` release the lock. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }

  /**
   * The lease to write under, after the checks of the store's locked writes (in order):
   * key, active, expired. `undefined` for disabled locks (the write is unconditional).
   * @internal
   */
  leaseForWrite(host: LockHost, key: string): Lease | undefined {
    if (host !== this.#host) throw new ValidationError(`The lock for "${this.key}" belongs to another KeyValueStore.`);
    if (this.key !== key) throw new LockKeyMismatchError(key, this.key);
    if (!this.#active) throw new LockNotActiveError(this.key);
    if (this.expired) throw new LockTimeoutError(this.key);
    return this.enabled ? this.#lease : undefined;
  }

  /**
   * Called by the store when the backend refused a write under this lock.
   * @internal
   */
  markLost(): void {
    this.#lost(new LockTimeoutError(this.key));
  }

  #take(operation: LockAcquireOperation, waitMs: number, signal: AbortSignal | undefined): Promise<boolean> {
    if (!lockAcquireTracing.hasSubscribers) return this.#takeLock(waitMs, signal);
    const message: Writable<LockAcquireMessage> = {
      store: this.#host.name,
      operation,
      backend: this.#config.backendName,
      key: this.#config.traceKeys ? this.key : undefined,
      waitMs,
      enabled: this.enabled,
      outcome: undefined,
      durationMs: undefined,
    };
    return traceCall(lockAcquireTracing, message, async () => {
      try {
        const won = await this.#takeLock(waitMs, signal);
        message.outcome = won ? 'acquired' : 'timeout';
        return won;
      } catch (error) {
        if (signal?.aborted === true && error === signal.reason) message.outcome = 'aborted';
        throw error;
      }
    });
  }

  async #takeLock(waitMs: number, signal: AbortSignal | undefined): Promise<boolean> {
    if (this.#active || this.#acquiring) {
      throw new ValidationError(`The lock for "${this.key}" is already ${this.#active ? 'active' : 'being acquired'}.`);
    }
    signal?.throwIfAborted();
    const config = this.#config;
    const startedAt = performance.now();
    if (!this.enabled) {
      this.#activate(undefined, startedAt);
      return true;
    }
    const chain = config.chain;
    if (chain.acquireLock === undefined) throw new BackendError('The backend chain has no acquireLock.');
    this.#acquiring = true;
    try {
      const acquireLock = chain.acquireLock.bind(chain);
      const request = { leaseMs: this.#lockTimeoutMs, waitMs, ...(signal === undefined ? {} : { signal }) };
      // The backend's wait plus one call's deadline. If we give up first (deadline or abort)
      // and the backend grants the lease later, it is given back; a failure is reported.
      const lease = await withDeadline(
        `acquireLock(${this.key})`,
        waitMs + config.operationTimeoutMs,
        () => acquireLock(this.#storedKey, request),
        {
          name: this.#host.name,
          signal,
          onLate: (late) => {
            if (late !== undefined) void this.#giveBack(late);
          },
        },
      );
      if (lease === undefined) return false;
      if (this.#host.isClosed()) {
        // Won while the store was closing (perhaps from a lock close just gave back): not ours to keep.
        await this.#giveBack(lease);
        throw new BackendClosedError(`KeyValueStore "${this.#host.name}" was closed while the lock for "${this.key}" was being acquired.`);
      }
      if (signal?.aborted) {
        await this.#giveBack(lease);
        throw signal.reason;
      }
      this.#activate(lease, lease.acquiredAt ?? startedAt);
      return true;
    } finally {
      this.#acquiring = false;
    }
  }

  /** Lets go of a lease this lock will not use; a failure is reported, never thrown. */
  async #giveBack(lease: Lease): Promise<void> {
    const chain = this.#config.chain;
    if (chain.releaseLock === undefined) return;
    const releaseLock = chain.releaseLock.bind(chain);
    await this.#config.calls
      .run(`releaseLock(${this.key})`, () => releaseLock(lease), { evenIfClosed: true })
      .catch((error: unknown) => {
        // A closed backend has let go of what it held itself (the kit gives leases back at
        // close; an in-process table drops them): nothing is left to report.
        if (!(error instanceof BackendClosedError)) reportGiveBackFailure(this.#host.name, lease, error);
      });
  }

  #activate(lease: Lease | undefined, startedAt: number): void {
    this.#host.track(this, true);
    this.#lease = lease;
    this.#startedAt = startedAt;
    this.#wonAt = performance.now();
    this.#active = true;
    // A signal that aborted belongs to the last holding; this one gets a new one when it is read.
    if (this.#controller?.signal.aborted === true) this.#controller = undefined;
    this.#abortedBy = undefined;
    this.#armTimers();
  }

  #deactivate(reason: () => LatchkeyError): void {
    this.#host.track(this, false);
    this.#active = false;
    this.#clearTimers();
    this.#abort(reason);
  }

  /** The lease is gone but the holder has not released yet: abort the signal, stay active. */
  #lost(reason: LatchkeyError): void {
    this.#clearTimers();
    this.#abort(() => reason);
  }

  /**
   * Aborts the signal with `reason` unless it aborted already (the first reason stands). An
   * unread signal only notes it: an error's stack and an abort event cost more than the rest
   * of a release.
   */
  #abort(reason: () => LatchkeyError): void {
    const controller = this.#controller;
    if (controller === undefined) this.#abortedBy ??= reason;
    else if (!controller.signal.aborted) controller.abort(reason());
  }

  #armTimers(): void {
    this.#clearTimers();
    const trustedFor = trustedForMs(this.#lockTimeoutMs, this.#config.lockSafetyWindowMs);
    if (!this.#active || trustedFor === Infinity || this.#startedAt === undefined) return;
    const expiresIn = this.#startedAt + trustedFor - performance.now();
    // A lease longer than the longest timer re-arms instead of firing early.
    this.#expiryTimer = setTimeout(
      () => (this.expired ? this.#lost(new LockTimeoutError(this.key)) : this.#armTimers()),
      timerDelay(expiresIn + 1),
    );
    this.#expiryTimer.unref();
    if (this.#autoExtend) {
      this.#extendTimer = setTimeout(
        () => {
          this.extend().catch((error: unknown) => {
            this.#lost(error instanceof LatchkeyError ? error : new LockTimeoutError(this.key, { cause: error }));
          });
        },
        timerDelay(Math.floor(trustedFor / 3)),
      );
      this.#extendTimer.unref();
    }
  }

  #clearTimers(): void {
    if (this.#expiryTimer !== undefined) clearTimeout(this.#expiryTimer);
    if (this.#extendTimer !== undefined) clearTimeout(this.#extendTimer);
    this.#expiryTimer = undefined;
    this.#extendTimer = undefined;
  }
}

/**
 * A new lock of `host`'s store: what {@link KeyValueStore.getLock} returns.
 * @internal
 */
export function createLock(host: LockHost, key: string, options: LockOptions | undefined): KeyValueStoreLock {
  return construct(host, key, options);
}
