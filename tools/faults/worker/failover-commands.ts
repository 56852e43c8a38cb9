/**
 * The commands of a failover worker: one process runs locked read-increment-write loops with
 * three lock implementations side by side over the same replicated Redis — latchkey's
 * `RedisBackend` as it comes (`default`), with `lockReplication` (`replicated`), and redlock —
 * and records every hold, so the test process can look for overlapping holds, fencing tokens
 * that went backwards and acknowledged writes that were lost.
 *
 * @module
 */
import { KeyValueStore, LatchkeyError, NotFoundError, type Backend, type KeyValueStoreLock } from '@latchkey/core';
import { Cluster, Redis } from 'ioredis';
import Redlock, { type Lock } from 'redlock';
import type { CloseReport } from './commands.js';
import { epochNow, outcomeOf, sleep, type Outcome } from './outcome.js';
import { unhandledRejections } from './serve.js';

/** The lock implementations compared. */
export type FailoverMode = 'default' | 'replicated' | 'redlock';

/** Every mode, in report order. */
export const FAILOVER_MODES: readonly FailoverMode[] = ['default', 'replicated', 'redlock'];

/** Where the replicated Redis is. */
export type Deployment =
  | { readonly kind: 'sentinel'; readonly sentinels: readonly string[]; readonly name: string; readonly replicas: number }
  | { readonly kind: 'cluster'; readonly nodes: readonly string[]; readonly replicas: number };

/** Arguments of {@link FailoverCommands.open}. */
export interface FailoverOpenArgs {
  readonly deployment: Deployment;
  /** Prefix of every key of this run; each mode adds its own part. */
  readonly namespace: string;
  /** Lease of every lock. */
  readonly leaseMs: number;
  /** The adapters' call deadline. */
  readonly operationTimeoutMs: number;
  /** `lockReplication.timeoutMs` of the replicated mode. */
  readonly replicationTimeoutMs: number;
}

/** One hold of a lock: when it was asked for, granted and let go (epoch ms), and what it wrote. */
export interface HoldRecord {
  readonly key: string;
  readonly acquireStartedAt: number;
  readonly acquiredAt: number;
  releaseStartedAt: number;
  /** The fencing token (decimal), `null` for redlock (it has none). */
  readonly fence: string | null;
  /** Acknowledged writes: the value written and when the acknowledgement came (epoch ms). */
  readonly acked: [value: number, at: number][];
  /** Writes whose outcome is unknown (a timeout, a lost connection): they may or may not have happened. */
  readonly unsure: number[];
}

/** What one mode's loops did in this process. */
export interface ModeReport {
  readonly holds: HoldRecord[];
  /** Failed steps, `<step>:<outcome>` → count. */
  readonly failures: Record<string, number>;
}

/** The commands of a failover worker. */
export interface FailoverCommands {
  open(args: FailoverOpenArgs): Promise<void>;
  /** Starts `loops` loops per mode, each picking one of that mode's keys at random for every hold. */
  start(args: { readonly keys: Readonly<Record<FailoverMode, readonly string[]>>; readonly loops: number }): Promise<void>;
  /** Stops the loops (each finishes its hold) and reports every hold. */
  stop(): Promise<Record<FailoverMode, ModeReport>>;
  /** The current value of each key of `mode` (0 when missing), retrying while the deployment settles; an outcome when it never answered. */
  read(args: { readonly mode: FailoverMode; readonly keys: readonly string[] }): Promise<(number | Outcome)[]>;
  close(): Promise<CloseReport>;
}

/** Increments made under one hold. */
const WRITES_PER_HOLD = 2;
/** How long an acquire waits for the lock. */
const WAIT_MS = 3_000;

interface Held {
  readonly fence: string | null;
  /** The locked write: `true` when acknowledged, `false` when refused (the lock is gone); throws when unknown. */
  write(value: number): Promise<boolean>;
  release(): Promise<void>;
}

