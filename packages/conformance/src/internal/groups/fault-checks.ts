/**
 * The `faults` group: network faults between the backend and its server, through the suite's
 * own TCP proxy. Every call must settle within the backend's declared deadline plus a margin
 * derived from what this path measures, rejecting with a typed error, and the backend must
 * work again soon after the fault is lifted.
 */
import { BackendTimeoutError, BackendUnavailableError, type Backend, type Lease } from '@latchkey/core';
import { expect } from 'vitest';
import type { TcpFaultProxy } from '../../tcp-fault-proxy.js';
import type { ConformanceEnvironment } from '../environment.js';
import { lagSince } from '../event-loop-lag.js';
import { describeError } from '../expect-error.js';
import { defaultRecoveryMs, HANG_GRACE_MS, type FaultEnvironment } from '../fault-environment.js';
import { FaultRun, outcomeText } from '../fault-run.js';
import { checksFor } from '../register.js';
import { since, settleWithin, type Settled } from '../timing.js';

/** A network fault: how it starts and how it is lifted. */
interface Fault {
  readonly name: string;
  readonly title: string;
  start(proxy: TcpFaultProxy): Promise<void>;
  lift(proxy: TcpFaultProxy): Promise<void>;
}

const FAULTS: readonly Fault[] = [
  {
    name: 'pause',
    title: 'pause: the open connections carry nothing either way, then deliver what they held',
    start: (proxy) => proxy.setMode({ kind: 'blackhole' }),
    lift: (proxy) => proxy.setMode({ kind: 'pass' }),
  },
  {
    name: 'black hole',
    title: 'black hole: nothing gets through, and the connections open during it are dead when it lifts',
    start: (proxy) => proxy.setMode({ kind: 'blackhole' }),
    lift: async (proxy) => {
      proxy.resetConnections();
      await proxy.setMode({ kind: 'pass' });
    },
  },
  {
    name: 'reset',
    title: 'reset: every open connection and every new one is reset',
    start: (proxy) => proxy.setMode({ kind: 'reset' }),
    lift: (proxy) => proxy.setMode({ kind: 'pass' }),
  },
  {
    name: 'refused',
    title: 'refused: the open connections are reset and nothing listens',
    start: (proxy) => proxy.setMode({ kind: 'refuse' }),
    lift: (proxy) => proxy.setMode({ kind: 'pass' }),
  },
];

/** What a call under test may use, prepared before the fault. */
interface CallContext {
  readonly backend: Backend;
  readonly run: FaultRun;
  /** A lease held before the fault (lock calls that need one). */
  readonly lease: Lease | undefined;
  readonly leaseMs: number;
}

/** One backend call put under a fault. */
interface FaultCall {
  readonly name: string;
  /** True for the optional lock methods. */
  readonly lock: boolean;
  /** True when the call needs a lease taken before the fault. */
  readonly needsLease: boolean;
  invoke(context: CallContext): Promise<unknown>;
}

const value = (text: string): Uint8Array => new TextEncoder().encode(text);

const CALLS: readonly FaultCall[] = [
  { name: 'get', lock: false, needsLease: false, invoke: ({ backend, run }) => backend.get(run.key('get')) },
  {
    name: 'getMany',
    lock: false,
    needsLease: false,
    invoke: ({ backend, run }) => backend.getMany([run.key('get-many-1'), run.key('get-many-2')]),
  },
  { name: 'set', lock: false, needsLease: false, invoke: ({ backend, run }) => backend.set(run.key('set'), value('during the fault')) },
  {
    name: 'setMany',
    lock: false,
    needsLease: false,
    invoke: ({ backend, run }) =>
      backend.setMany([
        [run.key('set-many-1'), value('one')],
        [run.key('set-many-2'), value('two')],
      ]),
  },
  { name: 'delete', lock: false, needsLease: false, invoke: ({ backend, run }) => backend.delete(run.key('delete')) },
  {
    name: 'deleteMany',
    lock: false,
    needsLease: false,
    invoke: ({ backend, run }) => backend.deleteMany([run.key('delete-many-1'), run.key('delete-many-2')]),
  },
  {
    name: 'acquireLock',
    lock: true,
    needsLease: false,
    invoke: ({ backend, run, leaseMs }) => lockMethod(backend, 'acquireLock')(run.key('acquire'), { leaseMs, waitMs: 0 }),
  },
  {
    name: 'releaseLock',
    lock: true,
    needsLease: true,
    invoke: ({ backend, lease }) => lockMethod(backend, 'releaseLock')(lease as Lease),
  },
  {
    name: 'extendLock',
    lock: true,
    needsLease: true,
    invoke: ({ backend, lease, leaseMs }) => lockMethod(backend, 'extendLock')(lease as Lease, leaseMs),
  },
];

const NO_FAULTS_REASON =
  'no faults option is given (faults: { server, createThrough } puts the suite’s TCP proxy between the backend and its server)';

/** The name of the check of `call` under `fault` (stable: planted-defect self-tests match it). */
export function faultCheckName(fault: string, call: string): string {
  return `${fault}: ${call} rejects with BackendTimeoutError or BackendUnavailableError within its deadline, and a set/get round trip works again once the fault is lifted`;
}

