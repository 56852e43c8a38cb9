/**
 * `docs/PERFORMANCE.md`: how to regenerate it, the run (machine, versions, timing, load), the
 * goals at a glance, one section per suite with its tables and checked goals, and the caveats.
 * Every figure comes from the results files; a suite without results says why.
 *
 * @module
 */
import { formatMs, formatNumber, formatRate, type CaseResult, type ContenderResult } from '../harness/index.js';
import type { LoadedSuite } from './load.js';
import { dateText, rangeText, timingText, type RunInfo } from './run-info.js';
import {
  ACQUIRE_FAILURES_KEY,
  ALL_COMMANDS_KEY,
  checkCase,
  goalsOfSuite,
  isLockCase,
  SENT_KEY,
  unmatchedGoals,
  type CheckedTarget,
  type Verdict,
} from './targets.js';
import { peersFaster } from './peers.js';
import { mergeRuns, RUNS_NEEDED, type Settled } from './runs.js';
import type { PackageVersion } from './versions.js';

/** The generator's command. */
const GENERATE = 'npx tsx tools/bench/report/generate.ts';
/** The results folders of the two full runs the regeneration commands use (inside the git-ignored `.bench-results`). */
export const TWO_RUN_FOLDERS = ['.bench-results/run-1', '.bench-results/run-2'] as const;
/** The commands a reader runs to reproduce the document: two full runs into two folders, then the generator over both. */
export const REGENERATE_COMMANDS = {
  runs: TWO_RUN_FOLDERS.map((dir) => `npm run bench -- --out ${dir}`),
  generate: `${GENERATE} ${TWO_RUN_FOLDERS.map((dir) => `--from ${dir}`).join(' ')}`,
  /** The generator over the default folder (one run). */
  generateOne: GENERATE,
} as const;

/** One run's results. */
export interface RunInput {
  readonly suites: readonly LoadedSuite[];
  readonly run: RunInfo;
  /** The results folder as the reader should type it (`.bench-results/run-1`). */
  readonly resultsDir: string;
}

/** What the document is built from: the run the suite sections and the chart show, and any further runs for the goals. */
export interface DocumentInput extends RunInput {
  readonly versions: readonly PackageVersion[];
  /** The chart's file name, relative to the document. */
  readonly chartFile: string;
  /** The other full runs (`--from` given more than once): their goals and load appear beside the first run's. */
  readonly otherRuns?: readonly RunInput[];
}

/** Every run of the input, the first (the one shown in the sections) first. */
function allRuns(input: DocumentInput): readonly RunInput[] {
  return [input, ...(input.otherRuns ?? [])];
}

/** Clearer column names for the command counts than the harness's short ones. */
const METRIC_LABELS: Readonly<Record<string, string>> = {
  [SENT_KEY]: 'commands sent by clients / increment',
  [ALL_COMMANDS_KEY]: 'commands incl. those inside Lua scripts / increment',
};