interface Contender {
  acquire(key: string): Promise<Held>;
  read(key: string): Promise<number>;
  close(): Promise<void>;
}

async function latchkeyContender(args: FailoverOpenArgs, mode: 'default' | 'replicated'): Promise<Contender> {
  const { deployment } = args;
  const connection =
    deployment.kind === 'sentinel'
      ? {
          sentinel: {
            sentinels: deployment.sentinels.map((address) => ({ host: '127.0.0.1', port: Number(address.split(':')[1]) })),
            name: deployment.name,
          },
        }
      : { cluster: { nodes: [...deployment.nodes] } };
  // A computed specifier: the fault suite typechecks without the adapters' builds.
  const specifier: string = '@latchkey/redis';
  const { RedisBackend } = (await import(specifier)) as { RedisBackend: new (options: Record<string, unknown>) => Backend };
  const backend = new RedisBackend({
    ...connection,
    keyPrefix: `${args.namespace}-${mode}:`,
    operationTimeoutMs: args.operationTimeoutMs,
    ...(mode === 'replicated' ? { lockReplication: { replicas: deployment.replicas, timeoutMs: args.replicationTimeoutMs } } : {}),
  });
  const store = new KeyValueStore(`failover-${process.pid}-${mode}`);
  await store.configure(backend, {
    lockTimeoutMs: args.leaseMs,
    lockSafetyWindowMs: 200,
    lockWaitMs: WAIT_MS,
    operationTimeoutMs: args.operationTimeoutMs + 1_000,
  });
  return {
    async acquire(key) {
      const lock: KeyValueStoreLock = store.getLock(key);
      await lock.acquire({ waitMs: WAIT_MS });
      return {
        fence: String(lock.fencingToken),
        async write(value) {
          try {
            await store.set(key, value, { lock });
            return true;
          } catch (error) {
            if (error instanceof LatchkeyError && (error.code === 'LOCK_TIMEOUT' || error.code === 'LOCK_NOT_ACTIVE')) return false;
            throw error;
          }
        },
        release: () => lock.release(),
      };
    },
    async read(key) {
      try {
        return await store.get<number>(key);
      } catch (error) {
        if (error instanceof NotFoundError) return 0;
        throw error;
      }
    },
    close: () => store.close(),
  };
}

/**
 * redlock over one client of the deployment (the single-instance use of redlock that a
 * Sentinel or Cluster user has), writing with a plain `SET` after checking its lock's expiry,
 * as its users do. Lock and data key share a hash tag, so on a Cluster they live on one shard.
 */
function redlockContender(args: FailoverOpenArgs): Contender {
  const { deployment } = args;
  const clientOptions = { maxRetriesPerRequest: 1, enableOfflineQueue: true };
  const client =
    deployment.kind === 'sentinel'
      ? new Redis({
          sentinels: deployment.sentinels.map((address) => ({ host: '127.0.0.1', port: Number(address.split(':')[1]) })),
          name: deployment.name,
          ...clientOptions,
        })
      : new Cluster(
          deployment.nodes.map((node) => ({ host: '127.0.0.1', port: Number(node.split(':')[1]) })),
          { redisOptions: clientOptions },
        );
  // Connection errors surface as failed calls; the client's own error events are expected during failovers.
  client.on('error', () => undefined);
  const redlock = new Redlock([client], { retryDelay: 10, retryJitter: 10, driftFactor: 0.01 });
  redlock.on('error', () => undefined);
  const prefix = `${args.namespace}-redlock`;
  const dataKey = (key: string): string => `${prefix}:data:{${key}}`;
  return {
    async acquire(key) {
      const lock: Lock = await redlock.acquire([`${prefix}:lock:{${key}}`], args.leaseMs, { retryCount: Math.ceil(WAIT_MS / 15) });
      return {
        fence: null,
        async write(value) {
          if (Date.now() >= lock.expiration) return false;
          await client.set(dataKey(key), String(value));
          return true;
        },
        release: async () => {
          await lock.release();
        },
      };
    },
    async read(key) {
      return Number((await client.get(dataKey(key))) ?? '0');
    },
    async close() {
      await client.quit().catch(() => client.disconnect());
    },
  };
}

