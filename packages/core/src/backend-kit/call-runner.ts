/**
 * Runs backend calls under a deadline so that every call settles, whatever the driver does.
 */

import { BackendClosedError, BackendError, BackendTimeoutError, BackendUnavailableError, LatchkeyError } from '../errors.js';
import { timerDelay } from '../internal/timers.js';

/** What the runner knows about a call when it maps a driver error. */
export interface CallInfo {
  /** The backend's name, as given to the runner (`'RedisBackend'`). */
  readonly backend: string;
  /** What the call was doing (`'get'`, `'acquireLock'`). */
  readonly what: string;
  /** Whether the request may have reached the server (it was handed to the driver). */
  readonly sent: boolean;
  /** The deadline of the call, in ms. */
  readonly timeoutMs: number;
}

/**
 * Turns a driver failure into a latchkey error, keeping the driver's error as `cause`. Called
 * only for errors that are not latchkey errors already (those pass unchanged).
 */
export type ErrorMapper = (error: unknown, call: CallInfo) => LatchkeyError;

/**
 * The connection state a runner can wait for. A call made while not `ready` waits (inside its
 * deadline) and counts as never sent until then, so its timeout is
 * {@link BackendUnavailableError}, not {@link BackendTimeoutError}.
 */
export interface ConnectionState {
  readonly ready: boolean;
  /** Resolves when ready; may stay pending (the call's deadline still fires). */
  whenReady(): Promise<void>;
  /** The last connection error, given as `cause` of a "never sent" timeout. */
  readonly lastError?: unknown;
}

/** Options of {@link CallRunner}. */
export interface CallRunnerOptions {
  /** Names the backend in error messages. */
  readonly name: string;
  /** The deadline of every call, in ms (`Infinity`: none). */
  readonly timeoutMs: number;
  /** Maps driver errors; default: {@link BackendError} with the driver error as `cause`. */
  readonly mapError?: ErrorMapper;
  /** Connection readiness; absent: every call is sent at once. */
  readonly connection?: ConnectionState;
}

/** Options of one {@link CallRunner.run}. */
export interface RunOptions<T> {
  /**
   * Aborts the call: it rejects at once with `signal.reason` (unwrapped) and the call's own
   * {@link Call.signal} aborts too. Whatever the work still produces goes to `onLate`.
   */
  readonly signal?: AbortSignal | undefined;
  /**
   * Receives a result the work produced after the call had settled (timed out, aborted or
   * closed), so it can be undone — a lease won too late is given back.
   */
  readonly onLate?: ((value: T) => void) | undefined;
  /** Runs even after {@link CallRunner.close} (for the give-backs `close` itself sends). */
  readonly evenIfClosed?: boolean;
}

/** What a running call's work can ask of its runner. */
export interface Call {
  /** Aborts when the call settles early (deadline, abort, close); the driver may honour it. */
  readonly signal: AbortSignal;
  /** True once the caller has been answered; multi-step work should stop sending then. */
  readonly settled: boolean;
  /** Throws the error that settled the call, if it has: call between steps of multi-step work. */
  check(): void;
}

/**
 * One call in flight, linked into the runner's list. Every call of a runner has the same
 * timeout, so the list is ordered by deadline and one timer, armed for the head, serves all.
 */
class PendingCall<T> implements Call {
  prev: PendingCall<unknown> | undefined;
  next: PendingCall<unknown> | undefined;
  settled = false;
  sent = false;
  /** What settled the call early (its timeout, the caller's abort reason, close), given to {@link check}. */
  error: unknown;
  /** The caller's promise's resolvers: set once the call waits on a promise (none for a result returned at once). */
  resolve: (value: T) => void = noop;
  reject: (error: unknown) => void = noop;
  #controller: AbortController | undefined;

  constructor(
    readonly what: string,
    readonly deadline: number,
    readonly onLate: ((value: T) => void) | undefined,
  ) {}