function cell(content: string): string {
  return content.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function tableRow(cells: readonly string[]): string {
  return `| ${cells.map(cell).join(' | ')} |`;
}

function table(headers: readonly string[], rows: readonly (readonly string[])[], alignRight: (index: number) => boolean): string[] {
  return [tableRow(headers), `| ${headers.map((_, i) => (alignRight(i) ? '---:' : '---')).join(' | ')} |`, ...rows.map(tableRow)];
}

function mark(verdict: Verdict): string {
  return verdict.status === 'pass' ? '✅' : verdict.status === 'fail' ? '❌' : '⚪';
}

function measuredText(verdict: Verdict): string {
  if (verdict.status === 'not measured') return `not measured: ${verdict.reason}`;
  return verdict.source === 'derived' ? `${verdict.measured} (derived†)` : verdict.measured;
}

function goalLine(target: CheckedTarget): string {
  const verdict = target.verdict;
  if (verdict.status === 'not measured') return `- ${mark(verdict)} goal ${target.label}: *not measured* (${verdict.reason})`;
  const [value, ...rest] = measuredText(verdict).split('; ');
  return `- ${mark(verdict)} goal ${target.label}: **${value ?? ''}**${rest.map((r) => `; ${r}`).join('')}`;
}

function utc(iso: string): string {
  return iso
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC')
    .replace(/Z$/, ' UTC');
}

function notRunReason(loaded: LoadedSuite): string | undefined {
  if (loaded.kind !== 'ok')
    return loaded.kind === 'missing' ? `not run: ${loaded.reason}` : `not usable: the results file could not be read (${loaded.reason})`;
  if (loaded.result.skipped !== undefined) return `not run: ${loaded.result.skipped}`;
  if (loaded.result.error !== undefined && loaded.result.cases.length === 0) return `failed: ${loaded.result.error}`;
  return undefined;
}

function runSection(input: DocumentInput): string[] {
  const { run } = input;
  const lines: string[] = ['## The run', ''];
  const rows: string[][] = [];
  // With several runs the rows below describe run 1, the one the sections show; the runs table has them all.
  const of1 = allRuns(input).length > 1 ? ' (run 1)' : '';
  rows.push([`date${of1}`, run.started === undefined ? 'no suite ran' : dateText(run.started)]);
  rows.push(['machine', run.machines.length === 0 ? 'not recorded' : run.machines.join('; ')]);
  rows.push(['Node.js', run.node.length === 0 ? 'not recorded' : run.node.join(', ')]);
  const timing = run.timings.map(timingText).join('; ');
  const caseTimings = run.caseTimings.map((e) => `${e.cases.join(', ')}: ${timingText(e.timing)}`).join('; ');
  rows.push([
    'rounds',
    `${timing.length === 0 ? 'not recorded' : `every contender: ${timing}`}${caseTimings.length === 0 ? '' : `; except ${caseTimings}`}. ` +
      'Rounds are interleaved: round r runs every contender of a case once, in an order rotated by r.',
  ]);
  const runs = allRuns(input);
  rows.push([
    'runs',
    `${
      runs.length === 1
        ? `one \`npm run bench\` (from \`${input.resultsDir}\`), so no goal counts as met yet: a goal is met only when it holds in ${RUNS_NEEDED} full runs`
        : `${runs.length} full runs of \`npm run bench\` (${runs.map((r, i) => `run ${i + 1}: \`${r.resultsDir}\``).join(', ')}); ` +
          'the goals table shows each run, the suite sections and the chart show run 1'
    }; each rate is the median of its rounds, each ratio the median of the per-round ratios to the baseline (rounds paired)`,
  ]);
  const load: string[] = [];
  if (run.busyPct !== undefined) load.push(`CPUs ${rangeText(run.busyPct)} busy`);
  if (run.stealPct !== undefined) load.push(`${rangeText(run.stealPct)} of CPU time stolen by the hypervisor`);
  if (run.load1 !== undefined) load.push(`1-minute load average ${rangeText(run.load1, 2, '')} at the suites' starts`);
  rows.push([`machine load${of1}`, load.length === 0 ? 'not recorded' : `while the suites ran: ${load.join('; ')} (per suite below)`]);
  for (const [what, value] of rows) lines.push(`- **${what}**: ${value}`);
  lines.push('');
  if (runs.length > 1) lines.push(...runsTable(runs));

  lines.push('### Suites', '');
  const suiteRows = input.suites.map((loaded): string[] => {
    const reason = notRunReason(loaded);
    if (loaded.kind !== 'ok' || reason !== undefined) return [`\`${loaded.name}\``, reason ?? '', '', '', '', ''];
    const r = loaded.result;
    const status = [
      'ran',
      ...(r.environment.quick ? ['with --quick (not for quoting)'] : []),
      ...(r.error === undefined ? [] : [`with an error: ${r.error}`]),
      ...(r.cases.some((c) => c.error !== undefined) ? ['(a case failed)'] : []),
    ].join(' ');
    return [
      `\`${r.name}\``,
      status,
      utc(r.environment.startedAt),
      r.environment.loadAverage.map((l) => l.toFixed(2)).join(' / '),
      r.machine === undefined ? 'not recorded' : `${r.machine.busyPct.toFixed(0)}%`,
      r.machine === undefined ? 'not recorded' : `${r.machine.stealPct.toFixed(0)}%`,
    ];
  });
  lines.push(
    ...table(['suite', 'status', 'started', 'load average at start (1 / 5 / 15 min)', 'CPUs busy', 'CPU stolen'], suiteRows, (i) => i >= 4),
    '',
  );

  lines.push('### Package versions', '');
  const versionRows = input.versions.map((v) => {
    const recorded = v.recorded.length === 0 ? '—' : v.recorded.join(', ');
    const differs = v.installed !== undefined && v.recorded.length > 0 && (v.recorded.length > 1 || v.recorded[0] !== v.installed);
    return [`\`${v.name}\``, v.installed ?? 'not installed', differs ? `${recorded} ⚠ differs from the installed version` : recorded];
  });
  lines.push(...table(['package', 'installed (node_modules)', 'recorded by the suites at run time'], versionRows, () => false), '');
  lines.push(
    'Server versions are in each suite\'s notes below. "—": the suites that ran do not name the package in their notes ' +
      '(msgpackr is used by the codec suite; suites that did not run record nothing).',
    '',
  );
  return lines;
}

