/**
 * The comparison scenarios: the fault suite's contention, paused-holder, lock-lost and
 * holder-crash scenarios run against latchkey's Redis backend and the libraries a Redis user
 * would pick instead, each library in its own worker processes against one dedicated Redis.
 *
 * @module
 */
import { fileURLToPath } from 'node:url';
import { redisCommand } from '@latchkey/test-servers';
import { ForkedWorker } from '../cluster.js';
import { share } from '../profiles.js';
import { hostPort } from '../servers.js';
import { median } from '../stats.js';
import { epochNow, sleep } from '../worker/outcome.js';
import type { CompareCommands } from './commands.js';
import type { ContenderName } from './contenders.js';

const COMPARE_WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));

type CompareWorker = ForkedWorker<CompareCommands>;

/** Sizes of a comparison run. */
export interface CompareOptions {
  /** Repetitions of the contention, autoExtend-loss and crash measurements (medians are quoted). */
  readonly runs: number;
  readonly processes: number;
  readonly workersPerProcess: number;
  readonly increments: number;
  readonly pausedTrials: number;
  readonly pausedRounds: number;
  readonly leaseMs: number;
}

/** What one library did in every scenario (`undefined`: the scenario does not apply). */
export interface ComparisonResult {
  readonly contender: ContenderName;
  readonly contention: {
    readonly runs: number;
    readonly finals: number[];
    readonly lostUpdates: number[];
    readonly medianMs: number;
    readonly medianIncrementsPerSecond: number;
  };
  readonly pausedHolder?: {
    readonly trials: number;
    readonly passedOwnCheck: number;
    readonly staleWritesAccepted: number;
    readonly newerValueIntact: number;
  };
  readonly lockLost?: { readonly holderStillBelievedValid: number; readonly writesAccepted: number; readonly keys: number };
  readonly autoExtendLoss?: { readonly runs: number; readonly detected: number; readonly medianDetectionMs: number | null };
  readonly crash?: { readonly runs: number; readonly medianHandoffAfterKillMs: number; readonly leaseMs: number };
}

async function startWorkers(count: number, contender: ContenderName, url: string, namespace: string): Promise<CompareWorker[]> {
  const workers = await Promise.all(
    Array.from({ length: count }, (_, i) => ForkedWorker.start<CompareCommands>(`${contender}#${i + 1}`, COMPARE_WORKER)),
  );
  await Promise.all(workers.map((worker) => worker.call('open', { contender, url, namespace })));
  return workers;
}

async function stopWorkers(workers: readonly CompareWorker[]): Promise<void> {
  await Promise.all(workers.map((worker) => worker.shutdown().catch(() => worker.kill())));
}

async function flushAll(url: string): Promise<void> {
  const { host, port } = hostPort(url);
  const reply = await redisCommand(host, port, 'FLUSHALL');
  if (!reply.startsWith('+OK')) throw new Error(`FLUSHALL answered ${reply}`);
}

