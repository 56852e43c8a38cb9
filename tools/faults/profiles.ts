/**
 * How hard each scenario pushes each backend. The defaults keep the whole suite within a few
 * minutes on a 2-core CI machine; `LATCHKEY_FAULTS_FULL=1` runs the full counts (the
 * targets the suite was built to, and more repetitions). docs/FAULT-TESTS.md lists both.
 *
 * @module
 */
import type { BackendKind } from './backends.js';

/** Whether the full counts were asked for (`LATCHKEY_FAULTS_FULL=1`). */
export const FULL = process.env['LATCHKEY_FAULTS_FULL'] === '1' || process.env['LATCHKEY_FAULTS_FULL'] === 'true';

/** Scenario sizes for one backend. */
export interface FaultProfile {
  /** Worker processes (in-process stores for memory). */
  readonly processes: number;
  /** Concurrent workers per process in the contention scenario. */
  readonly workersPerProcess: number;
  /** Lock-protected increments per contention run (full target: 1,000). */
  readonly increments: number;
  /** Contention runs; each must end at exactly {@link increments}. */
  readonly contentionRuns: number;
  /** Concurrent waiters in the waiter scenario (full target: 128). */
  readonly waiters: number;
  /** Increments the waiters share (full target: 2,000). */
  readonly waiterIncrements: number;
  /** How long each waiter waits for the lock. */
  readonly waiterWaitMs: number;
  /** Preferred short lease for paused-holder, crash and lock-lost scenarios (raised to the backend's minimum). */
  readonly leaseMs: number;
  /** Safety window of those short leases. */
  readonly safetyWindowMs: number;
  /** Paused-holder freezes; each freeze covers `pausedTrials / pausedRounds` keys. */
  readonly pausedRounds: number;
  /** Paused-holder trials (full target: 100). */
  readonly pausedTrials: number;
  /** Holder-crash trials. */
  readonly crashTrials: number;
  /** Lease of the crashing holder (raised to the backend's minimum). */
  readonly crashLeaseMs: number;
  /** Allowed delay after the lease for a waiter to take a crashed holder's lock (target: 1 s; memcached 2 s). */
  readonly crashSlackMs: number;
  /** Redis `appendonly yes` kill -9 runs (full target: 10). */
  readonly aofRuns: number;
  /** Aborted acquires (full target: 1,000). */
  readonly abortTrials: number;
  /** Abort trials running at once. */
  readonly abortConcurrency: number;
  /** Generated malformed keys and values (full target: at least 500). */
  readonly badInputs: number;
  /** Model-based runs (random command sequences). */
  readonly modelRuns: number;
  /** Adapter deadline of each call in the server and network fault scenarios. */
  readonly operationTimeoutMs: number;
}

const BASE: FaultProfile = {
  processes: 4,
  workersPerProcess: 4,
  increments: 1000,
  contentionRuns: FULL ? 10 : 3,
  waiters: 128,
  waiterIncrements: 2000,
  waiterWaitMs: 10_000,
  leaseMs: 300,
  safetyWindowMs: 50,
  pausedRounds: FULL ? 100 : 10,
  pausedTrials: 100,
  crashTrials: FULL ? 10 : 3,
  crashLeaseMs: 500,
  crashSlackMs: 1000,
  aofRuns: 10,
  abortTrials: 1000,
  abortConcurrency: 20,
  badInputs: 600,
  modelRuns: FULL ? 200 : 40,
  operationTimeoutMs: 1000,
};

const OVERRIDES: Record<BackendKind, Partial<FaultProfile>> = {
  memory: { contentionRuns: FULL ? 20 : 5, modelRuns: FULL ? 200 : 60 },
  redis: {},
  // Leases of at least 2 s (whole-second TTLs): fewer freezes by default, each covering more keys.
  memcached: { pausedRounds: FULL ? 100 : 4, crashTrials: FULL ? 10 : 2, crashSlackMs: 2000, contentionRuns: FULL ? 10 : 2 },
  // The CI server is FerretDB over SQLite, one command at a time (~60 locked increments/s):
  // one contention run and 250 aborts by default, longer waits for the 128 waiters, and 1 s
  // leases (a 300 ms lease can lapse between acquire and the first write on a loaded machine),
  // and a 2 s deadline in the server and network fault scenarios.
  mongo: {
    contentionRuns: FULL ? 10 : 1,
    waiterWaitMs: 30_000,
    leaseMs: 1000,
    crashLeaseMs: 1000,
    abortTrials: FULL ? 1000 : 250,
    operationTimeoutMs: 2000,
    abortConcurrency: 5,
    modelRuns: FULL ? 200 : 25,
  },
  // One file shared by the worker processes: every lock step is a write transaction on it.
  sqlite: {},
  postgres: {},
};

/** The profile of `kind`. */
export function profileFor(kind: BackendKind): FaultProfile {
  return { ...BASE, ...OVERRIDES[kind] };
}

/** Splits `total` into `parts` near-equal whole shares (the first ones one larger). */
export function share(total: number, parts: number): number[] {
  const base = Math.floor(total / parts);
  const extra = total % parts;
  return Array.from({ length: parts }, (_, i) => base + (i < extra ? 1 : 0));
}