/** The runs, one row each: folder, date and load (the two-run rule needs to show both). */
function runsTable(runs: readonly RunInput[]): string[] {
  const rows = runs.map((r, i) => [
    `run ${i + 1}`,
    `\`${r.resultsDir}\``,
    r.run.started === undefined ? 'no suite ran' : dateText(r.run.started),
    r.run.busyPct === undefined ? 'not recorded' : rangeText(r.run.busyPct),
    r.run.stealPct === undefined ? 'not recorded' : rangeText(r.run.stealPct),
    r.run.load1 === undefined ? 'not recorded' : rangeText(r.run.load1, 2, ''),
    r.run.quickSuites.length === 0 ? '' : `--quick: ${r.run.quickSuites.join(', ')} (not for quoting)`,
  ]);
  return [
    '### Runs',
    '',
    ...table(
      ['run', 'results folder', 'date', 'CPUs busy', 'CPU stolen', "1-minute load average at the suites' starts", 'note'],
      rows,
      () => false,
    ),
    '',
  ];
}

function settledMark(settled: Settled): string {
  switch (settled.status) {
    case 'met':
      return '✅';
    case 'not met':
      return '❌';
    case 'not settled':
      return '⏳';
    default:
      return '⚪';
  }
}

/** Cases where keyv, redlock or redis-semaphore beat latchkey and no goal compares the two (the goals table has the rest). */
function peersSection(runs: readonly RunInput[], runHeaders: readonly string[]): string[] {
  const faster = peersFaster(runs.map((r) => r.suites.flatMap((s) => (s.kind === 'ok' ? [s.result] : []))));
  if (faster.length === 0) return [];
  const rows = faster.map((p) => [
    `\`${p.suite}\``,
    p.caseName,
    `${p.latchkey} vs ${p.peer}`,
    ...p.ratios.map((ratio) => (ratio === undefined ? 'not measured' : `${ratio.toFixed(2)}×${ratio < 1 ? ` (${p.peer} faster)` : ''}`)),
  ]);
  return [
    'Where a peer (keyv, redlock, redis-semaphore) was faster than latchkey on a case no goal compares them on ' +
      "(latchkey's rate over the peer's, median of the per-round ratios; no goal is set for these):",
    '',
    ...table(['suite', 'case', 'contenders', ...runHeaders], rows, () => false),
    '',
  ];
}

/** One run's figure of a goal, in words (the emoji are kept for the verdict over the runs). */
function runCell(verdict: Verdict | undefined): string {
  if (verdict === undefined) return 'no such goal in this run';
  if (verdict.status === 'not measured') return measuredText(verdict);
  return `${verdict.status === 'pass' ? 'held' : 'missed'}: ${measuredText(verdict)}`;
}

