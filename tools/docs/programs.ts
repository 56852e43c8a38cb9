/**
 * The blocks as files: each `run` or `typecheck-only` block is written to `.generated/` (so its
 * imports resolve to the built workspace packages, as they would for a user), each `include` or
 * `excerpt` block stands for the file it shows. All of them are type-checked by one `tsc` run and
 * run with tsx in a fresh temporary working directory.
 *
 * @module
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type DocBlock, readmeBlocks, root, trackedReadmes } from './blocks.js';

/** Where the blocks' programs are written (git ignores it). */
export const generatedDir = join(import.meta.dirname, '.generated');

/** A block's program: the file type-checked and run for it. */
export interface Program {
  /** Absolute path. */
  readonly path: string;
  /** Its code (the block, or the whole file it shows). */
  readonly code: string;
  /** The README line of the program's first line, for a program written from a block. */
  readonly firstLine?: number;
}

/** Every TypeScript block of every tracked README. */
export function collectBlocks(): DocBlock[] {
  return trackedReadmes().flatMap((readme) => readmeBlocks(readme));
}

/** `packages/redis/README.md`, line 22 → `packages__redis__README.md-L22.ts`. */
function generatedName(block: DocBlock): string {
  return `${block.readme.replaceAll('/', '__')}-L${block.line}.ts`;
}

/** The program that stands for `block`. */
export function programOf(block: DocBlock): Program {
  if (block.file !== undefined) {
    const path = join(root, block.file);
    let code = '';
    try {
      code = readFileSync(path, 'utf8');
    } catch {
      // A missing file is already one of the block's problems.
    }
    return { path, code };
  }
  return { path: join(generatedDir, generatedName(block)), code: `${block.code}\n`, firstLine: block.line + 1 };
}

/**
 * Writes the generated programs and a tsconfig over them and the shown files, runs `tsc` once
 * and returns its diagnostics by absolute file path (lines as in that file).
 */
export async function typecheck(blocks: readonly DocBlock[]): Promise<Map<string, string[]>> {
  rmSync(generatedDir, { recursive: true, force: true });
  mkdirSync(generatedDir, { recursive: true });
  const files = new Set<string>();
  for (const block of blocks) {
    const program = programOf(block);
    if (block.file === undefined) writeFileSync(program.path, program.code);
    if (program.code !== '') files.add(program.path);
  }
  const tsconfig = {
    extends: relative(generatedDir, join(root, 'tsconfig.base.json')),
    compilerOptions: {
      composite: false,
      declaration: false,
      declarationMap: false,
      sourceMap: false,
      noEmit: true,
      // Every block is a module, also one without an import (top-level await, no name clashes).
      moduleDetection: 'force',
    },
    files: [...files].map((path) => relative(generatedDir, path)),
  };
  writeFileSync(join(generatedDir, 'tsconfig.json'), `${JSON.stringify(tsconfig, null, 2)}\n`);
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const output = await new Promise<string>((done) => {
    execFile(
      process.execPath,
      [tsc, '-p', join(generatedDir, 'tsconfig.json'), '--pretty', 'false'],
      { cwd: generatedDir, maxBuffer: 1 << 26 },
      (_e, stdout, stderr) => done(`${stdout}${stderr}`),
    );
  });
  const diagnostics = new Map<string, string[]>();
  let last: string[] | undefined;
  for (const line of output.split('\n')) {
    const match = /^(.+?)\((\d+),(\d+)\): (error .*)$/.exec(line);
    if (match !== null) {
      const [, file = '', row = '', column = '', message = ''] = match;
      const path = resolve(generatedDir, file);
      last = diagnostics.get(path) ?? [];
      diagnostics.set(path, last);
      last.push(`${row}:${column} ${message}`);
    } else if (line.startsWith(' ') && last !== undefined) {
      last[last.length - 1] += `\n${line}`;
    } else if (line.trim() !== '') {
      last = diagnostics.get('') ?? [];
      diagnostics.set('', last);
      last.push(line);
    }
  }
  return diagnostics;
}

/** How a program's run ended. */
export interface RunResult {
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly timedOut: boolean;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/**
 * Runs `path` with tsx (`node --import tsx`) in a fresh temporary directory, with `env` added to
 * this process's environment. A program must end by itself: one still running after
 * `timeoutMs` (an unclosed connection, say) is killed and reported.
 */
export async function runProgram(path: string, env: Readonly<Record<string, string>>, timeoutMs: number): Promise<RunResult> {
  const cwd = mkdtempSync(join(tmpdir(), 'latchkey-docs-'));
  const started = performance.now();
  try {
    return await new Promise<RunResult>((done) => {
      execFile(
        process.execPath,
        ['--import', TSX, path],
        { cwd, env: { ...process.env, ...env }, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1 << 24 },
        (error, stdout, stderr) => {
          const failure = error as (Error & { code?: unknown; signal?: NodeJS.Signals | null; killed?: boolean }) | null;
          done({
            exitCode: failure === null ? 0 : typeof failure.code === 'number' ? failure.code : null,
            signal: failure?.signal ?? null,
            timedOut: failure?.killed === true,
            stdout,
            stderr,
            ms: performance.now() - started,
          });
        },
      );
    });
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
}