/** Runs every scenario against `contender` on the Redis at `url`. */
export async function compareContender(contender: ContenderName, url: string, options: CompareOptions): Promise<ComparisonResult> {
  const namespace = `cmp_${contender}_${Date.now().toString(36)}`;
  const workers = await startWorkers(options.processes, contender, url, namespace);
  try {
    const [first, second] = workers as [CompareWorker, CompareWorker];
    const hasLocks = contender !== 'keyv';

    const finals: number[] = [];
    const durations: number[] = [];
    const perProcess = share(options.increments, options.processes);
    for (let run = 0; run < options.runs; run += 1) {
      const key = `contention:${run}`;
      const started = performance.now();
      await Promise.all(
        workers.map((worker, i) =>
          worker.call('increment', { key, perWorker: share(perProcess[i] as number, options.workersPerProcess), waitMs: 60_000 }),
        ),
      );
      durations.push(performance.now() - started);
      const [value] = await first.call('read', { keys: [key] });
      finals.push(Number(value ?? '0'));
    }
    const contention = {
      runs: options.runs,
      finals,
      lostUpdates: finals.map((final) => options.increments - final),
      medianMs: Math.round(median(durations)),
      medianIncrementsPerSecond: Math.round(options.increments / (median(durations) / 1000)),
    };
    if (!hasLocks) return { contender, contention };

    // Paused holder: the holder checks its lock, is frozen past the lease, then writes.
    const perRound = share(options.pausedTrials, options.pausedRounds);
    let trial = 0;
    let passedOwnCheck = 0;
    let staleWritesAccepted = 0;
    let newerValueIntact = 0;
    for (let round = 0; round < options.pausedRounds; round += 1) {
      const keys = Array.from({ length: perRound[round] as number }, () => `paused:${trial++}`);
      await first.call('hold', { keys, value: `old-${round}`, leaseMs: options.leaseMs, waitMs: 5000 });
      passedOwnCheck += (await first.call('check', { keys })).filter(Boolean).length;
      await first.freeze(options.leaseMs + 50 + Math.round(Math.random() * 200), async () => {
        await second.call('hold', { keys, value: `new-${round}`, leaseMs: 5000, waitMs: options.leaseMs * 3 + 5000 });
        await second.call('release', { keys });
      });
      staleWritesAccepted += (await first.call('writeAfterCheck', { keys, value: `late-${round}` })).filter((v) => v === 'accepted').length;
      await first.call('release', { keys });
      newerValueIntact += (await second.call('read', { keys })).filter((v) => v === `new-${round}`).length;
    }

    // Lock lost on the server: FLUSHALL while a long lease is held, then the normal locked write.
    const lostKeys = ['lost:1', 'lost:2', 'lost:3'];
    await first.call('hold', { keys: lostKeys, value: 'before', leaseMs: 30_000, waitMs: 5000 });
    await flushAll(url);
    const stillValid = (await first.call('check', { keys: lostKeys })).filter(Boolean).length;
    const writesAccepted = (await first.call('write', { keys: lostKeys, value: 'after' })).filter((v) => v === 'accepted').length;
    await first.call('release', { keys: lostKeys });

    // The same loss while the library keeps the lock alive: how soon does it tell the holder?
    const detections: number[] = [];
    for (let run = 0; run < options.runs; run += 1) {
      const key = `auto:${run}`;
      await first.call('hold', { keys: [key], value: 'v', leaseMs: 3000, waitMs: 5000, autoExtend: true });
      await sleep(1100);
      const lostAt = epochNow();
      await flushAll(url);
      let detectedAt: number | null = null;
      while (detectedAt === null && epochNow() - lostAt < 6000) {
        await sleep(25);
        [detectedAt = null] = await first.call('lost', { keys: [key] });
      }
      if (detectedAt !== null) detections.push(detectedAt - lostAt);
      await first.call('release', { keys: [key] });
    }

    // Holder crash: kill -9 while holding; a waiter already queued takes over.
    const handoffs: number[] = [];
    const crashLease = 500;
    for (let run = 0; run < options.runs; run += 1) {
      const [victim] = await startWorkers(1, contender, url, namespace);
      const key = `crash:${run}`;
      await (victim as CompareWorker).call('hold', { keys: [key], value: 'victim', leaseMs: crashLease, waitMs: 5000 });
      const waiting = second.call('hold', { keys: [key], value: 'waiter', leaseMs: 5000, waitMs: 15_000 });
      await sleep(50);
      const killedAt = epochNow();
      await (victim as CompareWorker).crash();
      const { acquiredAt } = await waiting;
      handoffs.push((acquiredAt[0] as number) - killedAt);
      await second.call('release', { keys: [key] });
    }

    return {
      contender,
      contention,
      pausedHolder: { trials: options.pausedTrials, passedOwnCheck, staleWritesAccepted, newerValueIntact },
      lockLost: { keys: lostKeys.length, holderStillBelievedValid: stillValid, writesAccepted },
      autoExtendLoss: {
        runs: options.runs,
        detected: detections.length,
        medianDetectionMs: detections.length === 0 ? null : Math.round(median(detections)),
      },
      crash: { runs: options.runs, medianHandoffAfterKillMs: Math.round(median(handoffs)), leaseMs: crashLease },
    };
  } finally {
    await stopWorkers(workers);
  }
}