function goalsSection(input: DocumentInput, checked: readonly CheckedTarget[]): string[] {
  const lines: string[] = ['## Goals at a glance', ''];
  const runs = allRuns(input);
  const perRun = [checked, ...runs.slice(1).map((run) => run.suites.flatMap((loaded) => suiteSection(loaded).issue))];
  lines.push(
    `From ${runs.map((r) => `\`${r.resultsDir}/*.json\``).join(' and ')} (written by \`npm run bench\`), by \`${GENERATE}\`. ` +
      'Throughput goals compare latchkey with the raw driver doing the same job by hand (JSON by hand), with keyv, and with ' +
      'redlock and redis-semaphore, as the median of the per-round ratios. ' +
      `**A goal is met only when it holds in every run and in at least ${RUNS_NEEDED} full runs**` +
      (runs.length < RUNS_NEEDED
        ? `: this report has one run, so a goal that held in it says "not settled", not met. ${RUNS_NEEDED} runs: \`${REGENERATE_COMMANDS.generate}\`.`
        : '.') +
      ' ✅ met, ❌ not met, ⏳ not settled, ⚪ not measured; the suite sections below show run 1 only.',
    '',
  );
  if (perRun.every((run) => run.length === 0)) {
    lines.push('No goal could be checked: no suite with goals has results.', '');
    return lines;
  }
  const merged = mergeRuns(perRun);
  const measuredHeaders = runs.length === 1 ? ['measured'] : runs.map((_, i) => `run ${i + 1}`);
  const rows = merged.map((g) => [
    `\`${g.suite}\``,
    g.caseName,
    g.label,
    ...g.verdicts.map(runCell),
    `${settledMark(g.settled)} ${g.settled.text}`,
  ]);
  lines.push(...table(['suite', 'case', 'goal', ...measuredHeaders, 'verdict'], rows, () => false), '');
  const counts = (['met', 'not met', 'not settled', 'not measured'] as const)
    .map((status) => [status, merged.filter((g) => g.settled.status === status).length] as const)
    .filter(([, n]) => n > 0)
    .map(([status, n]) => `${n} ${status}`);
  lines.push(`${merged.length} goals: ${counts.join(', ')}.`, '');
  lines.push(...peersSection(runs, measuredHeaders));
  if (perRun.flat().some((t) => t.verdict.status !== 'not measured' && t.verdict.source === 'derived'))
    lines.push(
      '† The harness did not record this goal for this run; the generator worked it out from the recorded per-round rates ' +
        "with the harness's own paired ratio.",
      '',
    );
  return lines;
}

function contenderRow(contender: ContenderResult, result: CaseResult, showFailed: boolean): string[] {
  const name = contender.baseline ? `**${contender.name}** (baseline)` : contender.name;
  const rate = contender.opsPerSec;
  const columns = 3 + (result.latency ? 2 : 0) + (showFailed ? 1 : 0) + result.metrics.length;
  if (rate === undefined) return [name, 'not measured', ...Array<string>(columns - 1).fill('')];
  const cells = [
    name,
    formatRate(rate.median),
    `±${(rate.spreadPct / 2).toFixed(0)}%`,
    contender.ratio === undefined ? '—' : `${contender.ratio.toFixed(2)}×`,
  ];
  if (result.latency)
    cells.push(
      contender.latency === undefined ? '—' : formatMs(contender.latency.p50),
      contender.latency === undefined ? '—' : formatMs(contender.latency.p99),
    );
  if (showFailed) cells.push(formatNumber(contender.failed));
  for (const metric of result.metrics) {
    const value = contender.metrics[metric.key];
    cells.push(value === undefined ? '—' : formatNumber(value, metric.digits ?? 0));
  }
  return cells;
}

