import type { Redis } from 'ioredis';

/** Options of {@link ReleaseListener}. */
export interface ReleaseListenerOptions {
  /** The channel releases are published on. */
  readonly channel: string;
  /** Creates a fresh, not yet connected subscriber connection (each call may pick another node). */
  readonly connect: () => Redis;
  /** A lock was released somewhere: `dataKey` names the key, `token` the lease that let go. */
  readonly onRelease: (dataKey: string, token: string) => void;
  /**
   * The subscription (re)started: releases published while it was down were missed, so
   * every waiter should look again.
   */
  readonly onListening: () => void;
  /** Deadline of one connect-and-subscribe attempt. */
  readonly timeoutMs: number;
}

/** Least and most time between two subscription attempts after failures. */
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 1_000;

/**
 * One lazily created pub/sub connection that hears lock releases (`<token> <dataKey>`
 * messages). It never reconnects by itself: whoever needs it calls {@link listen}, which
 * starts at most one attempt at a time and backs off after failures. While it is not
 * listening, waiters fall back to bounded waits.
 */
export class ReleaseListener {
  readonly #options: ReleaseListenerOptions;
  #subscriber: Redis | undefined;
  #listening = false;
  #starting: Promise<boolean> | undefined;
  #failures = 0;
  #notBefore = 0;
  #closed = false;

  constructor(options: ReleaseListenerOptions) {
    this.#options = options;
  }

  /** True while subscribed: every release from now on will be heard. */
  get listening(): boolean {
    return this.#listening;
  }

  /**
   * Makes sure the subscription is up. Resolves `true` once subscribed, `false` when this
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

  /** Drops the connection. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#listening = false;
    this.#drop();
  }

  async #start(): Promise<boolean> {
    let subscriber: Redis;
    try {
      subscriber = this.#options.connect();
    } catch {
      this.#failed();
      return false;
    }
    this.#subscriber = subscriber;
    subscriber.on('error', () => undefined);
    subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.#options.channel) return;
      const space = message.indexOf(' ');
      if (space > 0) this.#options.onRelease(message.slice(space + 1), message.slice(0, space));
    });
    subscriber.on('close', () => {
      if (this.#subscriber !== subscriber) return;
      this.#listening = false;
      this.#drop();
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        subscriber.subscribe(this.#options.channel),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('subscribe timed out')), this.#options.timeoutMs);
        }),
      ]);
    } catch {
      if (this.#subscriber === subscriber) this.#drop();
      this.#failed();
      return false;
    } finally {
      clearTimeout(timer);
    }
    if (this.#closed || this.#subscriber !== subscriber) return false;
    this.#listening = true;
    this.#failures = 0;
    this.#options.onListening();
    return true;
  }

  #failed(): void {
    this.#failures += 1;
    this.#notBefore = performance.now() + Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (this.#failures - 1));
  }

  #drop(): void {
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    subscriber?.disconnect();
  }
}
