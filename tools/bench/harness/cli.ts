/**
 * The command line of the benchmark runner:
 * `tsx tools/bench/run.ts [suite...] [--only PATTERN] [--quick] [--concurrency N] [--rounds N] [--round-ms N] [--out DIR] [--without-adapter] [--list]`.
 *
 * @module
 */
import { resolve } from 'node:path';
import { RESULTS_DIR } from './report.js';
import type { RunOptions, Timing } from './types.js';

/** The environment variable naming the results folder when `--out` is not given. */
export const RESULTS_DIR_ENV = 'LATCHKEY_BENCH_RESULTS';

/** Default timing of a full run. */
export const FULL_TIMING: Timing = { rounds: 5, roundMs: 400, warmupMs: 200 };
/** Default timing under `--quick`. */
export const QUICK_TIMING: Timing = { rounds: 3, roundMs: 150, warmupMs: 75 };

/** A parsed command line. */
export interface ParsedArgs {
  readonly suites: readonly string[];
  readonly options: RunOptions;
  readonly timing: Timing;
  /** Where `<suite>.md` and `<suite>.json` go: `--out`, else `$LATCHKEY_BENCH_RESULTS`, else `.bench-results`. */
  readonly resultsDir: string;
  readonly list: boolean;
  readonly help: boolean;
}

/** Thrown for a command line that cannot be understood. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The usage text. */
export function usage(suiteNames: readonly string[]): string {
  return [
    'usage: tsx tools/bench/run.ts [suite...] [options]',
    '',
    `suites: ${suiteNames.join(', ')} (default: all)`,
    '',
    'options:',
    '  --only PATTERN       run only the cases whose name matches PATTERN (a regular expression, case-insensitive)',
    '  --quick              shorter and fewer rounds (a smoke run, not for quoting)',
    '  --concurrency N      operations in flight for cases that do not pin their own',
    '  --rounds N           measured rounds per contender (cases with their own count keep it)',
    '  --round-ms N         length of a measured round (cases with their own length keep it)',
    `  --out DIR            write <suite>.md and <suite>.json to DIR (default: $${RESULTS_DIR_ENV}, else .bench-results at the repository root)`,
    '  --without-adapter    run adapter suites even when the adapter does not export its backend yet',
    '  --list               list the suites and exit',
    '  --help               this text',
  ].join('\n');
}

function positiveInteger(flag: string, text: string | undefined): number {
  const value = Number(text);
  if (text === undefined || !Number.isInteger(value) || value < 1)
    throw new UsageError(`${flag} needs a positive integer, got ${text ?? 'nothing'}`);
  return value;
}

/**
 * Parses `argv` (without node and the script).
 *
 * @throws {UsageError} for unknown flags, bad numbers or unknown suites.
 */
export function parseArgs(
  argv: readonly string[],
  suiteNames: readonly string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
): ParsedArgs {
  const suites: string[] = [];
  let quick = false;
  let withoutAdapter = false;
  let list = false;
  let help = false;
  let concurrency: number | undefined;
  let rounds: number | undefined;
  let roundMs: number | undefined;
  let only: RegExp | undefined;
  let out: string | undefined;
  const args = [...argv];
  while (args.length > 0) {
    const arg = args.shift() as string;
    const [flag, inline] =
      arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string | undefined => inline ?? args.shift();
    switch (flag) {
      case '--quick':
        quick = true;
        break;
      case '--without-adapter':
        withoutAdapter = true;
        break;
      case '--list':
        list = true;
        break;
      case '--help':
      case '-h':
        help = true;
        break;
      case '--concurrency':
        concurrency = positiveInteger(flag, value());
        break;
      case '--rounds':
        rounds = positiveInteger(flag, value());
        break;
      case '--only': {
        const pattern = value();
        if (pattern === undefined || pattern === '') throw new UsageError('--only needs a pattern');
        try {
          only = new RegExp(pattern, 'i');
        } catch (error) {
          throw new UsageError(`--only: ${(error as Error).message}`);
        }
        break;
      }
      case '--out': {
        out = value();
        if (out === undefined || out === '') throw new UsageError('--out needs a folder');
        break;
      }
      case '--round-ms':
        roundMs = positiveInteger(flag, value());
        break;
      default:
        if (flag.startsWith('-')) throw new UsageError(`unknown option ${flag}`);
        if (!suiteNames.includes(flag)) throw new UsageError(`unknown suite "${flag}" (known: ${suiteNames.join(', ')})`);
        if (!suites.includes(flag)) suites.push(flag);
    }
  }
  const base = quick ? QUICK_TIMING : FULL_TIMING;
  const fromEnv = env[RESULTS_DIR_ENV];
  // Relative folders are taken from the current directory, as a shell user expects.
  const resultsDir = out !== undefined ? resolve(out) : fromEnv !== undefined && fromEnv !== '' ? resolve(fromEnv) : RESULTS_DIR;
  return {
    suites: suites.length === 0 ? suiteNames : suites,
    options: { quick, concurrency, withoutAdapter, ...(only === undefined ? {} : { only }) },
    timing: { rounds: rounds ?? base.rounds, roundMs: roundMs ?? base.roundMs, warmupMs: base.warmupMs },
    resultsDir,
    list,
    help,
  };
}
