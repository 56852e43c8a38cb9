/**
 * What the diagnostics-channel instrumentation costs a store call: `get` on a
 * `KeyValueStore` over `MemoryBackend`, the built `@latchkey/core` against the same package
 * built from an earlier commit (before the instrumentation), nobody subscribed; then the same
 * with a no-op subscriber; and the `hasSubscribers` check alone.
 *
 *   npm run build && npx tsx tools/bench/tracing-overhead.ts --before <commit> [--processes N] [--rounds N] [--ops N]
 *
 * `--before` names the commit to compare with: its packages/core is extracted with
 * `git archive` into the system's temp folder and built there once (it uses this checkout's
 * node_modules). Each process (default 3) builds a store on each core, warms both, and runs
 * `--rounds` (40) rounds of `--ops` (25 000) awaited gets on each, alternating which goes first;
 * processes alternate which store is built first. Rounds are timed on process CPU time, so time
 * spent descheduled on a busy machine does not count. Printed per mode: each core's
 * 10th-percentile round (median over processes) and their difference, each core's median round,
 * and the median, quartiles and per-process medians of the paired differences (after − before).
 *
 * @module
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type * as LatchkeyCore from '@latchkey/core';

type Core = typeof LatchkeyCore;

const root = resolve(fileURLToPath(import.meta.url), '../../..');
const currentCore = join(root, 'packages/core/dist/index.js');

interface Args {
  readonly before: string | undefined;
  readonly processes: number;
  readonly rounds: number;
  readonly ops: number;
  readonly child: string | undefined;
  readonly beforeCore: string | undefined;
  /** In a child: which core's store is built and warmed first (alternated between processes). */
  readonly afterFirst: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const value = (name: string): string | undefined => {
    const index = argv.indexOf(name);
    return index === -1 ? undefined : argv[index + 1];
  };
  const count = (name: string, fallback: number): number => {
    const given = value(name);
    const parsed = given === undefined ? fallback : Number(given);
    if (!Number.isInteger(parsed) || parsed <= 0) throw new Error(`${name} must be a positive integer, got ${given}`);
    return parsed;
  };
  return {
    before: value('--before'),
    processes: count('--processes', 3),
    rounds: count('--rounds', 40),
    ops: count('--ops', 25_000),
    child: value('--child'),
    beforeCore: value('--before-core'),
    afterFirst: argv.includes('--after-first'),
  };
}

/** Extracts and builds packages/core of `revision` once; returns its dist entry. */
function buildBefore(revision: string): string {
  const commit = execFileSync('git', ['rev-parse', '--verify', `${revision}^{commit}`], { cwd: root, encoding: 'utf8' }).trim();
  const dir = join(tmpdir(), `latchkey-core-${commit.slice(0, 12)}`);
  const entry = join(dir, 'packages/core/dist/index.js');
  if (existsSync(entry)) return entry;
  mkdirSync(dir, { recursive: true });
  const archive = execFileSync('git', ['archive', commit, 'packages/core', 'tsconfig.base.json'], { cwd: root });
  execFileSync('tar', ['-x', '-C', dir], { input: archive });
  if (!existsSync(join(dir, 'node_modules'))) symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  execFileSync(join(root, 'node_modules/.bin/tsc'), ['-b', 'tsconfig.build.json'], { cwd: join(dir, 'packages/core'), stdio: 'inherit' });
  return entry;
}

/** A function running `ops` awaited `store.get`s that returns their CPU time in ns per call. */
async function storeOverMemory(core: Core): Promise<(ops: number) => Promise<number>> {
  const { MemoryBackend } = await import('@latchkey/memory');
  const store = new core.KeyValueStore(`tracing-overhead-${Math.random()}`);
  await store.configure(new MemoryBackend());
  await store.set('k', { id: 42, name: 'a small record' });
  return async (ops) => {
    // Process CPU time, not wall time: time the process sat descheduled on a busy machine does not count.
    const started = process.cpuUsage();
    for (let i = 0; i < ops; i += 1) await store.get('k');
    const { user, system } = process.cpuUsage(started);
    return ((user + system) * 1000) / ops;
  };
}

interface ChildResult {
  readonly before: number[];
  readonly after: number[];
  readonly checkNs?: number;
  readonly loopNs?: number;
}