function caseSection(suite: string, result: CaseResult): { lines: string[]; issue: readonly CheckedTarget[] } {
  const lines: string[] = [`### ${suite}: ${result.name}`, ''];
  const flight = result.mode === 'sync' ? 'a synchronous loop' : `${result.concurrency} in flight`;
  lines.push(`${result.description}. *${flight}; ${timingText(result.timing)} per contender, interleaved.*`, '');
  const targets = checkCase(suite, result);
  if (result.error !== undefined && result.contenders.length === 0) {
    lines.push(`**Case failed, no figures:** ${result.error}`, '');
    const failed = targets.issue.map((t): CheckedTarget => ({
      ...t,
      verdict: { status: 'not measured', reason: `the case failed: ${result.error ?? ''}` },
    }));
    for (const t of failed) lines.push(goalLine(t));
    if (failed.length > 0) lines.push('');
    return { lines, issue: failed };
  }
  const showFailed = result.contenders.some((c) => c.failed > 0);
  const headers = ['contender', 'ops/s (median)', 'spread', `× ${result.baseline}`];
  if (result.latency) headers.push('p50 ms', 'p99 ms');
  if (showFailed) headers.push('failed ops');
  for (const metric of result.metrics) headers.push(METRIC_LABELS[metric.key] ?? metric.label);
  lines.push(
    ...table(
      headers,
      result.contenders.map((c) => contenderRow(c, result, showFailed)),
      (i) => i > 0,
    ),
    '',
  );
  for (const contender of result.contenders) {
    const what = contender.unavailable !== undefined ? `*not measured:* ${contender.unavailable}` : (contender.does ?? '');
    if (what.length > 0) lines.push(`- **${contender.name}**: ${what}`);
  }
  for (const contender of result.contenders)
    if (contender.firstError !== undefined && contender.unavailable === undefined)
      lines.push(`- first error of **${contender.name}**: ${contender.firstError}`);
  if (result.error !== undefined) lines.push(`- **case error:** ${result.error}`);
  if (isLockCase(result)) {
    const failing = result.contenders.filter((c) => (c.metrics[ACQUIRE_FAILURES_KEY] ?? 0) > 0);
    for (const c of failing)
      lines.push(
        `- **${c.name}**: ${formatNumber(c.metrics[ACQUIRE_FAILURES_KEY] ?? 0)} acquisitions ran out of their wait budget over the rounds ` +
          '(counted as failed operations, not as lost updates).',
      );
    if (result.metrics.some((m) => m.key === SENT_KEY))
      lines.push(
        '- Commands per increment come from a separate, untimed pass. *Sent by clients* counts what the clients put on the wire ' +
          '(`MONITOR`, without script-internal calls); *incl. those inside Lua scripts* counts every command the server ran ' +
          '(`INFO commandstats`), so each `redis.call` inside a script counts too. The ≤ 6 goal is read against commands sent.',
      );
  }
  lines.push('');
  if (targets.issue.length + targets.other.length > 0) {
    for (const t of targets.issue) lines.push(goalLine(t));
    for (const t of targets.other) lines.push(goalLine(t).replace(/^- (\S+) goal /, '- $1 check: '));
    lines.push('');
  }
  return { lines, issue: targets.issue };
}

