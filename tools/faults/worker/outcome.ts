/**
 * How scenario results describe what a call did, in a form that crosses process boundaries.
 *
 * @module
 */
import { LatchkeyError } from '@latchkey/core';

/** `'ok'`, a latchkey error `code`, or `'UNTYPED:<name>: <message>'` for anything else. */
export type Outcome = string;

/** The outcome of a call that threw `error`. */
export function outcomeOf(error: unknown): Outcome {
  if (error instanceof LatchkeyError) return error.code;
  if (error instanceof Error) return `UNTYPED:${error.name}: ${error.message}`;
  return `UNTYPED:${typeof error}: ${String(error)}`;
}

/** True for outcomes that are a typed latchkey error (or success). */
export function isTyped(outcome: Outcome): boolean {
  return !outcome.startsWith('UNTYPED:');
}

/** Counts outcomes by kind. */
export function tally(outcomes: Iterable<Outcome>): Record<Outcome, number> {
  const counts: Record<Outcome, number> = {};
  for (const outcome of outcomes) counts[outcome] = (counts[outcome] ?? 0) + 1;
  return counts;
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
