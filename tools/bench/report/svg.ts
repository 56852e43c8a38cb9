/**
 * The few SVG elements the chart needs, as strings (no chart library: the output must stay a
 * small, readable file that GitHub and browsers render the same way).
 *
 * @module
 */

/** Escapes text and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A coordinate with at most one decimal (keeps the file small and diffs quiet). */
export function px(value: number): string {
  return String(Math.round(value * 10) / 10);
}

/** Options of {@link text}. */
export interface TextOptions {
  /** Font size in px. @default 12 */
  readonly size?: number;
  /** @default 'start' */
  readonly anchor?: 'start' | 'middle' | 'end';
  readonly weight?: 'normal' | 'bold';
  /** @default '#1f2937' */
  readonly fill?: string;
  /** Rotation in degrees around the anchor point. */
  readonly rotate?: number;
  readonly italic?: boolean;
}

/** A line of text whose baseline starts (or is centred, or ends) at `x, y`. */
export function text(content: string, x: number, y: number, options: TextOptions = {}): string {
  const attributes = [`x="${px(x)}"`, `y="${px(y)}"`, `font-size="${options.size ?? 12}"`];
  if (options.anchor !== undefined && options.anchor !== 'start') attributes.push(`text-anchor="${options.anchor}"`);
  if (options.weight === 'bold') attributes.push('font-weight="bold"');
  if (options.italic === true) attributes.push('font-style="italic"');
  attributes.push(`fill="${options.fill ?? '#1f2937'}"`);
  if (options.rotate !== undefined) attributes.push(`transform="rotate(${options.rotate} ${px(x)} ${px(y)})"`);
  return `<text ${attributes.join(' ')}>${escapeXml(content)}</text>`;
}

/** A filled rectangle; `tooltip` becomes a `<title>` that browsers show on hover. */
export function rect(x: number, y: number, width: number, height: number, fill: string, tooltip?: string): string {
  const shape = `x="${px(x)}" y="${px(y)}" width="${px(Math.max(0, width))}" height="${px(Math.max(0, height))}" fill="${fill}"`;
  return tooltip === undefined ? `<rect ${shape}/>` : `<rect ${shape}><title>${escapeXml(tooltip)}</title></rect>`;
}

/** Options of {@link line}. */
export interface LineOptions {
  /** @default 1 */
  readonly width?: number;
  /** `stroke-dasharray`, e.g. `'6 4'`. */
  readonly dash?: string;
}

/** A straight line. */
export function line(x1: number, y1: number, x2: number, y2: number, stroke: string, options: LineOptions = {}): string {
  const dash = options.dash === undefined ? '' : ` stroke-dasharray="${options.dash}"`;
  return `<line x1="${px(x1)}" y1="${px(y1)}" x2="${px(x2)}" y2="${px(y2)}" stroke="${stroke}" stroke-width="${options.width ?? 1}"${dash}/>`;
}

/** Roughly how wide `content` is at `size` px in a sans-serif font (for layout, not for exact fitting). */
export function textWidth(content: string, size: number): number {
  return content.length * size * 0.56;
}

/** A round step for about `count` ticks up to `max` (1, 2, 2.5 or 5 times a power of ten). */
export function tickStep(max: number, count: number): number {
  if (!(max > 0)) return 1;
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw);
  return step ?? 10 * power;
}

/** The smallest multiple of `step` that is at least `value`. */
export function ceilTo(value: number, step: number): number {
  return Math.ceil(value / step - 1e-9) * step;
}
