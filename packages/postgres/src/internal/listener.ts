/**
 * The one connection of a backend that `LISTEN`s for lock releases.
 */

import type { Client, Notification } from 'pg';

/** Options of {@link ReleaseListener}. */
export interface ReleaseListenerOptions {
  /** The channel releases are announced on (`pg_notify(channel, key)`). */
  readonly channel: string;
  /** A new, unconnected client. */
  readonly connect: () => Client;
  /** A lock on `key` was released somewhere. */
  readonly onRelease: (key: string) => void;
  /**
   * Releases may have gone unheard: the listening started (again), or the connection was
   * lost. Every waiter should look again.
   */
  readonly onMissed: () => void;
  /** Deadline of one connect-and-LISTEN attempt. */
  readonly timeoutMs: number;
}

/** Least and most time between two attempts to listen after failures. */
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 2_000;

/**
 * A lazily opened connection that `LISTEN`s on the release channel. It never reconnects by
 * itself: whoever needs it calls {@link listen}, which starts at most one attempt at a time
 * and backs off after failures (50 ms doubling to 2 s). While it is not listening, waiters
 * fall back to bounded waits.
 */
export class ReleaseListener {
  readonly #options: ReleaseListenerOptions;
  #client: Client | undefined;
  #listening = false;
  #starting: Promise<boolean> | undefined;
  #failures = 0;
  #notBefore = 0;
  #closed = false;

  constructor(options: ReleaseListenerOptions) {
    this.#options = options;
  }

  /** True while listening: every release from now on will be heard. */
  get listening(): boolean {
    return this.#listening;
  }

  /**
   * Makes sure the connection listens. Resolves `true` once it does, `false` when this
   * attempt failed (or one is not due yet after recent failures). Never rejects.
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

  /** Ends the connection. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#listening = false;
    this.#drop();
  }

  async #start(): Promise<boolean> {
    let client: Client;
    try {
      client = this.#options.connect();
    } catch {
      this.#failed();
      return false;
    }
    this.#client = client;
    const { channel } = this.#options;
    client.on('notification', (message: Notification) => {
      if (message.channel === channel && message.payload !== undefined) this.#options.onRelease(message.payload);
    });
    const lost = (): void => {
      if (this.#client !== client) return;
      const wasListening = this.#listening;
      this.#listening = false;
      this.#drop();
      if (wasListening) this.#options.onMissed();
    };
    client.on('error', lost);
    client.on('end', lost);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        (async () => {
          await client.connect();
          await client.query(`LISTEN "${channel}"`);
        })(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('LISTEN timed out')), this.#options.timeoutMs);
        }),
      ]);
    } catch {
      if (this.#client === client) this.#drop();
      this.#failed();
      return false;
    } finally {
      clearTimeout(timer);
    }
    if (this.#closed || this.#client !== client) return false;
    this.#listening = true;
    this.#failures = 0;
    this.#options.onMissed();
    return true;
  }

  #failed(): void {
    this.#failures += 1;
    this.#notBefore = performance.now() + Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (this.#failures - 1));
  }

  #drop(): void {
    const client = this.#client;
    this.#client = undefined;
    // A failed or late end changes nothing: the socket is gone either way.
    client?.end().catch(noop);
  }
}

function noop(): void {}
