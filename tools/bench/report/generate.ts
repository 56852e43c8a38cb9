/**
 * Turns the results of `npm run bench` into `docs/PERFORMANCE.md` and
 * `docs/performance-chart.svg`:
 *
 *   npx tsx tools/bench/report/generate.ts [--from <results dir>]... [--out <docs dir>] [--suites a,b]
 *
 * `--from` defaults to `.bench-results` and `--out` to `docs`, both at the repository root;
 * relative paths given on the command line are taken from the current directory. `--from` given
 * once per full run (two for the two-run rule: a goal is met only when it holds in both) puts
 * every run's measurement in the goals table; the suite sections and the chart show the first. `--suites a,b`
 * renders only those suites, as a block spliced into the existing document before its caveats
 * (replacing an earlier block of the same suites), for suites run apart from the others; the
 * chart and the rest of the document stay as they are.
 *
 * @module
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { format, resolveConfig } from 'prettier';
import { REPO_ROOT, RESULTS_DIR, type SuiteResult, type Timing } from '../harness/index.js';
import { chartData } from './chart-data.js';
import { renderChart } from './chart.js';
import { KNOWN_SUITES, loadResults, type LoadedSuite } from './load.js';
import { renderDocument, renderSuiteBlock, suiteBlockMarkers, type RunInput } from './markdown.js';
import { dateText, rangeText, runInfo } from './run-info.js';
import { packageVersions } from './versions.js';

const DOCUMENT = 'PERFORMANCE.md';
const CHART = 'performance-chart.svg';

const USAGE = [
  'usage: npx tsx tools/bench/report/generate.ts [--from <results dir>]... [--out <docs dir>] [--suites a,b]',
  '',
  `  --from DIR   where npm run bench wrote <suite>.json (default: ${relative(process.cwd(), RESULTS_DIR) || '.'}); once per full run:`,
  '               a goal counts as met only when it holds in every run given and at least two were given (with one run a',
  '               goal that held says "not settled"); the suite sections and the chart show the first folder',
  '               two runs: npm run bench -- --out .bench-results/run-1; npm run bench -- --out .bench-results/run-2;',
  '                         npx tsx tools/bench/report/generate.ts --from .bench-results/run-1 --from .bench-results/run-2',
  `  --out DIR    where ${DOCUMENT} and ${CHART} go (default: ${relative(process.cwd(), join(REPO_ROOT, 'docs')) || '.'})`,
  '  --suites A,B only these suites (run apart from the others): their block in the existing document is replaced, the rest kept',
].join('\n');

interface Arguments {
  /** The results folders, one per full run; the first is the one the sections and the chart show. */
  readonly from: readonly string[];
  readonly out: string;
  /** Only these suites, spliced into the existing document. */
  readonly suites: readonly string[] | undefined;
}

/** Thrown for a command line that cannot be understood (exit code 2). */
class UsageError extends Error {
  override readonly name = 'UsageError';
}

function parse(argv: readonly string[]): Arguments | 'help' {
  const from: string[] = [];
  let out = join(REPO_ROOT, 'docs');
  let suites: string[] | undefined;
  const args = [...argv];
  while (args.length > 0) {
    const arg = args.shift() as string;
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (flag === '--help' || flag === '-h') return 'help';
    if (flag !== '--from' && flag !== '--out' && flag !== '--suites') throw new UsageError(`unknown argument ${arg}`);
    const value = inline ?? args.shift();
    if (value === undefined || value.length === 0)
      throw new UsageError(`${flag} needs ${flag === '--suites' ? 'suite names' : 'a folder'}`);
    if (flag === '--suites') {
      suites = value.split(',').filter((name) => name.length > 0);
      const unknown = suites.filter((name) => !KNOWN_SUITES.includes(name));
      if (unknown.length > 0) throw new UsageError(`unknown suite ${unknown.join(', ')} (known: ${KNOWN_SUITES.join(', ')})`);
    } else if (flag === '--from') from.push(resolve(value));
    else out = resolve(value);
  }
  return { from: from.length === 0 ? [RESULTS_DIR] : from, out, suites };
}