async function child(mode: string, beforeCore: string, afterFirst: boolean, rounds: number, ops: number): Promise<ChildResult> {
  const before = (await import(pathToFileURL(beforeCore).href)) as Core;
  const after = (await import(pathToFileURL(currentCore).href)) as Core;
  const subscriber = { asyncEnd: () => undefined };
  if (mode === 'subscribed') after.storeOperationChannel.subscribe(subscriber);
  // Which store is built and optimised first can shift a process's figures; processes alternate it.
  const [runFirst, runSecond] = afterFirst
    ? [await storeOverMemory(after), await storeOverMemory(before)]
    : [await storeOverMemory(before), await storeOverMemory(after)];
  const [runBefore, runAfter] = afterFirst ? [runSecond, runFirst] : [runFirst, runSecond];
  await runFirst(ops);
  await runSecond(ops);
  const result: { before: number[]; after: number[] } = { before: [], after: [] };
  for (let round = 0; round < rounds; round += 1) {
    if (round % 2 === 0) {
      result.before.push(await runBefore(ops));
      result.after.push(await runAfter(ops));
    } else {
      result.after.push(await runAfter(ops));
      result.before.push(await runBefore(ops));
    }
  }
  if (mode === 'subscribed') after.storeOperationChannel.unsubscribe(subscriber);
  if (mode !== 'unsubscribed') return result;
  return { ...result, ...checkCost(after) };
}

/** The `hasSubscribers` read alone, against the same loop reading a plain boolean. */
function checkCost(core: Core): { checkNs: number; loopNs: number } {
  const n = 20_000_000;
  const plain = { hasSubscribers: false };
  const time = (read: () => boolean): number => {
    let hits = 0;
    const started = performance.now();
    for (let i = 0; i < n; i += 1) if (read()) hits += 1;
    const ns = ((performance.now() - started) * 1e6) / n;
    if (hits !== 0) throw new Error('a check read true with nobody subscribed');
    return ns;
  };
  const channel = core.storeOperationChannel;
  time(() => channel.hasSubscribers);
  time(() => plain.hasSubscribers);
  return { checkNs: time(() => channel.hasSubscribers), loopNs: time(() => plain.hasSubscribers) };
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
};
const fixed = (value: number): string => value.toFixed(1);

function runChildren(mode: string, beforeCore: string, args: Args): ChildResult[] {
  const results: ChildResult[] = [];
  for (let index = 0; index < args.processes; index += 1) {
    const run = spawnSync(
      process.execPath,
      [
        ...process.execArgv,
        fileURLToPath(import.meta.url),
        '--child',
        mode,
        '--before-core',
        beforeCore,
        '--rounds',
        String(args.rounds),
        '--ops',
        String(args.ops),
        ...(index % 2 === 1 ? ['--after-first'] : []),
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
    );
    if (run.status !== 0) throw new Error(`the ${mode} process exited with ${run.status}`);
    results.push(JSON.parse(run.stdout) as ChildResult);
  }
  return results;
}

const quantile = (values: readonly number[], q: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
};

function report(mode: string, results: readonly ChildResult[]): void {
  const differences = results.map((result) => result.after.map((after, round) => after - (result.before[round] as number)));
  const perProcess = differences.map(median);
  const all = differences.flat();
  const before = median(results.flatMap((result) => result.before));
  const after = median(results.flatMap((result) => result.after));
  // The fastest rounds are the least disturbed: compare each core's 10th percentile too.
  const p10 = (pick: (result: ChildResult) => number[]) => median(results.map((result) => quantile(pick(result), 0.1)));
  const p10Before = p10((result) => result.before);
  const p10After = p10((result) => result.after);
  console.log(
    `${mode.padEnd(12)} 10th-percentile rounds: before ${fixed(p10Before)}, after ${fixed(p10After)} ns/get (${fixed(p10After - p10Before)} ns); ` +
      `medians: before ${fixed(before)} ns/get, after ${fixed(after)} ns/get; ` +
      `after − before: median ${fixed(median(all))} ns (${fixed((median(all) / before) * 100)} %) over ${all.length} paired rounds, ` +
      `quartiles ${fixed(quantile(all, 0.25))} … ${fixed(quantile(all, 0.75))}; ` +
      `per-process medians ${perProcess.map(fixed).join(', ')}`,
  );
}

const args = parseArgs(process.argv.slice(2));
if (args.child !== undefined) {
  if (args.beforeCore === undefined) throw new Error('--child needs --before-core');
  process.stdout.write(JSON.stringify(await child(args.child, args.beforeCore, args.afterFirst, args.rounds, args.ops)));
} else {
  if (args.before === undefined) throw new Error('--before <commit> is required: the commit whose core to compare with');
  if (!existsSync(currentCore)) throw new Error(`${currentCore} is missing: npm run build first`);
  const beforeCore = buildBefore(args.before);
  console.log(
    `tracing overhead: ${args.processes} processes × ${args.rounds} rounds × ${args.ops} awaited gets per core; node ${process.version}`,
  );
  const unsubscribed = runChildren('unsubscribed', beforeCore, args);
  report('unsubscribed', unsubscribed);
  const checks = unsubscribed.map((result) => (result.checkNs ?? NaN) - (result.loopNs ?? NaN));
  console.log(`hasSubscribers check: ${checks.map(fixed).join(', ')} ns more than reading a plain boolean property (per process)`);
  report('subscribed', runChildren('subscribed', beforeCore, args));
}