  get signal(): AbortSignal {
    // Made on first use: most calls never need one.
    this.#controller ??= new AbortController();
    if (this.settled && !this.#controller.signal.aborted) this.#controller.abort(this.error);
    return this.#controller.signal;
  }

  check(): void {
    if (this.settled) throw this.error ?? new BackendTimeoutError(`${this.what} already settled.`, 0);
  }

  abort(reason: unknown): void {
    this.#controller?.abort(reason);
  }
}

function noop(): void {}

/**
 * Whether the next {@link CallRunner.run} (of any runner in this process) should note the
 * promise it returns, and that promise with the timeout of its runner: it settles at the latest
 * `timeoutMs` after it was made. Set by {@link noteNextRun} and read by {@link settlesWithin}
 * in the same synchronous step, so that a caller bounding calls of its own (the store) can tell
 * that the promise a backend handed back is already bounded. Only on request: keeping a fresh
 * promise in module state costs every call a write barrier.
 */
let noting = false;
let notedPromise: Promise<unknown> | undefined;
let notedTimeoutMs = Infinity;

function note<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  if (noting) {
    noting = false;
    notedPromise = promise;
    notedTimeoutMs = timeoutMs;
  }
  return promise;
}

/**
 * Asks the next {@link CallRunner.run} in this process to note the promise it returns, for
 * {@link settlesWithin}. Call right before the backend call whose promise you will check.
 *
 * @internal
 */
export function noteNextRun(): void {
  noting = true;
}

/**
 * True when `promise` is the one the run asked for by {@link noteNextRun} returned, from a
 * runner whose deadline is at most `timeoutMs`: it then settles within `timeoutMs` of now by
 * that runner's deadline (which started earlier in the same synchronous step), so a deadline of
 * one's own around it would never fire first. Forgets the promise either way, so that its
 * result is not kept alive.
 *
 * @internal
 */
export function settlesWithin(promise: unknown, timeoutMs: number): boolean {
  const bounded = promise === notedPromise && notedTimeoutMs <= timeoutMs;
  noting = false;
  notedPromise = undefined;
  return bounded;
}

/**
 * Runs each backend call under one deadline so that every call settles: with its result,
 * with {@link BackendUnavailableError} when the connection was not ready before the deadline
 * (nothing was sent), with {@link BackendTimeoutError} when a sent request got no answer in
 * time (it may or may not have run), with the mapped driver error, or with
 * {@link BackendClosedError} after {@link close}.
 *
 * One timer serves every call in flight (armed for the earliest deadline): no timer per
 * call on the hot path. The timer never keeps the process alive once no call is pending.
 *
 * @example
 * const calls = new CallRunner({ name: 'MyBackend', timeoutMs: 2000, mapError: toLatchkeyError })
 * get(key) { return calls.run('get', (call) => driver.get(key, { signal: call.signal })) }
 */
export class CallRunner {
  readonly #name: string;
  readonly #timeoutMs: number;
  readonly #mapError: ErrorMapper | undefined;
  readonly #connection: ConnectionState | undefined;
  #head: PendingCall<unknown> | undefined;
  #tail: PendingCall<unknown> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #closed = false;

  constructor(options: CallRunnerOptions) {
    this.#name = options.name;
    this.#timeoutMs = options.timeoutMs;
    this.#mapError = options.mapError;
    this.#connection = options.connection;
  }