/** A path as a reader at the repository root would type it. */
function shown(path: string): string {
  const fromRoot = relative(REPO_ROOT, path);
  return fromRoot.length > 0 && !fromRoot.startsWith('..') && !isAbsolute(fromRoot) ? fromRoot : path;
}

function chartSubtitle(suites: readonly SuiteResult[]): string[] {
  const run = runInfo(suites);
  const parts: string[] = [];
  const second: string[] = [];
  parts.push(run.started === undefined ? 'no suite ran' : `npm run bench, ${dateText(run.started)}`);
  if (run.node.length > 0) parts.push(`Node ${run.node.join(', ')}`);
  if (run.machines.length > 0) parts.push(run.machines.join('; '));
  if (run.stealPct !== undefined) second.push(`shared VM, ${rangeText(run.stealPct)} CPU steal`);
  const rounds = (t: Timing): string => `${t.rounds}\u00a0×\u00a0${t.roundMs}\u00a0ms`;
  const timing = run.timings.map(rounds).join('; ');
  const exceptions = run.caseTimings.map((e) => `${e.cases.join(', ')}: ${rounds(e.timing)}`);
  if (timing.length > 0)
    second.push(`medians of ${timing} rounds per contender${exceptions.length > 0 ? ` (${exceptions.join('; ')})` : ''}`);
  if (run.quickSuites.length > 0) second.push('SMOKE RUN (--quick), not for quoting');
  return [parts.join(' · '), second.join(' · ')].filter((l) => l.length > 0);
}

/** Says which server the mongo figures come from (FerretDB is not MongoDB). */
function mongoServerNote(suites: readonly SuiteResult[]): string {
  const server = suites.find((s) => s.name === 'mongo' && s.skipped === undefined)?.notes.find((n) => n.startsWith('server:'));
  if (server === undefined) return '';
  return /ferretdb/i.test(server)
    ? ' mongo ran on FerretDB 1.x (SQLite), not MongoDB: its ratios speak only for the client side.'
    : ` mongo: ${server.replace(/^server:\s*/, '')}.`;
}

