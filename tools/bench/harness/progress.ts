/**
 * Progress on stderr while a run goes: one line rewritten in place on a terminal, plain
 * lines (one per case and per skip) otherwise, so logs stay readable.
 *
 * @module
 */

/** Where progress goes. */
export interface ProgressSink {
  readonly isTTY?: boolean;
  write(text: string): unknown;
}

/** The progress display of a run. */
export class Progress {
  readonly #out: ProgressSink;
  readonly #tty: boolean;
  readonly #startedAt = Date.now();
  #lastLength = 0;
  #lastDraw = 0;

  /** @param out - Normally `process.stderr`. */
  constructor(out: ProgressSink = process.stderr) {
    this.#out = out;
    this.#tty = out.isTTY === true && process.env['TERM'] !== 'dumb';
  }

  /** A suite starts. */
  suite(name: string, title: string): void {
    this.#line(`▸ ${name}: ${title}`);
  }

  /** A suite cannot run here. */
  skip(name: string, reason: string): void {
    this.#line(`  ${name}: skipped: ${reason}`);
  }

  /** A case starts. */
  caseStart(suite: string, name: string, contenders: number, rounds: number): void {
    if (this.#tty) this.#status(`${suite} › ${name}: starting (${contenders} contenders × ${rounds} rounds)`);
    else this.#line(`  ${suite} › ${name}: ${contenders} contenders × ${rounds} rounds…`);
  }

  /** A round is under way (terminal only; too chatty for logs). */
  round(suite: string, name: string, contender: string, round: string, opsSoFar: number): void {
    if (!this.#tty) return;
    const now = Date.now();
    if (now - this.#lastDraw < 80) return;
    this.#lastDraw = now;
    this.#status(`${suite} › ${name} · ${contender} · ${round} · ${opsSoFar.toLocaleString('en-US')} ops · ${this.#elapsed()}`);
  }

  /** A case finished. */
  caseEnd(suite: string, name: string, durationMs: number, failure?: string): void {
    const what = failure === undefined ? `done in ${(durationMs / 1000).toFixed(1)} s` : `FAILED: ${failure}`;
    this.#line(`  ${suite} › ${name}: ${what}`);
  }

  /** Free text (warnings). */
  note(text: string): void {
    this.#line(`  ${text}`);
  }

  /** The last line of the run. */
  done(durationMs: number): void {
    this.#line(`▸ finished in ${(durationMs / 1000).toFixed(1)} s`);
  }

  #elapsed(): string {
    return `${((Date.now() - this.#startedAt) / 1000).toFixed(0)} s`;
  }

  #status(text: string): void {
    const columns = (this.#out as { columns?: number }).columns ?? 100;
    const clipped = text.length >= columns ? `${text.slice(0, columns - 2)}…` : text;
    this.#out.write(`\r\x1b[2K${clipped}`);
    this.#lastLength = clipped.length;
  }

  #line(text: string): void {
    if (this.#tty && this.#lastLength > 0) {
      this.#out.write('\r\x1b[2K');
      this.#lastLength = 0;
    }
    this.#out.write(`${text}\n`);
  }
}
