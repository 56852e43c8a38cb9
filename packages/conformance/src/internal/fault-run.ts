import { randomUUID } from 'node:crypto';
import type { Backend } from '@latchkey/core';
import { TcpFaultProxy } from '../tcp-fault-proxy.js';
import { describeError, describeValue } from './expect-error.js';
import type { FaultEnvironment } from './fault-environment.js';
import { sleep, since, settleWithin } from './timing.js';

/** How many `get`s through the proxy measure the round trip before the fault. */
const ROUND_TRIP_SAMPLES = 3;
/** Pause between recovery attempts that failed. */
const RECOVERY_PAUSE_MS = 50;

/** A recovery round trip after a fault was lifted. */
export interface Recovery {
  /** True when a set/get round trip succeeded (and read back the right values) within the bound. */
  readonly recovered: boolean;
  /** From lifting the fault to the end of the first successful round trip (or giving up). */
  readonly tookMs: number;
  readonly attempts: number;
  /** What the failed attempts did, oldest first (the last few). */
  readonly failures: readonly string[];
}

/**
 * One fault check's resources: a proxy in front of the server, a backend built through it,
 * and a key written before the fault that must read back unchanged after it. `dispose` closes
 * everything, whatever state the fault left it in.
 */
export class FaultRun {
  readonly proxy: TcpFaultProxy;
  readonly backend: Backend;
  /** A prefix unique to this run, for its keys. */
  readonly id = randomUUID().slice(0, 8);
  readonly #env: FaultEnvironment;
  readonly #destroy: (backend: Backend) => Promise<void>;
  readonly #before = { key: `latchkey-fault-before:${this.id}`, value: utf8(`before ${this.id}`) };

  private constructor(env: FaultEnvironment, proxy: TcpFaultProxy, backend: Backend, destroy: (backend: Backend) => Promise<void>) {
    this.#env = env;
    this.proxy = proxy;
    this.backend = backend;
    this.#destroy = destroy;
  }

  /** Starts a proxy in front of the server and builds a backend through it. */
  static async start(env: FaultEnvironment, destroy: (backend: Backend) => Promise<void>): Promise<FaultRun> {
    const proxy = await TcpFaultProxy.start(env.server);
    try {
      const backend = await env.createThrough({ host: proxy.host, port: proxy.port });
      return new FaultRun(env, proxy, backend, destroy);
    } catch (error) {
      await proxy.close();
      throw error;
    }
  }

  /** A key unique to this run. */
  key(name: string): string {
    return `latchkey-fault-${name}:${this.id}`;
  }

  /**
   * Before any fault: writes the "before" key and reads it back, then measures the round trip
   * of a `get` through the proxy (the slowest of a few), so connections are open when the fault
   * starts and the margins rest on what this path takes.
   * @throws {Error} when the backend does not work through the proxy to begin with.
   */
  async warmUp(): Promise<number> {
    const { key, value } = this.#before;
    const boundMs = this.#env.deadlineMs + 5000;
    const written = await settleWithin(this.backend.set(key, value), boundMs);
    if (written === 'hung' || !written.ok) throw new Error(`before any fault, set through the proxy ${outcomeText(written)}`);
    let roundTripMs = 0;
    for (let i = 0; i < ROUND_TRIP_SAMPLES; i++) {
      const startedAt = performance.now();
      const read = await settleWithin(this.backend.get(key), boundMs);
      if (read === 'hung' || !read.ok) throw new Error(`before any fault, get through the proxy ${outcomeText(read)}`);
      if (!sameBytes(read.value, value))
        throw new Error(`before any fault, get read back ${describeValue(read.value)}, not what set wrote`);
      roundTripMs = Math.max(roundTripMs, since(startedAt));
    }
    return Math.ceil(roundTripMs);
  }

  /**
   * Repeats a round trip — `set` of a new value and `get` of it, and `get` of the key written
   * before the fault — until one succeeds with the right values or `withinMs` has passed since
   * `liftedAt`. Wrong values count as failures: after a pause a client that pairs a late reply
   * with the wrong request would read one key's value for another.
   */
  async recover(liftedAt: number, withinMs: number): Promise<Recovery> {
    const failures: string[] = [];
    let attempts = 0;
    for (;;) {
      const left = withinMs - since(liftedAt);
      if (left <= 0) break;
      attempts += 1;
      const problem = await this.#roundTrip(attempts, left);
      if (problem === undefined) return { recovered: true, tookMs: since(liftedAt), attempts, failures };
      failures.push(`attempt ${attempts} at ${Math.round(since(liftedAt))} ms: ${problem}`);
      if (failures.length > 5) failures.shift();
      await sleep(Math.min(RECOVERY_PAUSE_MS, withinMs - since(liftedAt)));
    }
    return { recovered: false, tookMs: since(liftedAt), attempts, failures };
  }

  async #roundTrip(attempt: number, withinMs: number): Promise<string | undefined> {
    const key = this.key('recovery');
    const value = utf8(`recovered ${this.id} ${attempt}`);
    const startedAt = performance.now();
    const left = (): number => Math.max(1, withinMs - since(startedAt));
    const written = await settleWithin(this.backend.set(key, value), left());
    if (written === 'hung' || !written.ok) return `set ${outcomeText(written)}`;
    const read = await settleWithin(this.backend.get(key), left());
    if (read === 'hung' || !read.ok) return `get ${outcomeText(read)}`;
    if (!sameBytes(read.value, value)) return `get of the key just set read ${describeValue(read.value)}`;
    const before = await settleWithin(this.backend.get(this.#before.key), left());
    if (before === 'hung' || !before.ok) return `get of the key written before the fault ${outcomeText(before)}`;
    if (!sameBytes(before.value, this.#before.value)) {
      return `get of the key written before the fault read ${describeValue(before.value)}, not its value`;
    }
    return undefined;
  }

  /** Destroys and closes the backend, then closes the proxy; every step runs even if one fails. */
  async dispose(): Promise<void> {
    const failures: unknown[] = [];
    // Cleanup goes through the proxy too: it must carry traffic again first.
    await this.proxy.setMode({ kind: 'pass' }).catch((error: unknown) => failures.push(error));
    this.proxy.releaseToServer();
    for (const step of [() => this.#destroy(this.backend), () => this.backend.close(), () => this.proxy.close()]) {
      try {
        await step();
      } catch (error) {
        failures.push(error);
      }
    }
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) throw new AggregateError(failures, 'cleaning up after the fault check failed');
  }
}

/** "rejected with BackendTimeoutError (…)", "resolved …" or "did not settle". */
export function outcomeText(
  outcome: { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: unknown } | 'hung',
): string {
  if (outcome === 'hung') return 'did not settle';
  return outcome.ok ? `resolved ${describeValue(outcome.value)}` : `rejected with ${describeError(outcome.error)}`;
}

function sameBytes(actual: unknown, expected: Uint8Array): boolean {
  if (!(actual instanceof Uint8Array) || actual.byteLength !== expected.byteLength) return false;
  return actual.every((byte, i) => byte === expected[i]);
}

function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}
