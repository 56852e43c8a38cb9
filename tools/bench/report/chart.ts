/**
 * `docs/performance-chart.svg`: (a) throughput of latchkey and keyv relative to the raw
 * driver, per backend and operation, with the 1.0× line and the goals; (b) the
 * locked-increment case: increments/s and lock handoff p50 per backend and contender.
 * Drawn at 900 px wide, on a white background so that it also reads in dark mode.
 *
 * @module
 */
import { formatMs, formatRate } from '../harness/index.js';
import type { ChartData, LockRow, RatioGroup } from './chart-data.js';
import { ceilTo, escapeXml, line, px, rect, text, textWidth, tickStep } from './svg.js';

/** What the chart says around the figures. */
export interface ChartContext {
  /** Run, machine and timing, under the title (one entry per line; long ones wrap). */
  readonly subtitle: readonly string[];
  /** Lines at the bottom (source, caveats). */
  readonly footnotes: readonly string[];
}

const WIDTH = 900;
const FONT = 'system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif';
const INK = '#1f2937';
const MUTED = '#6b7280';
const GRID = '#e5e7eb';
const TARGET = '#dc2626';
const REFERENCE = '#374151';
/** Above this, panel (a) bars are cut (with a break mark) so that the 0.8–1.2× region stays readable. */
const RATIO_CLIP = 2.5;

/** The colour of a contender, the same in both panels. */
function colour(contender: string): string {
  if (contender.startsWith('latchkey')) return '#2563eb';
  if (contender === 'keyv') return '#f59e0b';
  if (contender === 'redlock') return '#9333ea';
  if (contender === 'redis-semaphore') return '#059669';
  return '#6b7280';
}

/** Splits `content` into lines of at most `width` px (estimated). */
function wrap(content: string, width: number, size: number): string[] {
  const lines: string[] = [];
  let current = '';
  // Only plain spaces break a line: callers keep `3 × 1000 ms` together with no-break spaces.
  for (const word of content.split(/ +/)) {
    const candidate = current.length === 0 ? word : `${current} ${word}`;
    if (textWidth(candidate, size) > width && current.length > 0) {
      lines.push(current);
      current = word;
    } else current = candidate;
  }
  if (current.length > 0) lines.push(current);
  return lines;
}

/** A muted note under a panel title, wrapped; `bottom` is the last line's baseline. */
function paragraph(content: string, y: number, size = 11): { parts: string[]; bottom: number } {
  const lines = wrap(content, WIDTH - 40, size);
  return {
    parts: lines.map((l, i) => text(l, 20, y + i * (size + 3), { size, fill: MUTED })),
    bottom: y + (lines.length - 1) * (size + 3),
  };
}

function goalText(group: RatioGroup): string | undefined {
  const goal = group.goal;
  return goal === undefined ? undefined : `${goal.strict ? '>' : '≥'} ${goal.min.toFixed(2)}×`;
}

/** `goal ≥ 0.90×`, or with the operations that differ: `goal ≥ 0.90× (getMany > 1.00×)`. */
function goalSummary(members: readonly RatioGroup[]): string {
  const counts = new Map<string, number>();
  for (const g of members) {
    const goal = goalText(g);
    if (goal !== undefined) counts.set(goal, (counts.get(goal) ?? 0) + 1);
  }
  const common = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];
  if (common === undefined) return 'no throughput goal';
  const exceptions = members.filter((g) => goalText(g) !== common).map((g) => `${g.operation} ${goalText(g) ?? 'none'}`);
  return exceptions.length === 0 ? `goal ${common}` : `goal ${common} (${exceptions.join(', ')})`;
}

