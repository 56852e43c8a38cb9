import { BackendTimeoutError, BackendUnavailableError, type LatchkeyError } from '@latchkey/core';
import type { ConnectionGate } from './connection-gate.js';
import { toLatchkeyError } from './errors.js';

/**
 * One call in flight, linked into the runner's list. Every call has the same timeout, so the
 * list is ordered by deadline: one timer, armed for the head, serves them all (a timer per
 * call costs more than the rest of the call's bookkeeping together).
 */
class PendingCall<T = unknown> {
  prev: PendingCall | undefined;
  next: PendingCall | undefined;
  settled = false;
  sent = false;

  constructor(
    readonly what: string,
    readonly deadline: number,
    readonly resolve: (value: T) => void,
    readonly reject: (error: unknown) => void,
  ) {}
}

/**
 * Runs each Redis call under a deadline so that every call settles: with the result, with
 * {@link BackendUnavailableError} when the client could not connect before the deadline
 * (nothing was sent), with {@link BackendTimeoutError} when a sent command got no answer in
 * time (it may or may not have run), or with a mapped driver error.
 */
export class CallRunner {
  readonly #gate: ConnectionGate;
  readonly #timeoutMs: number;
  #head: PendingCall | undefined;
  #tail: PendingCall | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(gate: ConnectionGate, timeoutMs: number) {
    this.#gate = gate;
    this.#timeoutMs = timeoutMs;
  }

  /** The deadline of each call, in ms. */
  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  /**
   * Sends `work()` once the client is ready, and settles within the deadline with the reply
   * passed through `map` (which must not throw).
   */
  run<R, T = R>(what: string, work: () => Promise<R>, map?: (reply: R) => T): Promise<T> {
    let call!: PendingCall<T>;
    const promise = new Promise<T>((resolve, reject) => {
      call = new PendingCall<T>(what, performance.now() + this.#timeoutMs, resolve, reject);
    });
    this.#link(call as PendingCall);
    let started: Promise<R>;
    if (this.#gate.ready) {
      call.sent = true;
      try {
        started = work();
      } catch (error) {
        started = Promise.reject(error);
      }
    } else {
      started = this.#gate.whenReady().then(() => {
        // A call whose deadline passed while it waited for the connection is never sent.
        if (call.settled) return undefined as R;
        call.sent = true;
        return work();
      });
    }
    started.then(
      (reply) => {
        if (this.#settle(call as PendingCall)) call.resolve(map === undefined ? (reply as unknown as T) : map(reply));
      },
      (error: unknown) => {
        if (this.#settle(call as PendingCall)) call.reject(toLatchkeyError(error, what, this.#timeoutMs));
      },
    );
    return promise;
  }

  /** Settles every call still waiting with `error` (used by `close`, so no timer outlives it). */
  failAll(error: LatchkeyError): void {
    while (this.#head !== undefined) {
      const call = this.#head;
      if (this.#settle(call)) call.reject(error);
    }
    this.#disarm();
  }

  #link(call: PendingCall): void {
    if (this.#tail === undefined) {
      this.#head = call;
      this.#tail = call;
    } else {
      call.prev = this.#tail;
      this.#tail.next = call;
      this.#tail = call;
    }
    if (this.#timer === undefined) this.#arm();
  }

  /** Marks `call` settled and unlinks it; false when it already was. */
  #settle(call: PendingCall): boolean {
    if (call.settled) return false;
    call.settled = true;
    if (call.prev === undefined) this.#head = call.next;
    else call.prev.next = call.next;
    if (call.next === undefined) this.#tail = call.prev;
    else call.next.prev = call.prev;
    call.prev = undefined;
    call.next = undefined;
    return true;
  }

  #arm(): void {
    const head = this.#head;
    if (head === undefined) return;
    // Left armed when the list empties (cheaper than re-arming per call); never keeps the process alive.
    this.#timer = setTimeout(this.#expire, Math.max(0, Math.ceil(head.deadline - performance.now())));
    this.#timer.unref();
  }

  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  readonly #expire = (): void => {
    this.#timer = undefined;
    const now = performance.now();
    while (this.#head !== undefined && this.#head.deadline <= now) {
      const call = this.#head;
      const error = call.sent
        ? new BackendTimeoutError(`RedisBackend: ${call.what} got no answer within ${this.#timeoutMs} ms.`, this.#timeoutMs)
        : new BackendUnavailableError(`RedisBackend: ${call.what}: not connected to Redis within ${this.#timeoutMs} ms.`);
      if (this.#settle(call)) call.reject(error);
    }
    if (this.#timer === undefined) this.#arm();
  };
}