function suiteSection(loaded: LoadedSuite): { lines: string[]; issue: CheckedTarget[] } {
  const reason = notRunReason(loaded);
  const title = loaded.kind === 'ok' ? `## \`${loaded.name}\`: ${loaded.result.title}` : `## \`${loaded.name}\``;
  const lines: string[] = [title, ''];
  const command = `npx tsx tools/bench/run.ts ${loaded.name}`;
  if (loaded.kind !== 'ok' || reason !== undefined) {
    lines.push(`**${reason ?? 'not run'}**`, '');
    lines.push(`To run it: \`${command}\` (after \`npm run build\`), then \`${GENERATE} --suites ${loaded.name}\`.`, '');
    const issue = goalsOfSuite(loaded.name).map((t): CheckedTarget => ({
      suite: loaded.name,
      caseName: t.caseLabel,
      label: t.label,
      verdict: {
        status: 'not measured',
        reason: loaded.kind === 'unreadable' ? 'the suite has no usable results' : 'the suite did not run',
      },
    }));
    for (const t of issue) lines.push(goalLine(t));
    if (issue.length > 0) lines.push('');
    return { lines, issue };
  }
  const r = loaded.result;
  lines.push('Produced by (the packages built first, as `npm run bench` does):', '', '```sh', command, '```', '');
  lines.push(r.description, '');
  const machine =
    r.machine === undefined ? '' : `; CPUs ${r.machine.busyPct.toFixed(0)}% busy, ${r.machine.stealPct.toFixed(0)}% stolen while it ran`;
  lines.push(
    `*Run ${utc(r.environment.startedAt)}; load average ${r.environment.loadAverage.map((l) => l.toFixed(2)).join(' / ')} at start${machine}` +
      `${r.environment.quick ? '; **--quick: a smoke run, not for quoting**' : ''}.*`,
    '',
  );
  for (const note of r.notes) lines.push(`- ${note}`);
  if (r.notes.length > 0) lines.push('');
  lines.push(
    '*ops/s*: median over the rounds; *spread*: ± half the range of the per-round rates, relative to the median; ' +
      '*×*: median of the per-round ratios to the baseline; *p50/p99 ms*: per-operation latency percentiles, median over the rounds.',
    '',
  );
  if (r.error !== undefined) lines.push(`**Suite error:** ${r.error}`, '');
  const issue: CheckedTarget[] = [];
  for (const result of r.cases) {
    const section = caseSection(r.name, result);
    lines.push(...section.lines);
    issue.push(...section.issue);
  }
  for (const missing of unmatchedGoals(r)) {
    const target: CheckedTarget = {
      suite: r.name,
      caseName: missing.caseLabel,
      label: missing.label,
      verdict: { status: 'not measured', reason: 'the case is not in the results' },
    };
    lines.push(goalLine(target));
    issue.push(target);
  }
  for (const section of r.sections) lines.push(section, '');
  return { lines, issue };
}

/** `FerretDB 1.x (SQLite backend)` from a note like `server: throwaway FerretDB 1.x (SQLite backend) on 127.0.0.1:30770 (…), …`. */
function serverName(note: string): string {
  const text = note.replace(/^server:\s*/, '').replace(/^throwaway\s+/, '');
  const at = text.search(/ on \d+\.\d+\.\d+\.\d+:\d+/);
  return at > 0 ? text.slice(0, at) : text;
}

function caveats(input: DocumentInput): string[] {
  const { run } = input;
  const lines: string[] = ['## Caveats', ''];
  if (run.started === undefined) return [...lines, 'No suite ran, so there are no figures to qualify.', ''];
  const shared = run.stealPct !== undefined && run.stealPct.max > 0;
  const load: string[] = [];
  if (run.busyPct !== undefined) load.push(`the CPUs were ${rangeText(run.busyPct)} busy`);
  if (run.stealPct !== undefined) load.push(`the hypervisor stole ${rangeText(run.stealPct)} of the CPU time`);
  if (run.load1 !== undefined) load.push(`the 1-minute load average was ${rangeText(run.load1, 2, '')} at the suites' starts`);
  lines.push(
    `- **${shared ? 'A shared VM.' : 'The machine.'}** ${
      run.machines.length === 0
        ? 'The machine was not recorded.'
        : `The run used ${run.machines.join('; ')}${shared ? ', a virtual machine sharing its host' : ''}.`
    } ` +
      `${load.length === 0 ? '' : `While the suites ran ${load.join(', ')}. `}` +
      'Per-round rates swing widely under such load (see the spread columns); ratios are steadier because the contenders of a case ' +
      'run back to back, but on this machine they have moved by 0.2–0.3 between runs (tools/bench/README.md), so a goal met or ' +
      'missed by less than about 30% is not settled by one run. Compare ratios; read absolute ops/s only with the load figures.',
  );
  lines.push(
    '- **Loopback.** Clients and servers share the same cores over 127.0.0.1: network latency, which dominates real deployments, is ' +
      'close to zero, so client-side CPU weighs more than it would in production and batching (getMany, pipelining) gains less.',
  );
  const mongo = input.suites.find((s) => s.name === 'mongo');
  if (mongo?.kind === 'ok' && mongo.result.skipped === undefined) {
    const server = mongo.result.notes.find((n) => n.startsWith('server:')) ?? '';
    const keyvMissing = mongo.result.cases.some((c) => c.contenders.some((k) => k.name === 'keyv' && k.unavailable !== undefined));
    if (/ferretdb/i.test(server))
      lines.push(
        `- **FerretDB is not MongoDB.** The mongo suite ran on ${serverName(server)}: its absolute rates say nothing ` +
          'about MongoDB, and its ratios speak only for the client side (the driver and what latchkey adds to it).' +
          (keyvMissing ? ' keyv is not measured there; its rows give the reason.' : ''),
      );
    else lines.push(`- **The mongo suite's server** was: ${server.replace(/^server:\s*/, '') || 'not recorded'}.`);
  }
  lines.push(
    '- **Medians and ratios, not single runs.** Every rate is the median of its rounds and every ratio the median of the per-round ' +
      `ratios, the suite sections from one invocation of \`npm run bench\` (${allRuns(input).length === 1 ? 'the only one given' : 'run 1'}); no single round is quoted. The memory suite compares with a \`Map\` of v8 copies ` +
      '(the same isolation latchkey gives), not with a driver.',
  );
  if (run.quickSuites.length > 0)
    lines.push(`- **Smoke figures.** ${run.quickSuites.map((s) => `\`${s}\``).join(', ')} ran with \`--quick\`: too short to quote.`);
  if (run.spanHours > 2)
    lines.push(
      `- **Mixed runs.** The suites' results were started ${run.spanHours.toFixed(0)} hours apart: they come from different runs.`,
    );
  lines.push('');
  return lines;
}