/** Panel (a); returns the elements and the y below it. */
function ratioPanel(groups: readonly RatioGroup[], top: number): { parts: string[]; bottom: number } {
  const parts: string[] = [];
  parts.push(
    text('(a) Throughput relative to the raw driver, per backend and operation (higher is better)', 20, top, { size: 14, weight: 'bold' }),
  );
  const note = paragraph(
    'Median of the per-round ratios to the raw driver doing the same job by hand (rounds paired); memory: to a Map of v8 copies.',
    top + 17,
  );
  parts.push(...note.parts);
  const plotTop = note.bottom + 23;
  const plotHeight = 230;
  const plotBottom = plotTop + plotHeight;
  const plotLeft = 64;
  const plotRight = WIDTH - 16;
  if (groups.length === 0) {
    parts.push(text('No get/set/getMany results to show.', plotLeft, plotTop + 40, { size: 13, fill: MUTED }));
    return { parts, bottom: plotTop + 60 };
  }

  const values = groups.flatMap((g) => [...g.bars.map((b) => b.ratio ?? 0), g.goal?.min ?? 0]);
  const highest = Math.max(1, ...values);
  const clipped = highest > RATIO_CLIP;
  const step = clipped ? 0.5 : tickStep(highest * 1.12, 5);
  const axisMax = clipped ? RATIO_CLIP : ceilTo(highest * 1.12, step);
  const y = (v: number): number => plotBottom - (Math.min(v, axisMax) / axisMax) * plotHeight;

  for (let v = 0; v <= axisMax + 1e-9; v += step) {
    parts.push(line(plotLeft, y(v), plotRight, y(v), GRID));
    parts.push(text(`${Number(v.toFixed(2))}×`, plotLeft - 6, y(v) + 4, { size: 11, anchor: 'end', fill: MUTED }));
  }
  parts.push(text('× raw driver', 20, (plotTop + plotBottom) / 2, { size: 12, anchor: 'middle', rotate: -90, fill: INK }));

  const suites = [...new Set(groups.map((g) => g.suite))];
  // Value labels go on top of everything, the goal and 1.0× lines included.
  const labels: string[] = [];
  const suiteGap = 26;
  const groupGap = 10;
  const groupWidth =
    (plotRight - plotLeft - 16 - (suites.length - 1) * suiteGap - (groups.length - suites.length) * groupGap) / groups.length;
  const barWidth = Math.min(28, (groupWidth - 4) / 2);
  let x = plotLeft + 8;
  for (const suite of suites) {
    const members = groups.filter((g) => g.suite === suite);
    const suiteLeft = x;
    for (const group of members) {
      const barsLeft = x + (groupWidth - barWidth * group.bars.length - 2 * (group.bars.length - 1)) / 2;
      group.bars.forEach((bar, i) => {
        const left = barsLeft + i * (barWidth + 2);
        const centre = left + barWidth / 2;
        if (bar.ratio === undefined) {
          parts.push(text('n/a', centre, plotBottom - 5, { size: 10, anchor: 'middle', fill: MUTED }));
          return;
        }
        const tooltip = `${suite} ${group.caseName} · ${bar.contender}: ${bar.ratio.toFixed(2)}× ${group.baseline}`;
        parts.push(rect(left, y(bar.ratio), barWidth, plotBottom - y(bar.ratio), colour(bar.contender), tooltip));
        if (bar.ratio > axisMax) {
          // A break mark: the bar is cut, its value is written above it.
          parts.push(line(left - 2, plotTop + 14, left + barWidth + 2, plotTop + 8, '#ffffff', { width: 3 }));
          parts.push(line(left - 2, plotTop + 20, left + barWidth + 2, plotTop + 14, '#ffffff', { width: 3 }));
        }
        const label = bar.ratio.toFixed(2);
        const labelWidth = textWidth(label, 10) + 2;
        // A light box under the value keeps it legible where a goal or the 1.0× line crosses it.
        labels.push(
          `<rect x="${px(centre - labelWidth / 2)}" y="${px(y(bar.ratio) - 13)}" width="${px(labelWidth)}" height="11" fill="#ffffff" fill-opacity="0.85"/>`,
          text(label, centre, y(bar.ratio) - 4, { size: 10, anchor: 'middle', fill: INK }),
        );
      });
      if (group.goal !== undefined)
        parts.push(line(x - 3, y(group.goal.min), x + groupWidth + 3, y(group.goal.min), TARGET, { width: 2, dash: '6 3' }));
      parts.push(text(group.operation, x + groupWidth / 2, plotBottom + 15, { size: 11, anchor: 'middle' }));
      x += groupWidth + groupGap;
    }
    const suiteRight = x - groupGap;
    const middle = (suiteLeft + suiteRight) / 2;
    parts.push(text(suite, middle, plotBottom + 32, { size: 12.5, anchor: 'middle', weight: 'bold' }));
    parts.push(text(`vs ${members[0]?.baseline ?? '?'}`, middle, plotBottom + 46, { size: 10.5, anchor: 'middle', fill: MUTED }));
    const line3 = goalSummary(members);
    parts.push(text(line3, middle, plotBottom + 59, { size: 10.5, anchor: 'middle', fill: line3.startsWith('goal') ? TARGET : MUTED }));
    x += suiteGap - groupGap;
  }
  // The 1.0× line goes over the bars: it is the reference every bar is read against.
  parts.push(line(plotLeft, y(1), plotRight, y(1), REFERENCE, { width: 1.5 }));
  parts.push(line(plotLeft, plotBottom, plotRight, plotBottom, INK));
  parts.push(...labels);

  const legendY = plotBottom + 82;
  let lx = plotLeft;
  for (const name of ['latchkey', 'keyv']) {
    parts.push(rect(lx, legendY - 10, 14, 12, colour(name)));
    parts.push(text(name, lx + 19, legendY, { size: 12 }));
    lx += 19 + textWidth(name, 12) + 22;
  }
  parts.push(line(lx, legendY - 4, lx + 26, legendY - 4, REFERENCE, { width: 1.5 }));
  parts.push(text('1.0× = the raw driver', lx + 32, legendY, { size: 12 }));
  lx += 32 + textWidth('1.0× = the raw driver', 12) + 22;
  if (groups.some((g) => g.goal !== undefined)) {
    parts.push(line(lx, legendY - 4, lx + 26, legendY - 4, TARGET, { width: 2, dash: '6 3' }));
    parts.push(text("latchkey's goal", lx + 32, legendY, { size: 12 }));
  }
  const remarks: string[] = [];
  if (groups.some((g) => g.bars.some((b) => b.ratio === undefined))) remarks.push('n/a: not measured (why: PERFORMANCE.md)');
  if (clipped) remarks.push(`bars above ${RATIO_CLIP}× are cut, value on top`);
  if (remarks.length > 0) parts.push(text(remarks.join(' · '), plotLeft, legendY + 18, { size: 11, fill: MUTED }));
  return { parts, bottom: legendY + (remarks.length > 0 ? 24 : 8) };
}

