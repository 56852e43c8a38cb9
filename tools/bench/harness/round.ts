/**
 * Running one timed round of one contender.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import { LatencyRecorder } from './stats.js';
import type { Operation, RoundSample } from './types.js';

/** How a round is run. */
export interface RoundPlan {
  readonly mode: 'async' | 'sync';
  readonly concurrency: number;
  readonly durationMs: number;
  readonly latency: boolean;
  /**
   * After the round's time is up, in-flight operations get this long to settle before the
   * round is abandoned with an error (a hanging operation must not hang the benchmark).
   */
  readonly drainLimitMs: number;
  /** Called about every 100 ms while the round runs, with the operations done so far. */
  readonly onTick?: (opsSoFar: number) => void;
}

/** Thrown when in-flight operations did not settle within {@link RoundPlan.drainLimitMs}. */
export class RoundDrainError extends Error {
  override readonly name = 'RoundDrainError';
}

/**
 * Runs `op` for `plan.durationMs`: in sync mode in a tight loop, in async mode with
 * `plan.concurrency` operations in flight (each worker starts its next operation when its
 * previous one settles, until the time is up; then in-flight ones are awaited and counted).
 *
 * @throws {RoundDrainError} when in-flight operations do not settle in time.
 */
export async function runRound(op: Operation, plan: RoundPlan): Promise<RoundSample> {
  return plan.mode === 'sync' ? runSyncRound(op, plan) : runAsyncRound(op, plan);
}

const SYNC_BATCH = 16;
const TICK_MS = 100;

function runSyncRound(op: Operation, plan: RoundPlan): RoundSample {
  let ops = 0;
  let failed = 0;
  let firstError: unknown;
  const recorder = plan.latency ? new LatencyRecorder() : undefined;
  const start = performance.now();
  const deadline = start + plan.durationMs;
  let nextTick = start + TICK_MS;
  let now = start;
  while (now < deadline) {
    for (let j = 0; j < SYNC_BATCH; j++) {
      const began = recorder === undefined ? 0 : performance.now();
      try {
        op(ops + failed);
        ops++;
        recorder?.add(performance.now() - began);
      } catch (error) {
        failed++;
        firstError ??= error;
      }
    }
    now = performance.now();
    if (now >= nextTick) {
      plan.onTick?.(ops);
      nextTick = now + TICK_MS;
    }
  }
  return sample(ops, failed, performance.now() - start, recorder, firstError);
}

async function runAsyncRound(op: Operation, plan: RoundPlan): Promise<RoundSample> {
  let started = 0;
  let ops = 0;
  let failed = 0;
  let firstError: unknown;
  const recorder = plan.latency ? new LatencyRecorder() : undefined;
  const start = performance.now();
  const deadline = start + plan.durationMs;
  const ticker = plan.onTick === undefined ? undefined : setInterval(() => plan.onTick?.(ops), TICK_MS);

  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const index = started++;
      const began = recorder === undefined ? 0 : performance.now();
      try {
        await op(index);
        ops++;
        recorder?.add(performance.now() - began);
      } catch (error) {
        failed++;
        firstError ??= error;
      }
    }
  };

  let drainTimer: NodeJS.Timeout | undefined;
  const drained = new Promise<never>((_, reject) => {
    drainTimer = setTimeout(
      () => reject(new RoundDrainError(`operations still in flight ${plan.drainLimitMs} ms after the round ended`)),
      plan.durationMs + plan.drainLimitMs,
    );
  });
  try {
    await Promise.race([Promise.all(Array.from({ length: plan.concurrency }, worker)), drained]);
  } finally {
    clearTimeout(drainTimer);
    if (ticker !== undefined) clearInterval(ticker);
  }
  return sample(ops, failed, performance.now() - start, recorder, firstError);
}

function sample(ops: number, failed: number, elapsedMs: number, recorder: LatencyRecorder | undefined, firstError: unknown): RoundSample {
  const latency = recorder?.percentiles();
  return {
    ops,
    failed,
    elapsedMs,
    opsPerSec: elapsedMs > 0 ? (ops / elapsedMs) * 1000 : 0,
    ...(latency === undefined ? {} : { latency }),
    ...(firstError === undefined ? {} : { firstError }),
  };
}
