import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunResult } from '../../src/internal/runner.js';

/** The conformance package's directory. */
export const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** The built command (the `test` target builds first). */
export const cliPath = join(packageDir, 'dist', 'cli.js');
/** Where fixture modules live; the command runs from here. */
export const fixturesDir = join(packageDir, 'test', 'fixtures');

/** What one run of the command did. */
export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** The `--report` JSON, when the run got that far. */
  readonly report: RunResult | undefined;
  /** Names (below the module) of the failed checks. */
  readonly failed: string[];
  /** The last line printed. */
  readonly lastLine: string;
}

// Each run starts vite and a worker; more than a few at once starves the timing checks.
const MAX_RUNS_AT_ONCE = 3;
let running = 0;
const queue: (() => void)[] = [];

/** Runs `node dist/cli.js --report <tmp> ...args` from the fixtures directory. */
export async function runCli(args: readonly string[], options: { withReport?: boolean } = {}): Promise<CliRun> {
  if (running >= MAX_RUNS_AT_ONCE) await new Promise<void>((resolve) => queue.push(resolve));
  running += 1;
  try {
    return await spawnCli(args, options);
  } finally {
    running -= 1;
    queue.shift()?.();
  }
}

async function spawnCli(args: readonly string[], options: { withReport?: boolean }): Promise<CliRun> {
  if (!existsSync(cliPath)) throw new Error(`${cliPath} is missing: build the package first (npm run build).`);
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-conformance-'));
  const reportPath = join(dir, 'report.json');
  const argv = options.withReport === false ? [...args] : ['--report', reportPath, ...args];
  try {
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
      execFile(
        process.execPath,
        [cliPath, ...argv],
        { cwd: fixturesDir, maxBuffer: 64 * 1024 * 1024, timeout: 170_000 },
        (error, stdout, stderr) => {
          const exit = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
          done({ code: exit, stdout, stderr });
        },
      );
    });
    const report = existsSync(reportPath) ? (JSON.parse(readFileSync(reportPath, 'utf8')) as RunResult) : undefined;
    const lines = stdout.trimEnd().split('\n');
    return {
      code,
      stdout,
      stderr,
      report,
      failed: report?.results.filter((result) => result.state === 'failed').map((result) => result.name) ?? [],
      lastLine: lines[lines.length - 1] ?? '',
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