async function main(argv: readonly string[]): Promise<number> {
  let args: Arguments | 'help';
  try {
    args = parse(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`${error.message}\n\n${USAGE}\n`);
    return 2;
  }
  if (args === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const absent = args.from.filter((dir) => !statSync(dir, { throwIfNoEntry: false })?.isDirectory());
  if (absent.length > 0) {
    process.stderr.write(`no results folder at ${absent.join(', ')}: run \`npm run bench\` first (or pass --from <dir>)\n`);
    return 1;
  }
  if (args.suites !== undefined) return spliceSuites(args, args.suites);
  const [first, ...others] = args.from.map((dir) => runInput(dir));
  if (first === undefined) throw new Error('parse() always gives at least one results folder');
  const loaded = first.suites;
  const results = okResults(loaded);
  const resultsDir = first.resultsDir;
  const document = renderDocument({
    ...first,
    versions: packageVersions(REPO_ROOT, results),
    chartFile: CHART,
    otherRuns: others,
  });
  const data = chartData(results);
  const chart = renderChart(data, {
    subtitle: chartSubtitle(results),
    footnotes: [
      `Source: ${resultsDir}/*.json, written by npm run bench; drawn by npx tsx tools/bench/report/generate.ts. ` +
        'Loopback servers on the same cores as the clients; compare ratios rather than absolute rates, and see PERFORMANCE.md for the ' +
        'spread of every figure and the caveats.' +
        mongoServerNote(results),
    ],
  });
  mkdirSync(args.out, { recursive: true });
  const documentPath = join(args.out, DOCUMENT);
  // Formatted as `npm run format` would, so that formatting the repository leaves the file alone.
  const config = (await resolveConfig(documentPath)) ?? {};
  const kept = withHandRunBlocks(document, documentPath);
  writeFileSync(documentPath, await format(kept, { ...config, filepath: documentPath }));
  writeFileSync(join(args.out, CHART), chart);

  if (others.length > 0) process.stderr.write(`run 1: ${resultsDir}\n`);
  for (const suite of loaded) {
    const status =
      suite.kind !== 'ok'
        ? `${suite.kind}: ${suite.reason}`
        : suite.result.skipped !== undefined
          ? `skipped: ${suite.result.skipped}`
          : `${suite.result.cases.length} cases`;
    process.stderr.write(`${suite.name.padEnd(10)} ${status}\n`);
  }
  others.forEach((run, i) =>
    process.stderr.write(`run ${i + 2}: ${run.resultsDir}, ${run.suites.filter((l) => l.kind === 'ok').length} suites with results\n`),
  );
  process.stderr.write(
    `wrote ${shown(join(args.out, DOCUMENT))} and ${shown(join(args.out, CHART))} ` +
      `(chart: ${data.groups.length} operation groups, ${data.lockRows.length} lock rows)\n`,
  );
  return 0;
}

function okResults(loaded: readonly LoadedSuite[]): SuiteResult[] {
  return loaded.flatMap((s) => (s.kind === 'ok' ? [s.result] : []));
}

/** One run's results folder, loaded (`names`: only these suites). */
function runInput(dir: string, names?: readonly string[]): RunInput {
  const suites = loadResults(dir).filter((s) => names === undefined || names.includes(s.name));
  return { suites, run: runInfo(okResults(suites)), resultsDir: shown(dir) };
}

const HAND_RUN = /<!-- begin hand-run: [^>]*-->[\s\S]*?<!-- end hand-run: [^>]*-->\n/g;

/**
 * `document` with the hand-run blocks of the existing document (`<!-- begin hand-run: … -->` to
 * `<!-- end hand-run: … -->`, sections measured by a tool outside `npm run bench`, each giving
 * its own command, date and load) put back before the caveats, so that regenerating keeps them.
 */
function withHandRunBlocks(document: string, documentPath: string): string {
  let existing: string;
  try {
    existing = readFileSync(documentPath, 'utf8');
  } catch {
    return document;
  }
  const blocks = existing.match(HAND_RUN) ?? [];
  if (blocks.length === 0) return document;
  const caveats = document.indexOf('\n## Caveats');
  const at = caveats >= 0 ? caveats + 1 : document.length;
  return `${document.slice(0, at)}${blocks.join('\n')}\n${document.slice(at)}`;
}

/** `--suites`: renders those suites' block and puts it into the existing document (before its caveats, or in place of the old block). */
async function spliceSuites(args: Arguments, names: readonly string[]): Promise<number> {
  const documentPath = join(args.out, DOCUMENT);
  let existing: string;
  try {
    existing = readFileSync(documentPath, 'utf8');
  } catch (error) {
    process.stderr.write(`--suites needs the existing ${shown(documentPath)} to splice into: ${String(error)}\n`);
    return 1;
  }
  const [first, ...others] = args.from.map((dir) => runInput(dir, names));
  if (first === undefined) throw new Error('parse() always gives at least one results folder');
  const loaded = first.suites;
  const block = renderSuiteBlock({
    ...first,
    versions: packageVersions(REPO_ROOT, okResults(loaded)).filter((v) => v.recorded.length > 0),
    chartFile: CHART,
    otherRuns: others,
  });
  const { begin, end } = suiteBlockMarkers(loaded.map((s) => s.name));
  const start = existing.indexOf(begin);
  const stop = existing.indexOf(end);
  let document: string;
  if (start >= 0 && stop > start) document = `${existing.slice(0, start)}${block}${existing.slice(stop + end.length + 1)}`;
  else {
    const caveats = existing.indexOf('\n## Caveats');
    const at = caveats >= 0 ? caveats + 1 : existing.length;
    document = `${existing.slice(0, at)}${block}\n${existing.slice(at)}`;
  }
  const config = (await resolveConfig(documentPath)) ?? {};
  writeFileSync(documentPath, await format(document, { ...config, filepath: documentPath }));
  for (const suite of loaded)
    process.stderr.write(`${suite.name.padEnd(10)} ${suite.kind === 'ok' ? `${suite.result.cases.length} cases` : suite.kind}\n`);
  process.stderr.write(`spliced ${loaded.map((s) => s.name).join(', ')} into ${shown(documentPath)} (the chart is unchanged)\n`);
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
