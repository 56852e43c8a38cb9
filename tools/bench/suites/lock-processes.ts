/**
 * The cross-process lock case of the Redis suite: N worker processes (forked, each hosting
 * every contender on its own connections) × 8 waiters each contend for one lock key. The
 * harness's workers in this process hand each increment to the worker process with the
 * fewest in flight, so every process keeps exactly 8 waiters; each critical section is timed
 * in its process on the machine's monotonic clock, so hand-overs between processes can be measured.
 *
 * Commands per increment come from an untimed pass: *sent* is what the worker processes'
 * clients wrote (every ioredis command, EVALSHA included), *script-internal* is the rest of
 * the `INFO commandstats` delta (the `redis.call`s inside Lua scripts, which Redis counts
 * like commands).
 *
 * @module
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import {
  errorMessage,
  median,
  metricAtMost,
  ratioAtLeast,
  withTimeout,
  type BenchCase,
  type CaseResult,
  type Contender,
  type MetricSpec,
  type RoundMetrics,
  type Target,
} from '../harness/index.js';
import type { WorkerConfig, WorkerHello, WorkerReply, WorkerRequest } from './lock-process-worker.js';
import { LATCHKEY, REDLOCK, SEMAPHORE } from './redis-incrementers.js';

/** The name of the extra latchkey contender that `LATCHKEY_BENCH_REDIS_COMPARE_MODULE` adds. */
export const LATCHKEY_COMPARED = 'latchkey (compared build)';

/**
 * A path to another build's `index.js` of `@latchkey/redis`, run as the extra contender
 * {@link LATCHKEY_COMPARED} next to the latchkey one, so a before/after comparison pairs
 * its rounds within one run.
 */
export const COMPARE_MODULE = process.env['LATCHKEY_BENCH_REDIS_COMPARE_MODULE'];

/** Waiters in each worker process. */
export const WAITERS_PER_PROCESS = 8;
/** Worker process counts, one case each. */
export const PROCESS_COUNTS = [1, 4, 8, 16] as const;
/** Increments in the untimed counting pass. */
const COUNTING_INCREMENTS = 512;
/** How long starting or closing the worker processes may take (tsx compiles on start; 2 loaded cores). */
const START_LIMIT_MS = 120_000;

const WORKER_PATH = fileURLToPath(new URL('./lock-process-worker.ts', import.meta.url));
const CONTENDERS: readonly string[] = [LATCHKEY, ...(COMPARE_MODULE === undefined ? [] : [LATCHKEY_COMPARED]), REDLOCK, SEMAPHORE];

/** The extra columns of a cross-process case. */
export const PROCESS_METRICS: readonly MetricSpec[] = [
  { key: 'lost', label: 'lost updates', aggregate: 'sum' },
  { key: 'overlaps', label: 'overlapping sections', aggregate: 'sum' },
  { key: 'acquireFailures', label: 'failed acquisitions', aggregate: 'sum' },
  { key: 'handoffP50', label: 'handoff p50 ms', aggregate: 'median', digits: 3 },
  { key: 'crossHandoffP50', label: 'handoff to another process p50 ms', aggregate: 'median', digits: 3 },
  { key: 'crossShare', label: 'hand-overs to another process', aggregate: 'median', digits: 2 },
  { key: 'sectionP50', label: 'critical section p50 ms', aggregate: 'median', digits: 3 },
  { key: 'commandsPerOp', label: 'cmds sent / increment', aggregate: 'median', digits: 2 },
  { key: 'scriptInternalPerOp', label: 'script-internal cmds / increment', aggregate: 'median', digits: 2 },
];

