/**
 * Finding the TypeScript code blocks of the repository's READMEs and what each one is: a
 * program to run, a fragment to type-check only, or a copy of (part of) a file of the repository.
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/**
 * What the tool does with a block, from the HTML comment on the last non-blank line above it:
 *
 * - `run` (no marker): a whole program; type-checked and run.
 * - `include` (`<!-- include: <path> -->`): the whole file at `path`, verbatim; the file is
 *   type-checked and run.
 * - `excerpt` (`<!-- excerpt: <path> -->`): lines of the file at `path`, unchanged (the
 *   block may be indented less than they are); the file is type-checked and run.
 * - `typecheck-only` (`<!-- docs:typecheck-only: <why> -->`): type-checked, never run; the
 *   reason is required.
 */
export type BlockKind = 'run' | 'include' | 'excerpt' | 'typecheck-only';

/** One fenced ```ts (or ```typescript) block of a README. */
export interface DocBlock {
  /** The README, relative to the repository root. */
  readonly readme: string;
  /** The line of the opening fence (1-based). */
  readonly line: number;
  /** The block's code, its fence's indentation removed. */
  readonly code: string;
  readonly kind: BlockKind;
  /** `include` and `excerpt`: the file shown, relative to the repository root. */
  readonly file?: string;
  /** `typecheck-only`: why the block cannot run. */
  readonly reason?: string;
  /** What is wrong with the block before any type-check (bad marker, missing file, copy differs). */
  readonly problems: readonly string[];
}

/** The repository root. */
export const root = resolve(import.meta.dirname, '../..');

/** Every README.md git tracks, relative to the root. */
export function trackedReadmes(): string[] {
  const out = execFileSync('git', ['ls-files', '*README.md'], { cwd: root, encoding: 'utf8' });
  return out.split('\n').filter((path) => path !== '' && existsSync(join(root, path)));
}

const FENCE = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)/;
const MARKER = /^<!--\s*(include|excerpt|docs:[\w-]+)\s*(?::\s*([\s\S]*?))?\s*-->$/;

/** The TypeScript blocks of one README (`readme` relative to the root). */
export function readmeBlocks(readme: string): DocBlock[] {
  return parseBlocks(readme, readFileSync(join(root, readme), 'utf8'));
}

/** The TypeScript blocks of `markdown`, the text of the README at `readme` (relative to the root). */
export function parseBlocks(readme: string, markdown: string): DocBlock[] {
  const lines = markdown.split('\n');
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i] ?? '');
    if (open === null) continue;
    const [, indent = '', fence = '```', lang = ''] = open;
    let end = i + 1;
    const closing = new RegExp(`^\\s*${fence[0]}{${fence.length},}\\s*$`);
    while (end < lines.length && !closing.test(lines[end] ?? '')) end++;
    if (lang === 'ts' || lang === 'typescript') {
      const body = lines.slice(i + 1, end).map((text) => (text.startsWith(indent) ? text.slice(indent.length) : text.trimStart()));
      blocks.push(classify(readme, i + 1, body.join('\n'), markerAbove(lines, i)));
    }
    i = end;
  }
  return blocks;
}

/** The last non-blank line above line index `at`, when it is an HTML comment. */
function markerAbove(lines: readonly string[], at: number): string | undefined {
  for (let i = at - 1; i >= 0; i--) {
    const text = (lines[i] ?? '').trim();
    if (text === '') continue;
    return text.startsWith('<!--') && text.endsWith('-->') ? text : undefined;
  }
  return undefined;
}

function classify(readme: string, line: number, code: string, marker: string | undefined): DocBlock {
  const base = { readme, line, code };
  const match = marker === undefined ? null : MARKER.exec(marker);
  if (match === null) return { ...base, kind: 'run', problems: fixedAddresses(code) };
  const [, word = '', argument = ''] = match;
  if (word === 'docs:typecheck-only') {
    const problems = argument === '' ? ['<!-- docs:typecheck-only: <why> --> needs its reason'] : [];
    return { ...base, kind: 'typecheck-only', reason: argument, problems };
  }
  if (word === 'include' || word === 'excerpt') {
    const file = relative(root, resolve(root, dirname(readme), argument));
    const path = join(root, file);
    if (argument === '' || !existsSync(path)) {
      return { ...base, kind: word, file, problems: [`<!-- ${word}: ${argument} -->: no file ${file} (paths are relative to the README)`] };
    }
    const text = readFileSync(path, 'utf8');
    const copied =
      word === 'include'
        ? text.trimEnd() === code
          ? []
          : [`the block is not ${file} verbatim:\n${firstDifference(code, text.trimEnd())}`]
        : excerptOf(code, text)
          ? []
          : [`the block is not lines of ${file} unchanged (but for indentation)`];
    return { ...base, kind: word, file, problems: [...copied, ...fixedAddresses(text).map((problem) => `${file}: ${problem}`)] };
  }
  return { ...base, kind: 'run', problems: [`unknown marker ${marker} (docs:typecheck-only, include and excerpt are known)`] };
}

// A URL of a server, or host:port (an IPv4 address, localhost or a dotted name), possibly a list.
const ADDRESS =
  /(['"`])((?:redis|rediss|mongodb|postgres|postgresql):\/\/[^'"`]*|(?:\d{1,3}(?:\.\d{1,3}){3}|localhost|[\w-]+(?:\.[\w-]+)+):\d{2,5}(?:,[^'"`]*)?)\1/g;

/**
 * A program that runs must not reach a server by a fixed address (the machine's own services are
 * not the test servers): every address literal must be the default after a `process.env` read
 * on its line, e.g. `process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'`.
 */
export function fixedAddresses(code: string): string[] {
  const problems: string[] = [];
  code.split('\n').forEach((text, index) => {
    for (const match of text.matchAll(ADDRESS)) {
      const before = text.slice(0, match.index);
      if (!before.includes('process.env')) {
        problems.push(
          `line ${index + 1}: ${match[0]} is a fixed server address; read it from the tool's variable: process.env.<NAME> ?? ${match[0]}`,
        );
      }
    }
  });
  return problems;
}

/** Whether `block`, indented by 0–8 spaces, is a run of whole lines of `text`. */
function excerptOf(block: string, text: string): boolean {
  const lines = `\n${text}\n`;
  for (let depth = 0; depth <= 8; depth += 2) {
    const indented = block.replace(/^(?=.)/gm, ' '.repeat(depth));
    if (lines.includes(`\n${indented}\n`)) return true;
  }
  return false;
}

/** `block line N: <block line>` / `file: <file line>` at the first line that differs. */
function firstDifference(block: string, file: string): string {
  const a = block.split('\n');
  const b = file.split('\n');
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) return `  block line ${i + 1}: ${a[i] ?? '(end)'}\n  file line ${i + 1}:  ${b[i] ?? '(end)'}`;
  }
  return '  (they differ only in trailing whitespace)';
}
