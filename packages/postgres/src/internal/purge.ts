/**
 * The background purge of expired values.
 */

import { timerDelay } from '@latchkey/core';

/** Options of {@link Purger}. */
export interface PurgerOptions {
  /** Time between purges, in ms (`0`: never). */
  readonly intervalMs: number;
  /** Rows one purge removes at most. */
  readonly batchSize: number;
  /** Runs one purge of at most `batchSize` rows; resolves how many it removed. */
  readonly purge: (batchSize: number) => Promise<number>;
}

/** Pause before the next batch when a purge removed a full batch (more are likely waiting). */
const FULL_BATCH_PAUSE_MS = 1_000;

/**
 * Runs a bounded purge every `intervalMs` (one at a time, a second apart while batches come
 * back full). Its timer never keeps the process alive. A failed purge is tried again at the
 * next interval: reads filter expired values anyway, so a late purge only costs space.
 */
export class Purger {
  readonly #options: PurgerOptions;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #started = false;
  #stopped = false;

  constructor(options: PurgerOptions) {
    this.#options = options;
  }

  /** Arms the first purge (idempotent; nothing when the interval is 0 or after {@link stop}). */
  start(): void {
    if (this.#started || this.#stopped || this.#options.intervalMs === 0) return;
    this.#started = true;
    this.#arm(this.#options.intervalMs);
  }

  /** Cancels the next purge. Idempotent. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#run(), timerDelay(ms));
    this.#timer.unref();
  }

  async #run(): Promise<void> {
    this.#timer = undefined;
    const { batchSize, intervalMs } = this.#options;
    let purged = 0;
    try {
      purged = await this.#options.purge(batchSize);
    } catch {
      // Tried again at the next interval; expired values are invisible meanwhile.
    }
    this.#arm(purged >= batchSize ? Math.min(intervalMs, FULL_BATCH_PAUSE_MS) : intervalMs);
  }
}