/** The whole document. */
export function renderDocument(input: DocumentInput): string {
  const lines: string[] = [
    '# Performance',
    '',
    '<!-- Generated by tools/bench/report/generate.ts from the results of `npm run bench`; do not edit by hand. -->',
    '',
    "How latchkey's stores compare with the raw drivers they wrap and with keyv, and how its locks compare with redlock and " +
      'redis-semaphore, as measured by the benchmarks in `tools/bench` (how they measure: [tools/bench/README.md](../tools/bench/README.md)). ' +
      'Every figure below is read from the results files of a run; none is typed in by hand.',
    '',
    '## How to regenerate',
    '',
    '```sh',
    ...REGENERATE_COMMANDS.runs.map(
      (command, i) =>
        `${command.padEnd(48)} # ${i === 0 ? 'builds the packages, runs every suite, writes' : 'a second full run, into'} ${TWO_RUN_FOLDERS[i]}/<suite>.{md,json} (about 8 minutes)`,
    ),
    `${REGENERATE_COMMANDS.generate}`,
    `${''.padEnd(48)} # this file and docs/${input.chartFile}: goals from both runs, sections and chart from the first`,
    '```',
    '',
    `A goal counts as met only when it holds in ${RUNS_NEEDED} full runs, so the generator takes each run's folder (\`--from\` once per run; ` +
      'the first is the one the suite sections and the chart show). Run them on an otherwise idle machine. `npm run bench` writes to ' +
      '`.bench-results` unless given `--out <dir>` (or `LATCHKEY_BENCH_RESULTS=<dir>`); the generator reads `.bench-results` unless given `--from`. ' +
      "One suite: `npx tsx tools/bench/run.ts <suite>` (after `npm run build`); each suite's section below starts with its command.",
    '',
  ];
  const notRun = input.suites.filter((s) => notRunReason(s) !== undefined);
  if (notRun.length > 0)
    lines.push(`> **Not in this report:** ${notRun.map((s) => `\`${s.name}\` (${notRunReason(s) ?? ''})`).join('; ')}.`, '');
  if (input.run.quickSuites.length > 0)
    lines.push(
      `> **Smoke run:** ${input.run.quickSuites.map((s) => `\`${s}\``).join(', ')} ran with \`--quick\`; do not quote these figures.`,
      '',
    );

  lines.push(...runSection(input));
  lines.push('## Chart', '');
  lines.push(
    `![Throughput of latchkey and keyv relative to the raw driver per backend and operation, and lock handoff p50 and increments/s per backend and lock library](${input.chartFile})`,
    '',
  );
  const sections = input.suites.map(suiteSection);
  lines.push(
    ...goalsSection(
      input,
      sections.flatMap((s) => s.issue),
    ),
  );
  for (const section of sections) lines.push(...section.lines);
  lines.push(...caveats(input));
  return `${lines
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`;
}

