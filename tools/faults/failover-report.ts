/**
 * Writes the failover section of docs/RELIABILITY.md from a real run of the failover
 * scenario (scenarios/failover.ts) with its full counts: 20 forced failovers on a Sentinel
 * replica set and 20 on a Cluster with replicas.
 *
 * Usage: `npx tsx tools/faults/failover-report.ts [--results <dir>] [--out <file>]`
 * - without `--results` it first runs the scenario (vitest, `LATCHKEY_FAULTS_FULL=1`) with
 *   `LATCHKEY_FAULTS_RESULTS_DIR` pointing at a fresh temporary folder;
 * - with it, it renders `<dir>/redis-failover.json` as recorded.
 *
 * Only the section between its markers is replaced; tools/faults/report.ts, which writes
 * the rest of the file, keeps it.
 *
 * @module
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem, type } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { format, resolveConfig } from 'prettier';
import { renderFailoverSection, withFailoverSection } from './failover-section.js';
import { FAILOVER_RESULTS, type FailoverRun } from './scenarios/failover.js';

const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));

function parseArgs(argv: readonly string[]): { results: string | undefined; out: string } {
  const args = { results: undefined as string | undefined, out: join(root, 'docs', 'RELIABILITY.md') };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === '--results' && value !== undefined) args.results = resolve(value);
    else if (flag === '--out' && value !== undefined) args.out = resolve(value);
    else throw new Error(`unknown argument ${flag ?? ''}; usage: tsx tools/faults/failover-report.ts [--results <dir>] [--out <file>]`);
  }
  return args;
}

function version(command: string, args: string[], pattern: RegExp): string {
  const run = spawnSync(command, args, { encoding: 'utf8' });
  return pattern.exec(`${run.stdout ?? ''}${run.stderr ?? ''}`)?.[1] ?? 'unknown';
}

function packageVersion(name: string): string {
  return (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version.replace(
    /^v/,
    '',
  );
}

function machine(runs: readonly FailoverRun[]): string[] {
  const cpu = cpus();
  return [
    `- Machine: ${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, ${type()} ${release()}`,
    `- Node.js ${process.versions.node}; redis-server and redis-sentinel ${version('redis-server', ['--version'], /v=(\S+)/)}; ioredis ${packageVersion('ioredis')}; redlock ${packageVersion('redlock')}`,
    ...runs.map(
      (run) =>
        `- Load average when the ${run.deployment} run started: ${run.loadAtStart.map((l) => l.toFixed(1)).join(', ')} (1, 5, 15 min)`,
    ),
  ];
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  let dir = args.results;
  if (dir === undefined) {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-failover-'));
    const run = spawnSync('npx', ['vitest', 'run', '--config', 'tools/faults/vitest.config.ts', 'test/redis-failover.test.ts'], {
      cwd: root,
      stdio: 'inherit',
      env: { ...process.env, LATCHKEY_FAULTS_FULL: '1', LATCHKEY_FAULTS_RESULTS_DIR: dir },
    });
    if (run.status !== 0) process.exitCode = 1;
  }
  const file = join(dir, `${FAILOVER_RESULTS}.json`);
  if (!existsSync(file)) throw new Error(`no results in ${file}: did the scenario run?`);
  const recorded = JSON.parse(readFileSync(file, 'utf8')) as { recordedAt: string; scenarios: Record<string, FailoverRun> };
  const runs = ['sentinel', 'cluster'].flatMap((name) => (recorded.scenarios[name] === undefined ? [] : [recorded.scenarios[name]]));
  const full = runs.every((run) => run.failovers.length >= 20);
  const section = renderFailoverSection(runs, {
    command: 'npx tsx tools/faults/failover-report.ts   # runs test/redis-failover.test.ts with LATCHKEY_FAULTS_FULL=1',
    generated: `${recorded.recordedAt.slice(0, 10)}${full ? ' with LATCHKEY_FAULTS_FULL=1' : ' with the default counts'}${process.exitCode === 1 ? '; the scenario FAILED' : ''}`,
    machine: machine(runs),
  });
  const document = existsSync(args.out) ? readFileSync(args.out, 'utf8') : '# Reliability\n';
  // Formatted as the repository's other Markdown is, so a re-run changes only what was measured.
  const text = await format(withFailoverSection(document, section), { ...(await resolveConfig(args.out)), filepath: args.out });
  writeFileSync(args.out, text);
  process.stderr.write(`wrote the failover section of ${args.out} (raw results in ${dir})\n`);
}

await main();
