#!/usr/bin/env node
/**
 * `latchkey-conformance [--only group,…] [--concurrency n] [--report file.json] <module…>` — runs the backend
 * conformance suite against the backend each module's default export (`create`) builds. It shows
 * progress on stderr, then prints each not-applicable check with its reason, each flaky check
 * (passed only on a re-run after event-loop lag from outside the backend) with its attempts'
 * timings, each failure, the counts of backend checks and of store checks, and ends with the line
 * `N passed, N failed`. Exit code 0 when every check passed (flaky ones included), 1 when any
 * failed, 2 for usage errors and modules that cannot be found.
 *
 * @packageDocumentation
 */
import { writeFileSync } from 'node:fs';
import { CONFORMANCE_GROUPS, type ConformanceGroup } from './conformance-options.js';
import { reportLines } from './internal/cli-output.js';
import { ModuleNotFoundError, runConformance, type CheckResult, type GroupSummary } from './internal/runner.js';

const USAGE = `Usage: latchkey-conformance [--only <group,…>] [--concurrency <n>] [--report <file.json>] <module> [<module>…]

Runs the latchkey backend conformance suite against the backend built by each module's
default export (a create function; optional named exports: destroy, createPeer,
conformanceOptions). Modules are paths (.js, .mjs, .ts, .mts, .cts) or package
names; TypeScript is compiled by vitest's own transform, with no Node flag or loader.

Progress goes to stderr (. passed, ~ flaky, F failed, - not applicable, and a line per
group); stdout lists not-applicable checks with their reasons, flaky checks with each
attempt's timings, failures, and the counts, ending with "N passed, N failed".

  --only <groups>    run only these groups: ${CONFORMANCE_GROUPS.join(', ')}
  --concurrency <n>  run up to n checks at once (default 1, or the module's own
                     conformanceOptions.concurrency)
  --report <file>    also write every result as JSON to <file> (with per-check
                     durations, flaky checks' attempts, not-applicable reasons)
  --help             show this help`;

interface Arguments {
  readonly modules: string[];
  readonly only?: ConformanceGroup[];
  readonly concurrency?: number;
  readonly report?: string;
}

class UsageError extends Error {}

function parseArguments(argv: readonly string[]): Arguments | 'help' {
  const modules: string[] = [];
  let only: ConformanceGroup[] | undefined;
  let report: string | undefined;
  let concurrency: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined) throw new UsageError(`${arg} needs a value.`);
      return next;
    };
    if (arg === '--help' || arg === '-h') return 'help';
    else if (arg === '--only') {
      only = value()
        .split(',')
        .map((group) => group.trim())
        .filter((group) => group.length > 0) as ConformanceGroup[];
      const unknown = only.filter((group) => !CONFORMANCE_GROUPS.includes(group));
      if (unknown.length > 0)
        throw new UsageError(`Unknown group(s) ${unknown.join(', ')}; the groups are ${CONFORMANCE_GROUPS.join(', ')}.`);
    } else if (arg === '--concurrency') {
      concurrency = Number(value());
      if (!Number.isInteger(concurrency) || concurrency < 1) throw new UsageError('--concurrency needs a positive integer.');
    } else if (arg === '--report') report = value();
    else if (arg.startsWith('-')) throw new UsageError(`Unknown option ${arg}.`);
    else modules.push(arg);
  }
  if (modules.length === 0) throw new UsageError('Name at least one backend module.');
  return {
    modules,
    ...(only === undefined ? {} : { only }),
    ...(concurrency === undefined ? {} : { concurrency }),
    ...(report === undefined ? {} : { report }),
  };
}

/**
 * Progress on stderr while the run goes: one character per check as it finishes (`.` passed,
 * `~` flaky, `F` failed, `-` not applicable), and a line for each group of each module as it
 * ends, with its counts and wall time.
 */
function progressReporter(): { onResult: (result: CheckResult) => void; onGroupEnd: (group: GroupSummary) => void; end: () => void } {
  let midLine = false;
  return {
    onResult(result) {
      process.stderr.write(result.state === 'failed' ? 'F' : result.state === 'skipped' ? '-' : result.flaky ? '~' : '.');
      midLine = true;
    },
    onGroupEnd(group) {
      const counts = [`${group.passed} passed`, `${group.failed} failed`];
      if (group.flaky > 0) counts.push(`${group.flaky} of them flaky`);
      if (group.skipped > 0) counts.push(`${group.skipped} not applicable`);
      process.stderr.write(
        `${midLine ? '\n' : ''}${group.failed > 0 ? '✗' : '✓'} ${group.module} > ${group.group}: ${counts.join(', ')} (${(group.durationMs / 1000).toFixed(1)} s)\n`,
      );
      midLine = false;
    },
    end() {
      if (midLine) process.stderr.write('\n');
    },
  };
}

async function main(argv: readonly string[]): Promise<number> {
  let args: Arguments | 'help';
  try {
    args = parseArguments(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`latchkey-conformance: ${error.message}\n\n${USAGE}`);
    return 2;
  }
  if (args === 'help') {
    console.log(USAGE);
    return 0;
  }
  let outcome;
  const progress = progressReporter();
  try {
    outcome = await runConformance({
      modules: args.modules,
      ...(args.only === undefined ? {} : { only: args.only }),
      ...(args.concurrency === undefined ? {} : { concurrency: args.concurrency }),
      onResult: progress.onResult,
      onGroupEnd: progress.onGroupEnd,
    });
  } catch (error) {
    if (!(error instanceof ModuleNotFoundError)) throw error;
    console.error(`latchkey-conformance: ${error.message}`);
    return 2;
  } finally {
    progress.end();
  }
  const skipped = outcome.results.filter((result) => result.state === 'skipped');
  for (const line of reportLines(outcome.results)) console.log(line);
  if (args.report !== undefined) writeFileSync(args.report, `${JSON.stringify(outcome, null, 2)}\n`);
  if (outcome.passed + outcome.failed === 0) console.log('No checks ran.');
  console.log(`${skipped.length} not applicable`);
  if (outcome.flaky > 0)
    console.log(
      `${outcome.flaky} flaky: passed only when re-run after event-loop lag from outside the backend (counted as passed; see the ~ lines)`,
    );
  for (const [layer, label] of [
    ['backend', 'backend checks (the backend called directly)'],
    ['store', 'store checks (through KeyValueStore)'],
  ] as const) {
    const counts = outcome.layers[layer];
    console.log(`${label}: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
  }
  console.log(`${outcome.passed} passed, ${outcome.failed} failed`);
  return outcome.failed === 0 && outcome.passed > 0 ? 0 : 1;
}

// A closed pipe (`latchkey-conformance … | head`) ends the output, not the process with a crash.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`latchkey-conformance: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = 2;
  },
);
