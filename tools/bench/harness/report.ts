/**
 * Results as markdown (one table per case) and JSON, printed and written to
 * `.bench-results/<suite>.{md,json}` at the repository root.
 *
 * @module
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorMessage } from './errors.js';
import type { CaseResult, ContenderResult, Environment, SuiteResult } from './types.js';

/** The repository root (three levels above this file). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Where results are written. */
export const RESULTS_DIR = join(REPO_ROOT, '.bench-results');

/** A rate with three significant figures and thousands separators: `41,200`, `1,230,000`, `12.3`. */
export function formatRate(value: number): string {
  if (!Number.isFinite(value)) return '—';
  if (value >= 1000) {
    const magnitude = 10 ** (Math.floor(Math.log10(value)) - 2);
    return (Math.round(value / magnitude) * magnitude).toLocaleString('en-US');
  }
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

/** A number with a fixed number of decimals and thousands separators. */
export function formatNumber(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return '—';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A latency in ms: `0.42`, `3.1`, `120`. */
export function formatMs(value: number): string {
  if (!Number.isFinite(value)) return '—';
  if (value < 1) return value.toFixed(3);
  return value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0);
}

/** Escapes a table cell. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** The one-line description of the machine and the timing. */
export function environmentLine(env: Environment): string {
  const load = env.loadAverage.map((l) => l.toFixed(2)).join(' / ');
  return (
    `Node ${env.node} · ${env.platform} · ${env.cpus} × ${env.cpuModel} · load ${load} at start · ` +
    `default ${env.timing.rounds} rounds × ${env.timing.roundMs} ms per contender after a ${env.timing.warmupMs} ms warm-up` +
    `${env.quick ? ' (--quick)' : ''} · ${env.startedAt}`
  );
}

/** The markdown of one case: heading, what it measures, table, contenders, targets. */
export function caseMarkdown(result: CaseResult): string {
  const lines: string[] = [];
  const flight = result.mode === 'sync' ? 'synchronous loop' : `${result.concurrency} in flight`;
  lines.push(`### ${result.name}`, '');
  lines.push(
    `${result.description}. *${flight}; ${result.timing.rounds} × ${result.timing.roundMs} ms rounds per contender, interleaved.*`,
    '',
  );
  if (result.error !== undefined && result.contenders.length === 0) {
    lines.push(`**Case failed:** ${result.error}`, '');
    return lines.join('\n');
  }
  const showFailed = result.contenders.some((c) => c.failed > 0);
  const headers = ['contender', 'ops/s (median)', 'spread', `× ${result.baseline}`];
  if (result.latency) headers.push('p50 ms', 'p99 ms');
  if (showFailed) headers.push('failed ops');
  for (const metric of result.metrics) headers.push(metric.label);
  lines.push(`| ${headers.map(cell).join(' | ')} |`);
  lines.push(`| ${headers.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`);
  for (const contender of result.contenders) lines.push(row(contender, result, showFailed));
  lines.push('');
  for (const contender of result.contenders) {
    const what = contender.unavailable !== undefined ? `*not measured:* ${contender.unavailable}` : (contender.does ?? '');
    if (what.length > 0) lines.push(`- **${contender.name}**: ${what}`);
  }
  const errors = result.contenders.filter((c) => c.firstError !== undefined && c.unavailable === undefined);
  for (const contender of errors) lines.push(`- first error of **${contender.name}**: ${contender.firstError}`);
  if (result.error !== undefined) lines.push(`- **case error:** ${result.error}`);
  if (result.targets.length > 0) {
    lines.push('');
    for (const target of result.targets) lines.push(`- ${target.pass ? '✅' : '❌'} target ${target.label}: **${target.actual}**`);
  }
  lines.push('');
  return lines.join('\n');
}

function row(contender: ContenderResult, result: CaseResult, showFailed: boolean): string {
  const name = contender.baseline ? `**${contender.name}** (baseline)` : contender.name;
  const cells: string[] = [name];
  const rate = contender.opsPerSec;
  if (rate === undefined) {
    cells.push('n/a', '', '');
    if (result.latency) cells.push('', '');
    if (showFailed) cells.push('');
    for (let i = 0; i < result.metrics.length; i++) cells.push('');
    return `| ${cells.map(cell).join(' | ')} |`;
  }
  cells.push(
    formatRate(rate.median),
    `±${(rate.spreadPct / 2).toFixed(0)}%`,
    contender.ratio === undefined ? '—' : `${contender.ratio.toFixed(2)}×`,
  );
  if (result.latency) cells.push(formatMs(contender.latency?.p50 ?? Number.NaN), formatMs(contender.latency?.p99 ?? Number.NaN));
  if (showFailed) cells.push(formatNumber(contender.failed));
  for (const metric of result.metrics) {
    const value = contender.metrics[metric.key];
    cells.push(value === undefined ? '—' : formatNumber(value, metric.digits ?? 0));
  }
  return `| ${cells.map(cell).join(' | ')} |`;
}

/** The markdown of a whole suite. */
export function suiteMarkdown(result: SuiteResult): string {
  const lines: string[] = [`## ${result.name}: ${result.title}`, '', result.description, ''];
  if (result.skipped !== undefined) {
    lines.push(`**Skipped:** ${result.skipped}`, '');
    return lines.join('\n');
  }
  const machine =
    result.machine === undefined
      ? ''
      : ` · while it ran the machine's CPUs were ${result.machine.busyPct.toFixed(0)}% busy and ${result.machine.stealPct.toFixed(0)}% stolen by the hypervisor`;
  lines.push(`${environmentLine(result.environment)}${machine}`, '');
  for (const note of result.notes) lines.push(`- ${note}`);
  if (result.notes.length > 0) lines.push('');
  lines.push(
    '*ops/s* is the median over rounds; *spread* is ± half the range of the per-round rates relative to the median; ' +
      '*×* is the median of per-round ratios to the baseline (rounds paired, since they ran back to back).',
    '',
  );
  if (result.error !== undefined) lines.push(`**Suite error:** ${result.error}`, '');
  for (const bench of result.cases) lines.push(caseMarkdown(bench));
  for (const section of result.sections) lines.push(section, '');
  return `${lines.join('\n').trimEnd()}\n`;
}

/** The JSON of a suite (errors as messages). */
export function suiteJson(result: SuiteResult): string {
  return `${JSON.stringify(result, (key, value: unknown) => (key === 'firstError' && typeof value !== 'string' ? errorMessage(value) : value), 2)}\n`;
}

/**
 * Writes `.bench-results/<suite>.md` and `.json`.
 *
 * @returns The markdown path.
 */
export function writeSuiteResult(result: SuiteResult, dir: string = RESULTS_DIR): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${result.name}.md`);
  writeFileSync(path, suiteMarkdown(result));
  writeFileSync(join(dir, `${result.name}.json`), suiteJson(result));
  return path;
}
