/**
 * Hearing lock releases of other processes: the generic part of a backend whose server
 * announces them (Redis pub/sub, PostgreSQL `LISTEN`/`NOTIFY`).
 */

/** What a {@link ReleaseConnection} tells its {@link ReleaseListener}. */
export interface ReleaseEvents {
  /**
   * A lock was released somewhere. `key`: the stored key whose waiters here look again;
   * `undefined` when the message does not say which (every waiter looks again).
   */
  released(key: string | undefined): void;
  /** The connection is gone (closed, reset, errored): releases may go unheard from now on. */
  lost(): void;
}

/** One connection that listens for releases, as a backend opens it for {@link ReleaseListener}. */
export interface ReleaseConnection {
  /**
   * Settles once the connection listens (fulfils) or cannot (rejects). Releases announced from
   * then on must reach {@link ReleaseEvents.released}.
   */
  readonly ready: Promise<unknown>;
  /** Ends the connection without waiting. Called at most once; must not throw. */
  close(): void;
}

/** Whom a {@link ReleaseListener} wakes: a {@link LockWaiters} fits. */
export interface ReleaseTarget {
  /** A release of `key` was heard. */
  wake(key: string): void;
  /** Releases may have gone unheard: every waiter looks again. */
  wakeAll(): void;
}

/** Options of {@link ReleaseListener}. */
export interface ReleaseListenerOptions {
  /**
   * Opens a new connection that listens for releases and reports them to `events` (the
   * protocol's part: subscribing, parsing messages). May throw; a failure counts as a failed
   * attempt.
   */
  readonly open: (events: ReleaseEvents) => ReleaseConnection;
  /** Woken by every release heard, and wholesale whenever releases may have gone unheard. */
  readonly target: ReleaseTarget;
  /** Deadline of one open-and-listen attempt, in ms: a connection not ready by then is closed. */
  readonly timeoutMs: number;
  /**
   * Least time between two attempts after a failure, in ms; it doubles with each failure in a row.
   * @default 50
   */
  readonly retryMinMs?: number;
  /**
   * Most time between two attempts after failures, in ms.
   * @default 1000
   */
  readonly retryMaxMs?: number;
}

/**
 * A lazily opened connection that hears lock releases of other processes and wakes the
 * waiters here. It never reconnects by itself: whoever needs it calls {@link listen} (or
 * {@link hearing}), which starts at most one attempt at a time and, after failures, waits
 * `retryMinMs` doubling up to `retryMaxMs` before the next.
 *
 * - A release heard wakes the key's waiters through the target ({@link ReleaseTarget.wake}).
 * - Whenever releases may have gone unheard — the connection (re)started listening or was
 *   lost — every waiter looks again ({@link ReleaseTarget.wakeAll}), so none sleeps through
 *   a release it missed.
 * - While it is not listening, waiters must fall back to bounded waits: pass
 *   {@link hearing} to {@link wakeUpRetry}, whose `fallbackMs` bounds their sleep then.
 *
 * @example
 * const waiters = new LockWaiters({ name, protocol, retry: wakeUpRetry({ hearing: () => releases.hearing() }) })
 * const releases = new ReleaseListener({ target: waiters, timeoutMs, open: (events) => subscribe(channel, events) })
 */
export class ReleaseListener {
  readonly #open: (events: ReleaseEvents) => ReleaseConnection;
  readonly #target: ReleaseTarget;
  readonly #timeoutMs: number;
  readonly #retryMinMs: number;
  readonly #retryMaxMs: number;
  #connection: ReleaseConnection | undefined;
  #listening = false;
  #starting: Promise<boolean> | undefined;
  #failures = 0;
  #notBefore = 0;
  #closed = false;

  constructor(options: ReleaseListenerOptions) {
    this.#open = options.open;
    this.#target = options.target;
    this.#timeoutMs = options.timeoutMs;
    this.#retryMinMs = options.retryMinMs ?? 50;
    this.#retryMaxMs = options.retryMaxMs ?? 1_000;
  }

  /** True while listening: every release from now on will be heard. */
  get listening(): boolean {
    return this.#listening;
  }

  /** Failed attempts in a row since the connection last listened (for tests and diagnostics). */
  get failures(): number {
    return this.#failures;
  }

  /**
   * Whether releases are heard now. When not, starts listening in the background (once its
   * backoff allows), so a waiter that polls meanwhile will be woken once it listens. For
   * {@link WakeUpRetryOptions.hearing}.
   */
  hearing(): boolean {
    if (this.#listening) return true;
    void this.listen();
    return false;
  }

  /**
   * Makes sure the connection listens. Resolves `true` once it does, `false` when this
   * attempt failed, one is not due yet after recent failures, or the listener is closed.
   * Never rejects.
   */
  listen(): Promise<boolean> {
    if (this.#listening) return Promise.resolve(true);
    if (this.#closed) return Promise.resolve(false);
    if (this.#starting !== undefined) return this.#starting;
    if (performance.now() < this.#notBefore) return Promise.resolve(false);
    this.#starting = this.#start().finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  /** Ends the connection and stops listening for good. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#listening = false;
    this.#drop();
  }

  async #start(): Promise<boolean> {
    let connection: ReleaseConnection | undefined;
    const events: ReleaseEvents = {
      released: (key) => {
        // A late message of a connection already dropped changes nothing: the next one starts with a wakeAll.
        if (connection === undefined || this.#connection !== connection) return;
        if (key === undefined) this.#target.wakeAll();
        else this.#target.wake(key);
      },
      lost: () => {
        if (connection === undefined || this.#connection !== connection) return;
        const wasListening = this.#listening;
        this.#listening = false;
        this.#drop();
        // Heads sleeping until woken must now fall back to bounded waits.
        if (wasListening) this.#target.wakeAll();
      },
    };
    try {
      connection = this.#open(events);
    } catch {
      this.#failed();
      return false;
    }
    this.#connection = connection;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        connection.ready,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('listening timed out')), this.#timeoutMs);
        }),
      ]);
    } catch {
      if (this.#connection === connection) this.#drop();
      this.#failed();
      return false;
    } finally {
      clearTimeout(timer);
    }
    if (this.#closed) return false;
    // Lost while getting ready: the 'lost' event already dropped it.
    if (this.#connection !== connection) {
      this.#failed();
      return false;
    }
    this.#listening = true;
    this.#failures = 0;
    this.#notBefore = 0;
    // Releases announced before the connection listened went unheard.
    this.#target.wakeAll();
    return true;
  }

  #failed(): void {
    this.#failures += 1;
    this.#notBefore = performance.now() + Math.min(this.#retryMaxMs, this.#retryMinMs * 2 ** Math.min(this.#failures - 1, 30));
  }

  #drop(): void {
    const connection = this.#connection;
    this.#connection = undefined;
    connection?.close();
  }
}
