import type { ConformanceGroup } from '../conformance-options.js';

/** The environment variable through which the runner tells its test entry what to run. */
export const RUN_ENV_VAR = 'LATCHKEY_CONFORMANCE_RUN';

/** What a not-applicable check's name ends with, before its reason. */
export const NOT_APPLICABLE = ' — not applicable: ';

/** One backend module to check. */
export interface RunModule {
  /** The name its suite is registered under (the module as the user gave it). */
  readonly label: string;
  /** Absolute path of the module file. */
  readonly path: string;
}

/** What the runner passes to its test entry. */
export interface RunRequest {
  readonly modules: readonly RunModule[];
  readonly only?: readonly ConformanceGroup[];
  readonly concurrency?: number;
}

/** Parses the request the runner left in `env`. @throws {Error} when it is missing or malformed. */
export function readRunRequest(env: NodeJS.ProcessEnv): RunRequest {
  const raw = env[RUN_ENV_VAR];
  if (raw === undefined) throw new Error(`${RUN_ENV_VAR} is not set: this file is run by the latchkey-conformance command.`);
  const parsed = JSON.parse(raw) as RunRequest;
  if (!Array.isArray(parsed.modules)) throw new Error(`${RUN_ENV_VAR} does not list modules.`);
  return parsed;
}

/** One run of a check: how it ended, how long it took, and the event-loop lag it saw. */
export interface AttemptTiming {
  readonly outcome: 'passed' | 'failed';
  /** Wall time of the attempt (the check and its cleanup), in ms. */
  readonly durationMs: number;
  /** The worst event-loop lag attributed to outside the backend (what justifies a retry), in ms. */
  readonly outsideLagMs: number;
  /** The worst event-loop lag of any cause, the backend's own included, in ms. */
  readonly totalLagMs: number;
  /** The failure message of a failed attempt. */
  readonly message?: string;
}

/** What a check records about its attempts, in its vitest task's `meta` under {@link TIMINGS_META_KEY}. */
export interface CheckTimings {
  /** Every attempt, in order. */
  readonly attempts: readonly AttemptTiming[];
  /** True when the check failed, was re-run because of outside lag, and then passed. */
  readonly flaky: boolean;
  /** The outside lag, in ms, above which a failed attempt is re-run. */
  readonly lagToleranceMs: number;
}

/** The key of {@link CheckTimings} in a check's task meta. */
export const TIMINGS_META_KEY = 'latchkeyConformanceTimings';

/** "attempt 1: failed after 312 ms; worst event-loop lag 65 ms, 3 ms of it outside the backend's calls". */
export function describeAttempt(timing: AttemptTiming, index: number): string {
  return (
    `attempt ${index + 1}: ${timing.outcome} after ${Math.round(timing.durationMs)} ms; worst event-loop lag ` +
    `${Math.round(timing.totalLagMs)} ms, ${Math.round(timing.outsideLagMs)} ms of it from outside the backend's calls`
  );
}
