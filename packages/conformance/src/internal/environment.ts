import {
  hasDataMethod,
  hasOwnLocks,
  type Backend,
  type BackendCapabilities,
  type KeyMangler,
  type OptionalDataMethod,
} from '@latchkey/core';
import { CONFORMANCE_GROUPS, type ConformanceGroup, type ConformanceOptions } from '../conformance-options.js';
import { resolveFaultEnvironment, type FaultEnvironment } from './fault-environment.js';

/** Durations the checks use, derived from the declared capabilities and the options. */
export interface Timings {
  /** Short lease of lock checks. */
  readonly leaseMs: number;
  /** `lockSafetyWindowMs` of the stores the checks configure. */
  readonly safetyMs: number;
  /** A short TTL for expiry checks through the store (the core filters expiry exactly). */
  readonly shortTtlMs: number;
  /** A TTL for direct expiry checks: at least the backend's expiry resolution. */
  readonly backendTtlMs: number;
  /** How long after its expiry a value may still be visible on the backend. */
  readonly expiryGraceMs: number;
  /** Allowance for "promptly": the measured round trip plus slack. */
  readonly promptMs: number;
  /** The measured round trip of one `get`. */
  readonly roundTripMs: number;
  /** Time limit of each check. */
  readonly testTimeoutMs: number;
  /** How many checks may run at once. */
  readonly concurrency: number;
  /** Event-loop lag above which a failed check is not trusted and runs again. */
  readonly lagToleranceMs: number;
}

/** What every check of one `describe…Conformance` call shares. */
export interface ConformanceEnvironment {
  readonly create: () => Promise<Backend>;
  readonly destroy: (backend: Backend) => Promise<void>;
  readonly createPeer: (backend: Backend) => Promise<Backend>;
  /**
   * True when the options give a `createPeer`: only then is a peer a second handle that
   * outlives closing the first (without it, the peer is the backend itself).
   */
  readonly hasPeer: boolean;
  readonly capabilities: BackendCapabilities;
  /** True when the backend implements the lock methods itself. */
  readonly ownLocks: boolean;
  /** The lock methods the probe backend has (for the "all or none" check). */
  readonly lockMethods: readonly string[];
  /** The optional data methods (`clear`, `keys`, `has`, `compareAndSet`) the probe backend has. */
  readonly dataMethods: readonly OptionalDataMethod[];
  readonly keyMangler: KeyMangler | undefined;
  readonly timings: Timings;
  readonly groups: readonly ConformanceGroup[];
  /** {@link ConformanceOptions.maxEntries}: the entry bound eviction is checked at, if any. */
  readonly maxEntries: number | undefined;
  /** The `faults` option, resolved; undefined when it is absent or the group is not selected. */
  readonly faults: FaultEnvironment | undefined;
}

/**
 * Builds one backend from `create` to read its capabilities and measure a round trip, then
 * destroys it. Runs inside an async `describe`, so a failing `create` fails the suite loudly.
 */
export async function probeEnvironment(options: ConformanceOptions<Backend>): Promise<ConformanceEnvironment> {
  if (typeof options !== 'object' || options === null || typeof options.create !== 'function') {
    throw new TypeError('describeBackendConformance: options.create must be a function that builds a fresh backend.');
  }
  const create = async (): Promise<Backend> => {
    const backend = await options.create();
    if (typeof backend !== 'object' || backend === null) throw new TypeError(`create() returned ${String(backend)}, not a backend.`);
    return backend;
  };
  const destroy = async (backend: Backend): Promise<void> => {
    await options.destroy?.(backend);
  };
  const createPeer = async (backend: Backend): Promise<Backend> =>
    options.createPeer === undefined ? backend : options.createPeer(backend);
  const groups = selectGroups(options.only);

  const probe = await create();
  let roundTripMs = 0;
  try {
    for (let i = 0; i < 5; i++) {
      const startedAt = performance.now();
      await probe.get(`latchkey-conformance-probe-${i}`);
      roundTripMs = Math.max(roundTripMs, performance.now() - startedAt);
    }
  } finally {
    await destroy(probe);
    await probe.close();
  }
  const faults =
    options.faults !== undefined && groups.includes('faults') ? await resolveFaultEnvironment(options.faults, destroy) : undefined;
  const capabilities = Object.freeze({ ...probe.capabilities });
  const lockMethods = (['acquireLock', 'releaseLock', 'extendLock'] as const).filter((method) => typeof probe[method] === 'function');
  return {
    create,
    destroy,
    createPeer,
    hasPeer: options.createPeer !== undefined,
    capabilities,
    ownLocks: hasOwnLocks(probe),
    lockMethods,
    dataMethods: (['clear', 'keys', 'has', 'compareAndSet'] as const).filter((method) => hasDataMethod(probe, method)),
    keyMangler: probe.keyMangler,
    timings: deriveTimings(capabilities, options, roundTripMs, faults),
    groups,
    maxEntries: checkMaxEntries(options.maxEntries),
    faults,
  };
}

function checkMaxEntries(maxEntries: unknown): number | undefined {
  if (maxEntries === undefined) return undefined;
  if (typeof maxEntries !== 'number' || !Number.isInteger(maxEntries) || maxEntries < 3) {
    throw new TypeError(`describeBackendConformance: options.maxEntries must be an integer >= 3, got ${String(maxEntries)}.`);
  }
  return maxEntries;
}

function selectGroups(only: readonly ConformanceGroup[] | undefined): readonly ConformanceGroup[] {
  if (only === undefined) return CONFORMANCE_GROUPS;
  for (const group of only) {
    if (!CONFORMANCE_GROUPS.includes(group)) {
      throw new TypeError(`Unknown conformance group "${String(group)}"; the groups are ${CONFORMANCE_GROUPS.join(', ')}.`);
    }
  }
  return CONFORMANCE_GROUPS.filter((group) => only.includes(group));
}

function deriveTimings(
  capabilities: BackendCapabilities,
  options: ConformanceOptions<Backend>,
  roundTripMs: number,
  faults: FaultEnvironment | undefined,
): Timings {
  const minLeaseMs = positive(capabilities.minLeaseMs, 1);
  const resolutionMs = positive(capabilities.ttlResolutionMs, 1);
  const leaseMs = Math.max(options.leaseMs ?? 300, minLeaseMs);
  const slackMs = options.slackMs ?? 50;
  const rounded = Math.ceil(roundTripMs);
  return {
    leaseMs,
    safetyMs: Math.max(10, Math.min(100, Math.floor(leaseMs / 6))),
    shortTtlMs: 150,
    backendTtlMs: Math.max(200, resolutionMs),
    expiryGraceMs: 2 * resolutionMs + 4 * rounded + 250,
    promptMs: 50 + 2 * rounded + slackMs,
    roundTripMs: rounded,
    testTimeoutMs: options.testTimeoutMs ?? Math.max(20_000 + 20 * leaseMs + 10 * resolutionMs, faults?.checkTimeLimitMs ?? 0),
    concurrency: Math.max(1, Math.floor(options.concurrency ?? 1)),
    lagToleranceMs: 50,
  };
}

function positive(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : fallback;
}
