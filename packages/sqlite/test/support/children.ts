import { spawn, type SpawnOptions } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const CHILD_TSCONFIG = fileURLToPath(new URL('./tsconfig.child.json', import.meta.url));

/** What a child process printed and how it ended. */
export interface ChildResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A child process running a TypeScript file of test/support through tsx, with package sources. */
export interface Child {
  readonly pid: number | undefined;
  /** Resolves the first stdout line that satisfies `match`. */
  line(match: (line: string) => boolean): Promise<string>;
  kill(signal: NodeJS.Signals): void;
  readonly done: Promise<ChildResult>;
}

/** Starts `node --import tsx test/support/<script> ...args`. */
export function startChild(script: string, args: readonly string[], options: Pick<SpawnOptions, 'uid' | 'gid'> = {}): Child {
  const entry = fileURLToPath(new URL(`./${script}`, import.meta.url));
  const child = spawn(process.execPath, ['--import', TSX_LOADER, entry, ...args], {
    env: { ...process.env, TSX_TSCONFIG_PATH: CHILD_TSCONFIG },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...options,
  });
  let stdout = '';
  let stderr = '';
  const watchers = new Set<{ match: (line: string) => boolean; resolve: (line: string) => void }>();
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    for (const line of stdout.split('\n')) {
      for (const watcher of watchers) {
        if (watcher.match(line)) {
          watchers.delete(watcher);
          watcher.resolve(line);
        }
      }
    }
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const done = new Promise<ChildResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return {
    pid: child.pid,
    line: (match) =>
      new Promise<string>((resolve, reject) => {
        watchers.add({ match, resolve });
        void done.then((result) => reject(new Error(`the child ended (${result.code ?? result.signal}) first: ${result.stderr}`)));
      }),
    kill: (signal) => child.kill(signal),
    done,
  };
}