/** Registers the `faults` group. */
export function registerFaultChecks(env: ConformanceEnvironment): void {
  const { checkUnless, section } = checksFor(env);
  const faults = env.faults;
  if (faults === undefined) {
    checkUnless(NO_FAULTS_REASON, 'every call settles with a typed error under network faults, and the backend recovers', () => undefined);
    return;
  }
  for (const fault of FAULTS) {
    section(fault.title, () => {
      for (const call of CALLS) {
        const reason = call.lock && !env.ownLocks ? 'the backend has no locks of its own' : undefined;
        checkUnless(reason, faultCheckName(fault.name, call.name), () => runFaultCheck(env, faults, fault, call));
      }
    });
  }
}

async function runFaultCheck(env: ConformanceEnvironment, faults: FaultEnvironment, fault: Fault, call: FaultCall): Promise<void> {
  const run = await FaultRun.start(faults, env.destroy);
  try {
    const roundTripMs = await run.warmUp();
    const leaseMs = Math.max(env.capabilities.minLeaseMs, 30_000);
    const lease = call.needsLease ? await acquireBeforeFault(run, leaseMs, faults.deadlineMs) : undefined;
    const boundMs = faults.deadlineMs + 2 * roundTripMs + faults.slackMs;
    const recoveryMs = faults.recoveryMs ?? defaultRecoveryMs(faults.deadlineMs, roundTripMs);
    const timings = `deadline ${faults.deadlineMs} ms (${faults.deadlineSource}), round trip through the proxy ${roundTripMs} ms, slack ${faults.slackMs} ms: bound ${boundMs} ms`;

    await fault.start(run.proxy);
    const startedAt = performance.now();
    const outcome = await settleWithin(() => call.invoke({ backend: run.backend, run, lease, leaseMs }), boundMs + HANG_GRACE_MS);
    const tookMs = since(startedAt);
    const lagMs = lagSince(startedAt);
    await fault.lift(run.proxy);
    const liftedAt = performance.now();

    const problems: string[] = [];
    const settled = `${call.name} under ${fault.name} ${outcome === 'hung' ? `had not settled after ${Math.round(tookMs)} ms` : `${outcomeText(outcome)} after ${Math.round(tookMs)} ms`}`;
    if (outcome === 'hung' || tookMs > boundMs + lagMs) {
      problems.push(`${settled}; the ${timings} (+${Math.round(lagMs)} ms of event-loop lag)`);
    } else {
      const typed = typedRejection(outcome);
      if (typed !== undefined) problems.push(`${settled}: ${typed}`);
    }
    const recovery = await run.recover(liftedAt, recoveryMs + lagSince(liftedAt));
    if (!recovery.recovered) {
      problems.push(
        `no set/get round trip succeeded within ${recoveryMs} ms of lifting the ${fault.name} (${recovery.attempts} attempts over ${Math.round(recovery.tookMs)} ms, +${Math.round(lagSince(liftedAt))} ms of event-loop lag):\n  ${recovery.failures.join('\n  ')}`,
      );
    }
    if (problems.length > 0) {
      expect.fail(
        `${problems.join('\n')}\n(${timings}; ${settled}; recovery ${recovery.recovered ? `after ${Math.round(recovery.tookMs)} ms` : 'none'})`,
      );
    }
  } finally {
    await run.dispose();
  }
}

/** Undefined when `outcome` is the rejection a fault calls for; otherwise what is wrong with it. */
function typedRejection(outcome: Settled<unknown>): string | undefined {
  if (outcome.ok) return 'nothing reached the server, so a call that resolves reports something that did not happen';
  const { error } = outcome;
  if (!(error instanceof BackendTimeoutError) && !(error instanceof BackendUnavailableError)) {
    return 'expected BackendTimeoutError or BackendUnavailableError';
  }
  // The suite cannot know whether a driver error lay behind the rejection; one that is kept
  // must be a real error, not a string or a bare object that loses its stack and name.
  if (error.cause !== undefined && !(error.cause instanceof Error)) {
    return `its cause is not an Error but ${describeError(error.cause)}`;
  }
  return undefined;
}

async function acquireBeforeFault(run: FaultRun, leaseMs: number, deadlineMs: number): Promise<Lease> {
  const acquired = await settleWithin(lockMethod(run.backend, 'acquireLock')(run.key('held'), { leaseMs, waitMs: 0 }), deadlineMs + 5000);
  if (acquired === 'hung' || !acquired.ok || acquired.value === undefined) {
    throw new Error(
      `before any fault, acquireLock of a free key ${acquired !== 'hung' && acquired.ok ? 'resolved undefined' : outcomeText(acquired)}`,
    );
  }
  return acquired.value;
}

function lockMethod<M extends 'acquireLock' | 'releaseLock' | 'extendLock'>(backend: Backend, method: M): NonNullable<Backend[M]> {
  const fn = backend[method];
  if (typeof fn !== 'function') throw new Error(`the backend built through the proxy has no ${method}, unlike the probe backend`);
  return fn.bind(backend) as NonNullable<Backend[M]>;
}