/** The markers around a block of suites rendered apart from the rest of the document (see {@link renderSuiteBlock}). */
export function suiteBlockMarkers(suites: readonly string[]): { readonly begin: string; readonly end: string } {
  const names = suites.join(', ');
  return {
    begin: `<!-- begin suites: ${names} (generated by tools/bench/report/generate.ts --suites ${suites.join(',')}) -->`,
    end: `<!-- end suites: ${names} -->`,
  };
}

/**
 * The sections of a few suites that ran apart from the run the rest of the document shows
 * (`generate.ts --suites a,b` splices it in before the caveats): their run and load, their
 * goals, and one section per suite, every heading one level down. Every figure comes from
 * their results files, as in {@link renderDocument}.
 */
export function renderSuiteBlock(input: DocumentInput): string {
  const names = input.suites.map((s) => s.name);
  const { begin, end } = suiteBlockMarkers(names);
  const { run } = input;
  const command = `npx tsx tools/bench/run.ts ${names.join(' ')}`;
  // A load average at or above the number of CPUs: other work queued for every core while the suites ran.
  const cpus = Math.min(...input.suites.flatMap((s) => (s.kind === 'ok' ? [s.result.environment.cpus] : [])));
  const lines: string[] = [begin, '', `## ${names.map((n) => `\`${n}\``).join(' and ')}: a separate run`, ''];
  lines.push(
    `These suites ran apart from the run above, with \`${command}\` (after \`npm run build\`), and this section was made from their ` +
      `results by \`${GENERATE} --suites ${names.join(',')}\`, which leaves the rest of the document as it is.`,
    '',
  );
  const load: string[] = [];
  if (run.busyPct !== undefined) load.push(`the CPUs were ${rangeText(run.busyPct)} busy`);
  if (run.stealPct !== undefined) load.push(`the hypervisor stole ${rangeText(run.stealPct)} of the CPU time`);
  if (run.load1 !== undefined) load.push(`the 1-minute load average was ${rangeText(run.load1, 2, '')} at the suites' starts`);
  if (run.started !== undefined)
    lines.push(
      `- **When and where**: ${dateText(run.started)}; ${run.machines.join('; ') || 'machine not recorded'}; Node.js ${run.node.join(', ') || '?'}; ` +
        `rounds: ${run.timings.map(timingText).join('; ') || 'not recorded'}.`,
      `- **Load**: ${load.length === 0 ? 'not recorded' : load.join(', ')}. ` +
        (run.load1 !== undefined && run.load1.max >= cpus
          ? '**A loaded machine** (a load average at or above its CPU count): other test suites shared its cores while these ran, so the absolute rates are low and the ratios ' +
            'move more than usual between runs (see the caveats below); rerun on an idle machine before quoting them.'
          : ''),
      '',
    );
  const full = runSection(input);
  const from = full.indexOf('### Suites');
  // The run section's last paragraph speaks of the suites of a full run: the server versions are in the notes here too.
  if (from >= 0) lines.push(...full.slice(from).filter((line) => !line.startsWith('Server versions are in')));
  const sections = input.suites.map(suiteSection);
  lines.push(
    ...goalsSection(
      input,
      sections.flatMap((s) => s.issue),
    ),
  );
  for (const section of sections) lines.push(...section.lines);
  // Every heading but the block's own one level down: the suites' sections sit under it.
  const body = lines.map((line, i) => (i > 2 && /^#{2,5} /.test(line) ? `#${line}` : line));
  body.push(end);
  return `${body
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`;
}