/** Creates the commands of one failover worker process. */
export function createFailoverCommands(): FailoverCommands {
  let contenders: Record<FailoverMode, Contender> | undefined;
  let running: { stop: boolean; loops: Promise<void>[]; reports: Record<FailoverMode, ModeReport> } | undefined;
  const current = (): Record<FailoverMode, Contender> => {
    if (contenders === undefined) throw new Error('failover worker: open() first');
    return contenders;
  };

  const loop = async (mode: FailoverMode, keys: readonly string[], state: NonNullable<typeof running>): Promise<void> => {
    const contender = current()[mode];
    const report = state.reports[mode];
    const fail = (step: string, error: unknown): void => {
      const bucket = `${step}:${outcomeOf(error)}`;
      report.failures[bucket] = (report.failures[bucket] ?? 0) + 1;
    };
    while (!state.stop) {
      const key = keys[Math.floor(Math.random() * keys.length)] as string;
      const acquireStartedAt = epochNow();
      let held: Held;
      try {
        held = await contender.acquire(key);
      } catch (error) {
        fail('acquire', error);
        await sleep(25);
        continue;
      }
      const hold: HoldRecord = {
        key,
        acquireStartedAt,
        acquiredAt: epochNow(),
        releaseStartedAt: Number.NaN,
        fence: held.fence,
        acked: [],
        unsure: [],
      };
      let step = 'read';
      try {
        let value = await contender.read(key);
        step = 'write';
        for (let i = 0; i < WRITES_PER_HOLD; i++) {
          value += 1;
          let acknowledged: boolean;
          try {
            acknowledged = await held.write(value);
          } catch (error) {
            hold.unsure.push(value);
            throw error;
          }
          if (!acknowledged) break;
          hold.acked.push([value, epochNow()]);
        }
      } catch (error) {
        fail(step, error);
      }
      hold.releaseStartedAt = epochNow();
      await held.release().catch((error: unknown) => fail('release', error));
      report.holds.push(hold);
    }
  };

  return {
    async open(args) {
      if (contenders !== undefined) throw new Error('failover worker: already open');
      contenders = {
        default: await latchkeyContender(args, 'default'),
        replicated: await latchkeyContender(args, 'replicated'),
        redlock: redlockContender(args),
      };
    },

    async start({ keys, loops }) {
      if (running !== undefined) throw new Error('failover worker: already running');
      const state = {
        stop: false,
        loops: [] as Promise<void>[],
        reports: { default: { holds: [], failures: {} }, replicated: { holds: [], failures: {} }, redlock: { holds: [], failures: {} } },
      };
      running = state;
      for (const mode of FAILOVER_MODES) for (let i = 0; i < loops; i++) state.loops.push(loop(mode, keys[mode], state));
    },

    async stop() {
      const state = running;
      if (state === undefined) throw new Error('failover worker: not running');
      state.stop = true;
      await Promise.all(state.loops);
      running = undefined;
      return state.reports;
    },

    async read({ mode, keys }) {
      const contender = current()[mode];
      const values: (number | Outcome)[] = [];
      for (const key of keys) {
        const until = performance.now() + 30_000;
        let value: number | Outcome;
        for (;;) {
          try {
            value = await contender.read(key);
            break;
          } catch (error) {
            value = outcomeOf(error);
            if (performance.now() > until) break;
            await sleep(100);
          }
        }
        values.push(value);
      }
      return values;
    },

    async close() {
      if (contenders !== undefined) await Promise.all(Object.values(contenders).map((contender) => contender.close()));
      contenders = undefined;
      return { unhandledRejections: unhandledRejections(), resources: [] };
    },
  };
}