function rowLabel(row: LockRow): string {
  return `${row.suite} · ${row.contender}`;
}

function rowWarning(row: LockRow): string | undefined {
  const warnings: string[] = [];
  if (row.lostUpdates !== undefined && row.lostUpdates > 0) warnings.push(`${formatRate(row.lostUpdates)} lost updates`);
  if (row.failedAcquisitions !== undefined && row.failedAcquisitions > 0)
    warnings.push(`${formatRate(row.failedAcquisitions)} failed acquisitions (wait ran out)`);
  return warnings.length === 0 ? undefined : warnings.join(', ');
}

interface Axis {
  readonly left: number;
  readonly right: number;
  readonly max: number;
  readonly step: number;
}

function axisFor(values: readonly number[], left: number, right: number): Axis {
  // Headroom for the value written after the longest bar.
  const highest = Math.max(...values, 0) * 1.22;
  const step = tickStep(highest > 0 ? highest : 1, 4);
  return { left, right, step, max: ceilTo(highest > 0 ? highest : 1, step) };
}

function scale(axis: Axis, value: number): number {
  return axis.left + (value / axis.max) * (axis.right - axis.left);
}

function tickLabel(value: number, step: number): string {
  const decimals = String(Number(step.toPrecision(6))).split('.')[1]?.length ?? 0;
  return value.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

/** Panel (b); returns the elements and the y below it. */
function lockPanel(rows: readonly LockRow[], caseName: string | undefined, top: number): { parts: string[]; bottom: number } {
  const parts: string[] = [];
  parts.push(
    text(`(b) Locks: ${caseName ?? 'locked increment'} of one counter, per backend and contender`, 20, top, { size: 14, weight: 'bold' }),
  );
  const note = paragraph(
    'Medians over rounds. Handoff = one holder leaving the critical section → the next one entering it. The no-lock control is left out.' +
      (rows.length > 0 && rows.every((r) => r.lostUpdates === 0) ? ' None of these lost an update.' : ''),
    top + 17,
  );
  parts.push(...note.parts);
  if (rows.length === 0) {
    parts.push(text('No locked-increment results to show.', 64, note.bottom + 33, { size: 13, fill: MUTED }));
    return { parts, bottom: note.bottom + 47 };
  }
  const labelRight = 222;
  const rates = axisFor(
    rows.flatMap((r) => (r.incrementsPerSec === undefined ? [] : [r.incrementsPerSec])),
    234,
    528,
  );
  const handoffs = axisFor(
    rows.flatMap((r) => (r.handoffP50 === undefined ? [] : [r.handoffP50])),
    590,
    WIDTH - 20,
  );
  const headerY = note.bottom + 27;
  parts.push(text('increments/s (higher is better)', rates.left, headerY, { size: 12, weight: 'bold' }));
  parts.push(text('handoff p50, ms (lower is better)', handoffs.left, headerY, { size: 12, weight: 'bold' }));
  const rowsTop = headerY + 10;
  const annotated = rows.some((r) => rowWarning(r) !== undefined);
  const rowHeight = annotated ? 36 : 28;
  const rowsBottom = rowsTop + rows.length * rowHeight;

  for (const axis of [rates, handoffs]) {
    for (let v = 0; v <= axis.max + 1e-9; v += axis.step) {
      parts.push(line(scale(axis, v), rowsTop, scale(axis, v), rowsBottom, GRID));
      parts.push(text(tickLabel(v, axis.step), scale(axis, v), rowsBottom + 14, { size: 10.5, anchor: 'middle', fill: MUTED }));
    }
  }
  rows.forEach((row, i) => {
    const rowTop = rowsTop + i * rowHeight;
    if (i > 0 && rows[i - 1]?.suite !== row.suite) parts.push(line(16, rowTop, WIDTH - 16, rowTop, '#9ca3af', { dash: '2 3' }));
    const barTop = rowTop + 6;
    const barHeight = 16;
    const middle = barTop + barHeight / 2 + 4;
    parts.push(text(rowLabel(row), labelRight, middle, { size: 12, anchor: 'end' }));
    const warning = rowWarning(row);
    if (warning !== undefined) parts.push(text(warning, labelRight, middle + 14, { size: 10, anchor: 'end', fill: TARGET }));
    if (row.reason !== undefined) {
      parts.push(text(`not measured: ${row.reason}`, rates.left + 4, middle, { size: 11, fill: MUTED, italic: true }));
      return;
    }
    const fill = colour(row.contender);
    if (row.incrementsPerSec !== undefined) {
      const end = scale(rates, row.incrementsPerSec);
      parts.push(
        rect(rates.left, barTop, end - rates.left, barHeight, fill, `${rowLabel(row)}: ${formatRate(row.incrementsPerSec)} increments/s`),
      );
      parts.push(text(formatRate(row.incrementsPerSec), end + 4, middle, { size: 11 }));
    }
    if (row.handoffP50 === undefined) parts.push(text('—', handoffs.left + 4, middle, { size: 11, fill: MUTED }));
    else {
      const end = scale(handoffs, row.handoffP50);
      parts.push(
        rect(handoffs.left, barTop, end - handoffs.left, barHeight, fill, `${rowLabel(row)}: handoff p50 ${formatMs(row.handoffP50)} ms`),
      );
      parts.push(text(formatMs(row.handoffP50), end + 4, middle, { size: 11 }));
    }
  });
  for (const axis of [rates, handoffs]) {
    parts.push(line(axis.left, rowsTop, axis.left, rowsBottom, INK));
    parts.push(line(axis.left, rowsBottom, axis.right, rowsBottom, INK));
  }
  return { parts, bottom: rowsBottom + 22 };
}

/** The whole SVG document. */
export function renderChart(data: ChartData, context: ChartContext): string {
  const body: string[] = [];
  body.push(text('latchkey: throughput against the raw drivers, and lock handoff', 20, 30, { size: 19, weight: 'bold' }));
  let y = 50;
  for (const subtitleLine of context.subtitle.flatMap((l) => wrap(l, WIDTH - 40, 11.5))) {
    body.push(text(subtitleLine, 20, y, { size: 11.5, fill: MUTED }));
    y += 15;
  }
  const a = ratioPanel(data.groups, y + 18);
  body.push(...a.parts);
  const b = lockPanel(data.lockRows, data.lockCaseName, a.bottom + 34);
  body.push(...b.parts);
  y = b.bottom + 8;
  body.push(line(16, y, WIDTH - 16, y, GRID));
  y += 16;
  for (const note of context.footnotes) {
    for (const noteLine of wrap(note, WIDTH - 40, 10.5)) {
      body.push(text(noteLine, 20, y, { size: 10.5, fill: MUTED }));
      y += 14;
    }
  }
  const height = Math.ceil(y + 6);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="${escapeXml(FONT)}" role="img" aria-labelledby="chart-title chart-desc">`,
    '<title id="chart-title">latchkey benchmark: throughput ratios to the raw drivers and lock handoff latency</title>',
    `<desc id="chart-desc">${escapeXml(`${context.subtitle.join(' · ')}. Generated by tools/bench/report/generate.ts from the results of npm run bench.`)}</desc>`,
    `<rect x="0" y="0" width="${WIDTH}" height="${px(height)}" fill="#ffffff"/>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}
