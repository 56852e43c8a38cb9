/**
 * Writes docs/RELIABILITY.md from real runs: the fault suite on every backend (its recorded
 * results), and the comparison scenarios against redlock, redis-semaphore and keyv on a
 * dedicated Redis.
 *
 * Usage: `npx tsx tools/faults/report.ts [--suite-results <dir>] [--runs <n>] [--out <file>]`
 * - without `--suite-results` it first runs the fault suite (vitest) with
 *   `LATCHKEY_FAULTS_RESULTS_DIR` pointing at a fresh temporary folder;
 * - `--runs` repeats the comparison's timed measurements (default 3; medians are quoted).
 *
 * @module
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem, type } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FERRETDB_BIN, startRedis, which } from '@latchkey/test-servers';
import { BACKEND_KINDS } from './backends.js';
import { compareContender, type CompareOptions, type ComparisonResult } from './compare/run.js';
import { CONTENDERS } from './compare/contenders.js';
import { failoverSectionOf, withFailoverSection } from './failover-section.js';
import { FULL } from './profiles.js';

const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));

interface Args {
  suiteResults: string | undefined;
  runs: number;
  out: string;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { suiteResults: undefined, runs: 3, out: join(root, 'docs', 'RELIABILITY.md') };
  for (let i = 0; i < argv.length; i += 1) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (flag === '--suite-results' && value !== undefined) args.suiteResults = resolve(value);
    else if (flag === '--runs' && value !== undefined) args.runs = Number(value);
    else if (flag === '--out' && value !== undefined) args.out = resolve(value);
    else
      throw new Error(
        `unknown argument ${flag ?? ''}; usage: tsx tools/faults/report.ts [--suite-results <dir>] [--runs <n>] [--out <file>]`,
      );
    i += 1;
  }
  if (!Number.isInteger(args.runs) || args.runs < 1) throw new Error('--runs must be a positive integer');
  return args;
}

type SuiteResults = Record<string, Record<string, Record<string, unknown>>>;

function runSuite(): { dir: string; seconds: number; ok: boolean } {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-faults-'));
  const started = performance.now();
  const run = spawnSync('npx', ['vitest', 'run', '--config', 'tools/faults/vitest.config.ts'], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, LATCHKEY_FAULTS_RESULTS_DIR: dir },
  });
  return { dir, seconds: Math.round((performance.now() - started) / 1000), ok: run.status === 0 };
}

function readSuite(dir: string): SuiteResults {
  const results: SuiteResults = {};
  for (const name of readdirSync(dir).filter((file) => file.endsWith('.json'))) {
    const parsed = JSON.parse(readFileSync(join(dir, name), 'utf8')) as {
      backend: string;
      scenarios: Record<string, Record<string, unknown>>;
    };
    results[parsed.backend] = parsed.scenarios;
  }
  return results;
}

function version(name: string): string {
  try {
    return (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version.replace(
      /^v/,
      '',
    );
  } catch {
    return 'not installed';
  }
}

function serverVersion(command: string, args: string[], pattern: RegExp): string {
  if (which(command) === undefined) return 'not installed';
  const run = spawnSync(command, args, { encoding: 'utf8' });
  return pattern.exec(`${run.stdout}${run.stderr}`)?.[1] ?? 'unknown';
}

function mongoEngine(): string {
  if (process.env['LATCHKEY_MONGODB_URL'] !== undefined) return 'the one at LATCHKEY_MONGODB_URL';
  if (which('mongod') !== undefined) return `mongod ${serverVersion('mongod', ['--version'], /db version v(\S+)/)}`;
  if (which(FERRETDB_BIN) === undefined) return 'none found';
  const goMod = readFileSync(join(root, 'tools', 'ferretdb', 'go.mod'), 'utf8');
  return `FerretDB ${/FerretDB\/FerretDB v(\S+)/.exec(goMod)?.[1] ?? '(unknown version)'} over SQLite${process.env['LATCHKEY_FERRETDB_SERIALIZE'] === '0' ? '' : ', one command at a time'} (no mongod installed)`;
}

function machine(): string[] {
  const cpu = cpus();
  return [
    `- Machine: ${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, ${type()} ${release()}`,
    `- Node.js ${process.versions.node}; redis-server ${serverVersion('redis-server', ['--version'], /v=(\S+)/)}; memcached ${serverVersion('memcached', ['-V'], /memcached (\S+)/)}; MongoDB-wire server: ${mongoEngine()}`,
    `- Load average when the run started: ${loadavg()
      .map((load) => load.toFixed(1))
      .join(', ')} (1, 5, 15 min)`,
    `- Libraries: ioredis ${version('ioredis')}, memjs ${version('memjs')}, mongodb ${version('mongodb')}, redlock ${version('redlock')}, redis-semaphore ${version('redis-semaphore')}, keyv ${version('keyv')} with @keyv/redis ${version('@keyv/redis')}`,
  ];
}

const get = (data: Record<string, unknown> | undefined, path: string): unknown =>
  path
    .split('.')
    .reduce<unknown>(
      (value, part) => (value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[part] : undefined),
      data,
    );

function cell(value: unknown): string {
  if (value === undefined || value === null) return '—';
  if (typeof value === 'number') return value.toLocaleString('en-US', { maximumFractionDigits: Math.abs(value) >= 100 ? 0 : 1 });
  return String(value);
}

function suiteTables(results: SuiteResults, command: string): string[] {
  const backends = BACKEND_KINDS.filter((kind) => results[kind] !== undefined);
  const row = (label: string, render: (scenarios: Record<string, Record<string, unknown>>) => string): string =>
    `| ${label} | ${backends.map((kind) => render(results[kind] ?? {})).join(' | ')} |`;
  const of = (scenario: string, path: string) => (scenarios: Record<string, Record<string, unknown>>) =>
    cell(get(scenarios[scenario], path));
  const join2 =
    (a: (s: Record<string, Record<string, unknown>>) => string, b: (s: Record<string, Record<string, unknown>>) => string, sep = ' / ') =>
    (s: Record<string, Record<string, unknown>>) =>
      `${a(s)}${sep}${b(s)}`;
  return [
    '```sh',
    command,
    '```',
    '',
    `| scenario | ${backends.join(' | ')} |`,
    `| --- | ${backends.map(() => '---').join(' | ')} |`,
    row('contention: runs × 1,000 increments (4 processes × 4 workers), finals', (s) => {
      const finals = get(s['contention'], 'finals');
      return Array.isArray(finals)
        ? `${finals.length} run${finals.length === 1 ? '' : 's'}, ${finals.every((f) => f === 1000) ? 'all = 1,000' : finals.join(', ')}`
        : '—';
    }),
    row(
      'contention: median run, ms (increments/s)',
      (s) => `${of('contention', 'runMs.median')(s)} (${of('contention', 'incrementsPerSecond')(s)})`,
    ),
    row(
      '128 waiters, 2,000 increments: acquired / lost updates',
      (s) =>
        `${cell(get(s['waiters'], 'successes'))} / ${cell(Number(get(s['waiters'], 'successes')) - Number(get(s['waiters'], 'final')))}`,
    ),
    row(
      '128 waiters: median / p99 wait for the lock, ms',
      join2(of('waiters', 'acquireWaitMs.median'), of('waiters', 'acquireWaitMs.p99')),
    ),
    row(
      'paused holder: late writes + deletes refused (trials)',
      (s) =>
        `${cell(get(s['paused-holder'], 'refused'))} of ${cell(get(s['paused-holder'], 'trials'))} (lease ${cell(get(s['paused-holder'], 'leaseMs'))} ms)`,
    ),
    row('paused holder: newer value intact', of('paused-holder', 'newerValueIntact')),
    row('lock lost on the server: next locked write', (s) => {
      const writes = get(s['lock-lost'], 'lockedWrites');
      return Array.isArray(writes)
        ? `${writes.filter((w) => w === 'LOCK_TIMEOUT').length}/${writes.length} refused (${cell(get(s['lock-lost'], 'how'))})`
        : '—';
    }),
    row('lock lost, autoExtend: signal aborted after the loss, ms', of('lock-lost-autoextend', 'abortedAfterLossMs')),
    row(
      'holder crash (kill -9): lock taken after the kill, median ms (lease)',
      (s) => `${cell(get(s['holder-crash'], 'acquiredAfterKillMs.median'))} (${cell(get(s['holder-crash'], 'leaseMs'))})`,
    ),
    row('server SIGKILL + restart: calls / over deadline + 100 ms (wall clock; machine stalls excluded) / untyped / pending', (s) =>
      s['server-restart'] === undefined
        ? 'n/a'
        : `${cell(get(s['server-restart'], 'calls'))} / ${cell(get(s['server-restart'], 'overDeadlineRaw'))}; ${cell(get(s['server-restart'], 'overDeadline'))} / ${cell(get(s['server-restart'], 'untyped'))} / ${cell(get(s['server-restart'], 'pending'))}`,
    ),
    row('server restart: first success after restart, ms', (s) =>
      s['server-restart'] === undefined ? 'n/a' : cell(get(s['server-restart'], 'recoveredAfterMs')),
    ),
    row('appendonly yes, 10 × kill -9: acknowledged writes lost', (s) =>
      s['aof-kill-9'] === undefined ? 'n/a' : `${cell(get(s['aof-kill-9'], 'lost'))} of ${cell(get(s['aof-kill-9'], 'acknowledged'))}`,
    ),
    row(
      'network faults (latency, resets, black hole): calls / over deadline + 100 ms (wall clock; machine stalls excluded) / untyped / pending',
      (s) =>
        s['network-faults'] === undefined
          ? 'n/a'
          : `${cell(get(s['network-faults'], 'calls'))} / ${cell(get(s['network-faults'], 'overDeadlineRaw'))}; ${cell(get(s['network-faults'], 'overDeadline'))} / ${cell(get(s['network-faults'], 'untyped'))} / ${cell(get(s['network-faults'], 'pending'))}`,
    ),
    row('network faults: first success after healing, ms', (s) =>
      s['network-faults'] === undefined ? 'n/a' : cell(get(s['network-faults'], 'recoveredAfterMs')),
    ),
    row('delayed locked write (bytes held until the lease lapsed and another holder wrote): stale writes accepted', (s) =>
      s['delayed-write'] === undefined
        ? 'n/a'
        : `**${cell(get(s['delayed-write'], 'staleWritesAccepted'))} of ${cell(get(s['delayed-write'], 'trials'))}** (lease ${cell(get(s['delayed-write'], 'leaseMs'))} ms)`,
    ),
    row(
      'aborted acquires: trials / settled late / locks, timers, listeners left',
      (s) =>
        `${cell(get(s['abort'], 'trials'))} / ${cell((get(s['abort'], 'lateSettles') as unknown[] | undefined)?.length)} / ${cell(get(s['abort'], 'locksLeftBehind'))}, ${cell(get(s['abort'], 'timersLeftBehind'))}, ${cell(get(s['abort'], 'listenersLeftBehind'))}`,
    ),
    row(
      'bad input: malformed keys + values refused before any backend call',
      (s) => `${cell(get(s['bad-input'], 'malformedKeys'))} + ${cell(get(s['bad-input'], 'malformedValues'))}`,
    ),
    row('ill-formed keys written without a collision', of('ill-formed-keys', 'keys')),
    row('model-based comparison with memory: runs / steps', join2(of('model', 'runs'), of('model', 'steps'))),
  ];
}

function comparisonTables(results: readonly ComparisonResult[], command: string, options: CompareOptions): string[] {
  const names = results.map((r) => r.contender);
  const latchkey = results.find((r) => r.contender === 'latchkey');
  const row = (label: string, render: (r: ComparisonResult) => string): string => `| ${label} | ${results.map(render).join(' | ')} |`;
  const na = 'n/a (no locks)';
  return [
    '```sh',
    command,
    '```',
    '',
    `| scenario (one Redis ${serverVersion('redis-server', ['--version'], /v=(\S+)/)}) | ${names.join(' | ')} |`,
    `| --- | ${names.map(() => '---').join(' | ')} |`,
    row(
      `contention: final of ${options.increments.toLocaleString('en-US')} increments (${options.processes} processes × ${options.workersPerProcess} workers), ${options.runs} runs`,
      (r) => r.contention.finals.map((f) => f.toLocaleString('en-US')).join(', '),
    ),
    row('contention: lost updates per run', (r) => r.contention.lostUpdates.join(', ')),
    row(
      'contention: median run, ms (increments/s)',
      (r) => `${cell(r.contention.medianMs)} (${cell(r.contention.medianIncrementsPerSecond)})`,
    ),
    row('contention: speed relative to latchkey (median)', (r) =>
      latchkey === undefined
        ? '—'
        : `${(r.contention.medianIncrementsPerSecond / latchkey.contention.medianIncrementsPerSecond).toFixed(2)}×`,
    ),
    row(`paused holder (lease ${options.leaseMs} ms): passed its own check before the pause`, (r) =>
      r.pausedHolder === undefined ? na : `${r.pausedHolder.passedOwnCheck} of ${r.pausedHolder.trials}`,
    ),
    row('paused holder: stale writes accepted after the pause', (r) =>
      r.pausedHolder === undefined ? na : `**${r.pausedHolder.staleWritesAccepted} of ${r.pausedHolder.trials}**`,
    ),
    row('paused holder: newer holder’s value intact', (r) =>
      r.pausedHolder === undefined ? na : `${r.pausedHolder.newerValueIntact} of ${r.pausedHolder.trials}`,
    ),
    row('lock lost (FLUSHALL, 30 s lease): holder still believes it holds the lock', (r) =>
      r.lockLost === undefined ? na : `${r.lockLost.holderStillBelievedValid} of ${r.lockLost.keys}`,
    ),
    row('lock lost: next locked write accepted', (r) =>
      r.lockLost === undefined ? na : `**${r.lockLost.writesAccepted} of ${r.lockLost.keys}**`,
    ),
    row('lock lost while auto-extending (3 s lease): loss reported, median ms after FLUSHALL', (r) =>
      r.autoExtendLoss === undefined
        ? na
        : `${r.autoExtendLoss.detected} of ${r.autoExtendLoss.runs}, ${cell(r.autoExtendLoss.medianDetectionMs)}`,
    ),
    row('holder crash (kill -9, 500 ms lease): waiter gets the lock, median ms after the kill', (r) =>
      r.crash === undefined ? na : cell(r.crash.medianHandoffAfterKillMs),
    ),
  ];
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  let suiteDir = args.suiteResults;
  let suiteNote = `recorded results in ${suiteDir ?? ''}`;
  if (suiteDir === undefined) {
    const suite = runSuite();
    suiteDir = suite.dir;
    suiteNote = `the fault suite took ${suite.seconds} s and ${suite.ok ? 'passed' : 'FAILED'}`;
    if (!suite.ok) process.exitCode = 1;
  }
  const suite = readSuite(suiteDir);

  const options: CompareOptions = {
    runs: args.runs,
    processes: 4,
    workersPerProcess: 4,
    increments: 1000,
    pausedTrials: 100,
    pausedRounds: 10,
    leaseMs: 300,
  };
  const redis = await startRedis();
  const comparison: ComparisonResult[] = [];
  try {
    for (const contender of CONTENDERS) {
      process.stderr.write(`comparing ${contender}…\n`);
      comparison.push(await compareContender(contender, redis.url, options));
    }
  } finally {
    await redis.stop();
  }
  writeFileSync(join(suiteDir, 'comparison.json'), `${JSON.stringify(comparison, null, 2)}\n`);

  const suiteCommand =
    args.suiteResults === undefined
      ? 'npx tsx tools/faults/report.ts'
      : `LATCHKEY_FAULTS_RESULTS_DIR=<dir> npx vitest run --config tools/faults/vitest.config.ts${FULL ? '   # with LATCHKEY_FAULTS_FULL=1' : ''}`;
  const lines = [
    '# Reliability',
    '',
    '<!-- Generated by tools/faults/report.ts from real runs; do not edit by hand. -->',
    '',
    'What latchkey promises about locks and failures, measured: the fault suite (tools/faults) on every backend,',
    'and the same scenarios against the libraries a Redis user would pick instead. How each scenario works,',
    'and the default and full counts, are in [FAULT-TESTS.md](FAULT-TESTS.md).',
    '',
    `Generated ${new Date().toISOString().slice(0, 10)}${FULL ? ' with LATCHKEY_FAULTS_FULL=1' : ' with the default counts'}; ${suiteNote}.`,
    '',
    ...machine(),
    '',
    '## latchkey on every backend',
    '',
    'memory runs its "processes" as separate stores in one process (its locks are in-process by design);',
    'the other backends run each worker as its own OS process. Server and network faults do not apply to memory.',
    '',
    ...suiteTables(suite, suiteCommand),
    '',
    '## Side by side on Redis',
    '',
    'Each library runs in its own worker processes against one dedicated `redis-server`. Lock holders write the way',
    'each library’s users do: latchkey with a locked `set` (Redis checks the lease in the same script as the write);',
    'redlock and redis-semaphore with a plain `SET` after checking their lock (redlock: `Date.now() < lock.expiration`;',
    'redis-semaphore: `mutex.isAcquired`); keyv has no locks, so its contention run is a plain read-increment-write.',
    'The paused holder passes its own check, is frozen (SIGSTOP) past its lease while another process takes the lock',
    'and writes, then sends its write — the pause Martin Kleppmann describes for redlock. For latchkey that write is',
    'the lease-conditional write its `set` sends after its own client-side check.',
    '',
    ...comparisonTables(comparison, `npx tsx tools/faults/report.ts${args.runs === 3 ? '' : ` --runs ${args.runs}`}`, options),
    '',
    'Medians are over the runs shown; the contention ratio is each library’s median increments per second over latchkey’s.',
    '',
  ];
  // The failover section has its own generator (failover-report.ts): carry it over.
  const failover = existsSync(args.out) ? failoverSectionOf(readFileSync(args.out, 'utf8')) : undefined;
  writeFileSync(args.out, failover === undefined ? lines.join('\n') : withFailoverSection(lines.join('\n'), failover));
  process.stderr.write(`wrote ${args.out} (raw results in ${suiteDir})\n`);
}

await main();
