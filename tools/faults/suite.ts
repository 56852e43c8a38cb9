/**
 * The fault suite of one backend: every scenario docs/FAULT-TESTS.md lists, registered as vitest suites.
 * The test files in test/ call {@link describeBackendFaults} once per backend.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { BackendCapabilities } from '@latchkey/core';
import { afterAll, beforeAll, describe } from 'vitest';
import { requireService } from '@latchkey/test-servers';
import { adapterStatus, hasServer, type BackendKind, type BackendTarget } from './backends.js';
import { Cluster } from './cluster.js';
import type { SuiteContext } from './context.js';
import { profileFor } from './profiles.js';
import { requireAdapter } from './require-adapter.js';
import { defineAbortTests } from './scenarios/abort.js';
import { defineBadInputTests } from './scenarios/bad-input.js';
import { defineContentionTests } from './scenarios/contention.js';
import { defineDelayedWriteTests } from './scenarios/delayed-write.js';
import { defineHolderCrashTests } from './scenarios/holder-crash.js';
import { defineLockLostTests } from './scenarios/lock-lost.js';
import { defineModelTests } from './scenarios/model.js';
import { defineNetworkFaultTests } from './scenarios/network-faults.js';
import { definePausedHolderTests } from './scenarios/paused-holder.js';
import { defineServerRestartTests } from './scenarios/server-restart.js';
import { defineShutdownTests } from './scenarios/shutdown.js';
import { loseServerData } from './servers.js';
import { flushResults } from './stats.js';
import type { StoreSettings } from './worker/commands.js';

/** Store settings of the main workers: short safety window so short leases are allowed. */
export const MAIN_SETTINGS: StoreSettings = { lockTimeoutMs: 5000, lockSafetyWindowMs: 50, lockWaitMs: 10_000, operationTimeoutMs: 15_000 };

/** Adapter deadline of the main workers. */
const MAIN_OPERATION_TIMEOUT_MS = 5000;

/** Where a backend's server is, as the shared test-server setup provided it. */
export interface ServiceInfo {
  /** The address (`undefined` when unavailable; ignored for memory). */
  readonly address: string | undefined;
  /** Why it is unavailable. */
  readonly unavailable: string | undefined;
}

/**
 * Registers the fault suite of `kind`. When the adapter package cannot be loaded or does not
 * export its backend, or its server is missing, the suite skips (printing why), or under
 * `LATCHKEY_REQUIRE_SERVICES=1` fails: this throws, and so does the test file.
 */
export async function describeBackendFaults(kind: BackendKind, service: ServiceInfo): Promise<void> {
  const suiteName = `${kind} faults`;
  const runs =
    requireAdapter(suiteName, await adapterStatus(kind)) &&
    (kind === 'memory' || requireService(suiteName, service.address, service.unavailable));
  describe.runIf(runs)(suiteName, () => {
    const address = kind === 'memory' ? '' : (service.address ?? '');
    const runId = randomUUID().slice(0, 8);
    let namespaces = 0;
    const target = (overrides: Partial<BackendTarget> = {}): BackendTarget => ({
      kind,
      address,
      namespace: `faults_${kind}_${runId}_${++namespaces}`,
      operationTimeoutMs: MAIN_OPERATION_TIMEOUT_MS,
      ...overrides,
    });
    const mainTarget = target();
    let main: Cluster | undefined;
    let capabilities: BackendCapabilities | undefined;
    const context: SuiteContext = {
      kind,
      profile: profileFor(kind),
      address,
      target,
      settings: MAIN_SETTINGS,
      cluster: () => {
        if (main === undefined) throw new Error('the main workers did not start');
        return main;
      },
      capabilities: () => {
        if (capabilities === undefined) throw new Error('the main workers did not start');
        return capabilities;
      },
      loseData: async () => {
        const shared = context.cluster().sharedMemoryBackend;
        if (shared !== undefined) shared.flush();
        else await loseServerData(mainTarget);
      },
    };

    beforeAll(async () => {
      try {
        main = await Cluster.start(mainTarget, MAIN_SETTINGS, context.profile.processes);
      } catch (error) {
        throw new Error(`${suiteName}: the workers could not open the backend: ${error instanceof Error ? error.message : String(error)}`, {
          cause: error,
        });
      }
      capabilities = main.capabilities;
    });

    afterAll(async () => {
      flushResults(kind);
      await main?.destroy();
    });

    defineContentionTests(context);
    definePausedHolderTests(context);
    defineLockLostTests(context);
    defineHolderCrashTests(context);
    defineAbortTests(context);
    defineBadInputTests(context);
    defineModelTests(context);
    if (hasServer(kind)) {
      defineServerRestartTests(context);
      defineNetworkFaultTests(context);
      defineDelayedWriteTests(context);
    }
    defineShutdownTests(context);
  });
}
