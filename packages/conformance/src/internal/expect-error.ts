import { LatchkeyError } from '@latchkey/core';
import { expect } from 'vitest';
import { lagSince } from './event-loop-lag.js';
import { settle, type Settled } from './timing.js';

/** A class of error (`NotFoundError`, …); abstract so any constructor signature fits. */
export type ErrorClass<E> = abstract new (...args: never[]) => E;

/**
 * Awaits `work` and asserts it rejected (or threw) with an instance of `type`; resolves the
 * error for further assertions. The failure message names what happened instead, prefixed
 * with `what` (the call, when a check makes several) when given.
 */
export async function expectRejection<E>(work: Promise<unknown> | (() => unknown), type: ErrorClass<E>, what?: string): Promise<E> {
  const outcome = await settle(work);
  const prefix = what === undefined ? '' : `${what}: `;
  if (outcome.ok) {
    expect.fail(`${prefix}expected a ${type.name}, but the call resolved ${describeValue(outcome.value)}`);
  }
  const { error } = outcome;
  if (!(error instanceof type)) {
    expect.fail(`${prefix}expected a ${type.name}, got ${describeError(error)}`);
  }
  return error;
}

/** Asserts `work` rejected with exactly `reason` (the same object). */
export async function expectRejectionWith(work: Promise<unknown>, reason: unknown): Promise<void> {
  expectRejectedWith(await settle(work), reason);
}

/**
 * Asserts a settled outcome is a rejection with exactly `reason`. Checks that must abort a
 * call after starting it take its outcome with `settle()` at once (so an early settlement is
 * never an unhandled rejection) and assert on it here.
 */
export function expectRejectedWith(outcome: Settled<unknown>, reason: unknown): void {
  if (outcome.ok) expect.fail(`expected the abort reason, but the call resolved ${describeValue(outcome.value)}`);
  if (outcome.error !== reason) expect.fail(`expected the abort reason itself, got ${describeError(outcome.error)}`);
}

/** "NotFoundError (NOT_FOUND): Could not find: k." */
export function describeError(error: unknown): string {
  if (error instanceof LatchkeyError) return `${error.name} (${error.code}): ${error.message}`;
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return `a non-error rejection ${describeValue(error)}`;
}

/** A short rendering of a resolved value for failure messages. */
export function describeValue(value: unknown): string {
  if (value instanceof Uint8Array) return `${value.byteLength} bytes`;
  if (typeof value === 'bigint') return `${value}n`;
  try {
    return JSON.stringify(value, (_key, inner: unknown) => (typeof inner === 'bigint' ? `${inner}n` : inner)) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * Asserts that `what` took less than `boundMs` from `startedAt` until `endedAt` (default: now),
 * allowing on top whatever event-loop lag from outside the backend's calls this process
 * suffered meanwhile: a starved test process must not be blamed on the backend, but a backend
 * that blocks the event loop earns no allowance for it.
 */
export function expectWithin(startedAt: number, boundMs: number, what: string, endedAt = performance.now()): void {
  const took = endedAt - startedAt;
  const lag = lagSince(startedAt);
  if (!(took < boundMs + lag)) {
    expect.fail(
      `${what} took ${Math.round(took)} ms; the bound is ${Math.round(boundMs)} ms (+${Math.round(lag)} ms of event-loop lag from outside the backend's calls)`,
    );
  }
}
