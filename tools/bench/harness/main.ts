/**
 * The runner: parses the command line, runs the chosen suites one after another, prints each
 * suite's markdown on stdout as soon as it is done and writes it (and its JSON) to
 * `.bench-results/` (or the folder of `--out` / `LATCHKEY_BENCH_RESULTS`).
 *
 * @module
 */
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs, usage, UsageError, type ParsedArgs } from './cli.js';
import { errorMessage, withTimeout } from './errors.js';
import { cpuShare, cpuTicks } from './machine.js';
import { Progress } from './progress.js';
import { suiteMarkdown, writeSuiteResult } from './report.js';
import { runCase } from './run-case.js';
import type { CaseResult, Environment, Suite, SuiteResult } from './types.js';

/** How long a suite's prepare and teardown may take (a FerretDB cold build takes minutes). */
const PREPARE_LIMIT_MS = 600_000;

/** Exit codes: 0 all ran (skips and missed targets included), 1 a suite or case crashed, 2 usage. */
export type ExitCode = 0 | 1 | 2;

function environment(parsed: ParsedArgs): Environment {
  const cpu = cpus();
  return {
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpus: cpu.length,
    cpuModel: cpu[0]?.model.trim() ?? 'unknown CPU',
    loadAverage: loadavg(),
    startedAt: new Date().toISOString(),
    quick: parsed.options.quick,
    timing: parsed.timing,
  };
}

/** Runs one suite to the end; never throws. */
export async function runSuite(suite: Suite, parsed: ParsedArgs, progress: Progress): Promise<SuiteResult> {
  const base = { name: suite.name, title: suite.title, description: suite.description, notes: [], sections: [], cases: [] };
  progress.suite(suite.name, suite.title);
  let prepared;
  try {
    prepared = await withTimeout(suite.prepare(parsed.options), PREPARE_LIMIT_MS, `preparing ${suite.name}`);
  } catch (error) {
    const message = errorMessage(error);
    progress.note(`${suite.name}: could not prepare: ${message}`);
    return { ...base, environment: environment(parsed), error: `could not prepare: ${message}` };
  }
  if ('skip' in prepared) {
    progress.skip(suite.name, prepared.skip);
    return { ...base, environment: environment(parsed), skipped: prepared.skip };
  }
  const env = environment(parsed);
  const ticks = cpuTicks();
  const cases: CaseResult[] = [];
  let error: string | undefined;
  try {
    const only = parsed.options.only;
    for (const bench of prepared.cases) {
      if (only !== undefined && !only.test(bench.name)) continue;
      cases.push(await runCase(bench, { suite: suite.name, options: parsed.options, defaults: parsed.timing, progress }));
    }
  } finally {
    try {
      await withTimeout(Promise.resolve(prepared.teardown?.()), PREPARE_LIMIT_MS, `teardown of ${suite.name}`);
    } catch (teardownError) {
      error = `teardown failed: ${errorMessage(teardownError)}`;
      progress.note(`${suite.name}: ${error}`);
    }
  }
  const machine = cpuShare(ticks, cpuTicks());
  return {
    ...base,
    ...(machine === undefined ? {} : { machine }),
    notes: prepared.notes ?? [],
    sections: prepared.sections ?? [],
    cases,
    environment: env,
    ...(error === undefined ? {} : { error }),
  };
}

/**
 * The whole command: `argv` without node and the script.
 *
 * @returns The exit code.
 */
export async function main(suites: readonly Suite[], argv: readonly string[]): Promise<ExitCode> {
  const names = suites.map((s) => s.name);
  let parsed: ParsedArgs;
  try {
    parsed = parseArgs(argv, names);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`${error.message}\n\n${usage(names)}\n`);
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(`${usage(names)}\n`);
    return 0;
  }
  if (parsed.list) {
    for (const suite of suites) process.stdout.write(`${suite.name.padEnd(10)} ${suite.title}\n`);
    return 0;
  }
  const progress = new Progress();
  const started = performance.now();
  let code: ExitCode = 0;
  for (const name of parsed.suites) {
    const suite = suites.find((s) => s.name === name) as Suite;
    const result = await runSuite(suite, parsed, progress);
    if (result.error !== undefined || result.cases.some((c) => c.error !== undefined)) code = 1;
    process.stdout.write(`${suiteMarkdown(result)}\n`);
    try {
      const path = writeSuiteResult(result, parsed.resultsDir);
      progress.note(`${suite.name}: results in ${path} (and .json)`);
    } catch (error) {
      progress.note(`${suite.name}: could not write results: ${errorMessage(error)}`);
      code = 1;
    }
  }
  progress.done(performance.now() - started);
  return code;
}