  /** The deadline of each call, in ms. */
  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  /** True after {@link close}. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Number of calls not settled yet (for leak checks). */
  get pending(): number {
    let count = 0;
    for (let call = this.#head; call !== undefined; call = call.next) count += 1;
    return count;
  }

  /**
   * Runs `work` (once the connection is ready) and settles within the deadline. `work` may
   * return a plain value; a synchronous throw rejects the call like a rejection does.
   */
  run<T>(what: string, work: (call: Call) => Promise<T> | T, options?: RunOptions<T>): Promise<T> {
    if (this.#closed && options?.evenIfClosed !== true) {
      return Promise.reject(new BackendClosedError(`${this.#name} is closed: ${what} was not sent.`));
    }
    const signal = options?.signal;
    if (signal?.aborted === true) return Promise.reject(signal.reason);
    const call = new PendingCall<T>(what, performance.now() + this.#timeoutMs, options?.onLate);
    const connection = this.#connection;
    if (connection !== undefined && !connection.ready) {
      const started = connection.whenReady().then(() => {
        // A call whose deadline passed while it waited for the connection is never sent.
        if (call.settled) return undefined as T;
        call.sent = true;
        return work(call);
      });
      return note(this.#track(call, started, signal), this.#timeoutMs);
    }
    call.sent = true;
    let result: Promise<T> | T;
    try {
      result = work(call);
    } catch (error) {
      call.settled = true;
      return note(Promise.reject(this.#map(error, call as PendingCall<unknown>, signal)), 0);
    }
    // Work that answered at once (a synchronous driver, a guard's refusal) is settled already:
    // no deadline, no timer, nothing linked. Unless the work aborted the caller's signal itself.
    if (!isThenable(result) && !isAborted(signal)) {
      call.settled = true;
      return note(Promise.resolve(result), 0);
    }
    return note(this.#track(call, Promise.resolve(result), signal), this.#timeoutMs);
  }

  /**
   * Bounds `started`, a call already handed to the backend, by this runner's deadline: the
   * store's form of {@link run}, for a promise it got from a backend method it called itself.
   *
   * @internal
   */
  bound<T>(what: string, started: Promise<T> | T): Promise<T> {
    if (this.#closed) return Promise.reject(new BackendClosedError(`${this.#name} is closed: ${what} was not sent.`));
    // A backend that answered with a plain value has answered.
    if (!isThenable(started)) return Promise.resolve(started);
    const call = new PendingCall<T>(what, performance.now() + this.#timeoutMs, undefined);
    call.sent = true;
    return this.#track(call, started, undefined);
  }

  /** Links `call` and settles the returned promise with what `started` gives, unless the deadline, the signal or close comes first. */
  #track<T>(call: PendingCall<T>, started: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    const promise = new Promise<T>((resolve, reject) => {
      call.resolve = resolve;
      call.reject = reject;
    });
    const linked = call as PendingCall<unknown>;
    this.#link(linked);
    if (signal !== undefined) {
      if (signal.aborted) this.#fail(linked, signal.reason);
      else {
        const onAbort = (): void => this.#fail(linked, signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
        void promise.then(
          () => signal.removeEventListener('abort', onAbort),
          () => signal.removeEventListener('abort', onAbort),
        );
      }
    }
    started.then(
      (value) => {
        if (this.#settle(linked)) call.resolve(value);
        else if (call.sent) call.onLate?.(value);
      },
      (error: unknown) => {
        if (this.#settle(linked)) call.reject(this.#map(error, linked, signal));
      },
    );
    return promise;
  }

  /**
   * Refuses new calls with {@link BackendClosedError} (except `evenIfClosed` ones) and
   * settles every call still pending with it. Idempotent.
   */
  close(): void {
    this.#closed = true;
    // Nothing pending (a one-call runner of withDeadline closing after its call): no error to
    // make, whose stack would cost more than the call's own bookkeeping.
    if (this.#head === undefined) this.#disarm();
    else this.failPending(new BackendClosedError(`${this.#name} was closed before the call settled.`));
  }

  /** Settles every pending call with `error` (for example when the connection is torn down). */
  failPending(error: LatchkeyError): void {
    while (this.#head !== undefined) this.#fail(this.#head, error);
    this.#disarm();
  }

  #map(error: unknown, call: PendingCall<unknown>, signal: AbortSignal | undefined): unknown {
    if (error instanceof LatchkeyError) return error;
    if (signal?.aborted === true && error === signal.reason) return error;
    const info: CallInfo = { backend: this.#name, what: call.what, sent: call.sent, timeoutMs: this.#timeoutMs };
    if (this.#mapError !== undefined) return this.#mapError(error, info);
    return new BackendError(`${this.#name}: ${call.what} failed: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }

  #fail(call: PendingCall<unknown>, error: unknown): void {
    if (!this.#settle(call)) return;
    call.error = error;
    call.abort(error);
    call.reject(error);
  }

  #link(call: PendingCall<unknown>): void {
    if (this.#tail === undefined) {
      this.#head = call;
      this.#tail = call;
    } else {
      call.prev = this.#tail;
      this.#tail.next = call;
      this.#tail = call;
    }
    if (this.#timer === undefined) this.#arm();
    else if (this.#head === call) this.#timer.ref();
  }

  /** Marks `call` settled and unlinks it; false when it already was. */
  #settle(call: PendingCall<unknown>): boolean {
    if (call.settled) return false;
    call.settled = true;
    if (call.prev === undefined) this.#head = call.next;
    else call.prev.next = call.next;
    if (call.next === undefined) this.#tail = call.prev;
    else call.next.prev = call.prev;
    call.prev = undefined;
    call.next = undefined;
    // Left armed when nothing is pending (cheaper than a timer per call), but not holding the
    // process open; once closed, nothing will follow, so it goes (no timer outlives close).
    if (this.#head === undefined) {
      if (this.#closed) this.#disarm();
      else this.#timer?.unref();
    }
    return true;
  }

  #arm(): void {
    const head = this.#head;
    if (head === undefined || head.deadline === Infinity) return;
    const now = performance.now();
    const delay = timerDelay(Math.ceil(head.deadline - now));
    // A deadline beyond setTimeout's range is not due when the clamped timer fires: it re-arms.
    this.#timerAt = Math.min(head.deadline, now + delay);
    this.#timer = setTimeout(this.#expire, delay);
  }

  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  readonly #expire = (): void => {
    this.#timer = undefined;
    const now = performance.now();
    // A timer may fire a little early on some platforms: settle what is due, re-arm for the rest.
    while (this.#head !== undefined && this.#head.deadline <= Math.max(now, this.#timerAt)) {
      const call = this.#head;
      this.#fail(call, this.#timeoutError(call));
    }
    this.#timerAt = Infinity;
    this.#arm();
  };

  #timeoutError(call: PendingCall<unknown>): LatchkeyError {
    if (call.sent) {
      return new BackendTimeoutError(`${this.#name}: ${call.what} got no answer within ${this.#timeoutMs} ms.`, this.#timeoutMs);
    }
    const cause = this.#connection?.lastError;
    return new BackendUnavailableError(
      `${this.#name}: ${call.what}: not connected within ${this.#timeoutMs} ms${cause instanceof Error ? ` (${cause.message})` : ''}.`,
      cause === undefined ? undefined : { cause },
    );
  }
}

/** Read through a call, so that the check after the work is not narrowed by the one before it. */
function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

function isThenable<T>(value: Promise<T> | T): value is Promise<T> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function';
}

/**
 * The one-off form of {@link CallRunner}: runs `work` under its own deadline of `timeoutMs`
 * (`Infinity`: none), with the same settling rules. Use a runner for hot paths: this starts a
 * timer per call.
 */
export function withDeadline<T>(
  what: string,
  timeoutMs: number,
  work: (call: Call) => Promise<T> | T,
  options?: Omit<RunOptions<T>, 'evenIfClosed'> & { readonly name?: string; readonly mapError?: ErrorMapper },
): Promise<T> {
  const runner = new CallRunner({
    name: options?.name ?? 'latchkey',
    timeoutMs,
    ...(options?.mapError === undefined ? {} : { mapError: options.mapError }),
  });
  const promise = runner.run(what, work, options);
  // The runner's one timer goes with its one call.
  void promise.then(
    () => runner.close(),
    () => runner.close(),
  );
  return promise;
}