/** Total `calls` in `INFO commandstats`, without the INFO calls themselves. */
export async function commandCalls(admin: Redis): Promise<number> {
  const stats = await admin.info('commandstats');
  let total = 0;
  for (const match of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (match[1] !== 'info') total += Number(match[2]);
  return total;
}

/** A request without its id (distributes over the union, unlike `Omit`). */
type WorkerRequestBody = WorkerRequest extends infer R ? (R extends WorkerRequest ? Omit<R, 'id'> : never) : never;

class WorkerProcess {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, (reply: WorkerReply) => void>();
  #next = 0;
  #exited: string | undefined;
  inFlight = 0;
  readonly ready: Promise<void>;

  constructor(index: number, config: WorkerConfig) {
    this.#child = fork(WORKER_PATH, [JSON.stringify(config)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.ready = new Promise<void>((resolve, reject) => {
      this.#child.once('message', (hello: WorkerHello) => {
        if (hello.ready) resolve();
        else reject(new Error(`worker process ${index} could not set up: ${hello.error}`));
        this.#child.on('message', (reply: WorkerReply) => {
          const settle = this.#pending.get(reply.id);
          this.#pending.delete(reply.id);
          settle?.(reply);
        });
      });
      this.#child.once('exit', (code, signal) => {
        this.#exited = `worker process ${index} exited (${signal ?? code})`;
        reject(new Error(this.#exited));
        for (const settle of this.#pending.values()) settle({ id: -1, ok: false, error: this.#exited, acquired: false });
        this.#pending.clear();
      });
    });
  }

  request(request: WorkerRequestBody): Promise<WorkerReply> {
    if (this.#exited !== undefined) return Promise.resolve({ id: -1, ok: false, error: this.#exited, acquired: false });
    const id = this.#next++;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      this.#child.send({ ...request, id } as WorkerRequest);
    });
  }

  async close(): Promise<void> {
    if (this.#exited !== undefined) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    await this.request({ type: 'close' });
    await withTimeout(exited, 10_000, 'a worker process exiting').catch(() => this.#child.kill('SIGKILL'));
  }
}

/** One critical section: monotonic ms and the process that ran it. */
interface Section {
  readonly enter: number;
  readonly exit: number;
  readonly process: number;
}

/**
 * Hand-over gaps: sections in the order they were entered, each gap the next entry minus
 * the previous exit. A gap below zero means two sections overlapped: the lock failed.
 */
function handoffs(sections: readonly Section[]): { all: number[]; cross: number[]; overlaps: number } {
  const sorted = [...sections].sort((a, b) => a.enter - b.enter);
  const all: number[] = [];
  const cross: number[] = [];
  let overlaps = 0;
  for (let i = 1; i < sorted.length; i++) {
    const previous = sorted[i - 1] as Section;
    const next = sorted[i] as Section;
    const gap = next.enter - previous.exit;
    if (gap < 0) {
      overlaps++;
      continue;
    }
    all.push(gap);
    if (next.process !== previous.process) cross.push(gap);
  }
  return { all, cross, overlaps };
}

function checked(reply: WorkerReply, what: string): number | undefined {
  if (!reply.ok) throw new Error(`${what}: ${reply.error}`);
  return reply.value;
}

function contender(name: string, workers: readonly WorkerProcess[], admin: Redis): Contender {
  const first = workers[0] as WorkerProcess;
  let sections: Section[] = [];
  let acquireFailures = 0;
  const increment = async (): Promise<void> => {
    let chosen = first;
    let index = 0;
    workers.forEach((worker, i) => {
      if (worker.inFlight < chosen.inFlight) {
        chosen = worker;
        index = i;
      }
    });
    chosen.inFlight++;
    let reply: WorkerReply;
    try {
      reply = await chosen.request({ type: 'increment', contender: name });
    } finally {
      chosen.inFlight--;
    }
    if (!reply.ok) {
      if (!reply.acquired) acquireFailures++;
      throw new Error(reply.error);
    }
    sections.push({ enter: reply.enter ?? 0, exit: reply.exit ?? 0, process: index });
  };
  const sentTotal = async (): Promise<number> => {
    const replies = await Promise.all(workers.map((worker) => worker.request({ type: 'sent' })));
    return replies.reduce((sum, reply) => sum + (checked(reply, 'counting sent commands') ?? 0), 0);
  };
  return {
    name,
    beforeRound: async () => {
      checked(await first.request({ type: 'reset', contender: name }), `resetting ${name}'s counter`);
      sections = [];
      acquireFailures = 0;
    },
    op: increment,
    afterRound: async (sample): Promise<RoundMetrics> => {
      const final = checked(await first.request({ type: 'read', contender: name }), `reading ${name}'s counter`) ?? Number.NaN;
      const gaps = handoffs(sections);
      return {
        lost: sample.ops - final,
        overlaps: gaps.overlaps,
        acquireFailures,
        handoffP50: gaps.all.length === 0 ? Number.NaN : median(gaps.all),
        crossHandoffP50: gaps.cross.length === 0 ? Number.NaN : median(gaps.cross),
        // Of all hand-overs; a lock that picks its next holder at random across N processes gives (N − 1) / N.
        crossShare: gaps.all.length === 0 ? Number.NaN : gaps.cross.length / gaps.all.length,
        // The peers read and write with plain GET/SET, latchkey with the store's get and a lease-checked write.
        sectionP50: sections.length === 0 ? Number.NaN : median(sections.map((section) => section.exit - section.enter)),
      };
    },
    probeMetrics: async () => {
      checked(await first.request({ type: 'reset', contender: name }), `resetting ${name}'s counter`);
      const sentBefore = await sentTotal();
      const allBefore = await commandCalls(admin);
      let started = 0;
      let succeeded = 0;
      const waiter = async (): Promise<void> => {
        while (started < COUNTING_INCREMENTS) {
          started++;
          // A failed increment's commands count too; the timed rounds report failures.
          await increment().then(
            () => succeeded++,
            () => undefined,
          );
        }
      };
      await Promise.all(Array.from({ length: workers.length * WAITERS_PER_PROCESS }, waiter));
      const all = (await commandCalls(admin)) - allBefore;
      const sent = (await sentTotal()) - sentBefore;
      if (succeeded === 0) throw new Error('no increment succeeded in the counting pass');
      return { commandsPerOp: sent / succeeded, scriptInternalPerOp: (all - sent) / succeeded };
    },
  };
}

/** `contender`'s `key` is at most the smallest of `others`' (for example hand-over latency). */
function metricAtMostBestOf(contenderName: string, others: readonly string[], key: string, label: string): Target {
  return {
    label,
    evaluate: (result: CaseResult) => {
      const value = (name: string): number | undefined => {
        const found = result.contenders.find((c) => c.name === name);
        return found?.opsPerSec === undefined ? undefined : found.metrics[key];
      };
      const own = value(contenderName);
      const best = Math.min(...others.map((name) => value(name) ?? Infinity));
      if (own === undefined || !Number.isFinite(best)) return undefined;
      return { pass: own <= best, actual: `${own.toFixed(3)} vs ${best.toFixed(3)}` };
    },
  };
}

/** The name of the case with `processes` worker processes. */
export function crossProcessCaseName(processes: number): string {
  return `cross-process locked increment: ${processes} processes × ${WAITERS_PER_PROCESS} waiters`;
}

/** One case per entry of {@link PROCESS_COUNTS}, all on the server at `url`. */
export function crossProcessLockCases(url: string, admin: Redis): BenchCase[] {
  return PROCESS_COUNTS.map((processes): BenchCase => {
    const targets: Target[] = [
      metricAtMost(LATCHKEY, 'lost', 0, 'latchkey: 0 lost updates'),
      metricAtMost(LATCHKEY, 'overlaps', 0, 'latchkey: no overlapping critical sections'),
      metricAtMostBestOf(LATCHKEY, [REDLOCK, SEMAPHORE], 'crossHandoffP50', 'latchkey: hand-over to another process p50 ≤ the best peer'),
    ];
    if (processes === 16) targets.push(metricAtMost(LATCHKEY, 'commandsPerOp', 6, 'latchkey: ≤ 6 commands sent per increment'));
    if (processes === 4) targets.push(ratioAtLeast(LATCHKEY, REDLOCK, 1), ratioAtLeast(LATCHKEY, SEMAPHORE, 1));
    return {
      name: crossProcessCaseName(processes),
      description:
        `${processes} worker processes with ${WAITERS_PER_PROCESS} waiters each take one lock, read a counter, write it + 1 and release; ops/s = increments/s over all processes; ` +
        '*handoff* = one holder leaving the critical section → the next one entering it (on one monotonic clock across processes), *to another process* = only those where the next holder is in another process; ' +
        '*overlapping sections* = sections that began before the previous one ended (must be 0); ' +
        `commands per successful increment from an untimed pass of ${COUNTING_INCREMENTS} increments (*sent*: what the worker processes' ioredis clients wrote; *script-internal*: the rest of the \`INFO commandstats\` delta, i.e. the \`redis.call\`s inside Lua scripts)`,
      baseline: LATCHKEY,
      concurrency: processes * WAITERS_PER_PROCESS,
      fixedConcurrency: true,
      timing: { rounds: 3, roundMs: 1_500, warmupMs: 400 },
      metrics: PROCESS_METRICS,
      targets,
      setup: async () => {
        const config: WorkerConfig = { url, keyPrefix: 'bench:lkx:', scope: 'processes:' };
        const workers = Array.from({ length: processes }, (_, index) => new WorkerProcess(index, config));
        const closeAll = async (): Promise<void> => {
          await Promise.all(workers.map((worker) => worker.close().catch(() => undefined)));
        };
        try {
          await withTimeout(Promise.all(workers.map((worker) => worker.ready)), START_LIMIT_MS, `starting ${processes} worker processes`);
        } catch (error) {
          await closeAll();
          throw new Error(errorMessage(error), { cause: error });
        }
        return { contenders: CONTENDERS.map((name) => contender(name, workers, admin)), teardown: closeAll };
      },
    };
  });
}
