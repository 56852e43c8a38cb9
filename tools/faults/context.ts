/**
 * What the suite hands every scenario. Its own module so the scenarios depend on this
 * description only, never on the suite that registers them.
 *
 * @module
 */
import type { BackendCapabilities } from '@latchkey/core';
import type { BackendKind, BackendTarget } from './backends.js';
import type { Cluster } from './cluster.js';
import type { FaultProfile } from './profiles.js';
import type { StoreSettings } from './worker/commands.js';

/** What every scenario gets. */
export interface SuiteContext {
  readonly kind: BackendKind;
  readonly profile: FaultProfile;
  /** The shared server's address (`''` for memory). */
  readonly address: string;
  /** A target on the shared server with a fresh namespace. */
  target(overrides?: Partial<BackendTarget>): BackendTarget;
  /** The suite's main workers ({@link FaultProfile.processes} of them), started before the scenarios. */
  cluster(): Cluster;
  /** Capabilities of the backend (from the main workers' open). */
  capabilities(): BackendCapabilities;
  /** Makes the main workers' server lose its data (memory: flushes the shared backend). */
  loseData(): Promise<void>;
  /** Store settings of the main workers. */
  readonly settings: StoreSettings;
}
