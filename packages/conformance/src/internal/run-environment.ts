import type { ConformanceGroup } from '../conformance-options.js';

/** The environment variable through which the runner tells its test entry what to run. */
export const RUN_ENV_VAR = 'LATCHKEY_CONFORMANCE_RUN';

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
