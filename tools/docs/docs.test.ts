/**
 * Every ```ts block of every README is code: each one is type-checked against the built
 * packages, and each one that is not marked typecheck-only runs (through the file it shows, for
 * an include or excerpt) against throwaway servers, and must exit 0 by itself. See README.md.
 */
import { requireService, type TestServicesContext } from '@latchkey/test-servers';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import type { DocBlock } from './blocks.js';
import { collectBlocks, type Program, programOf, type RunResult, runProgram, typecheck } from './programs.js';
import { SERVICE_VARIABLES, variablesRead } from './services.js';

const RUN_TIMEOUT_MS = 60_000;

const blocks = collectBlocks();
let diagnostics = new Map<string, string[]>();
const runs = new Map<string, Promise<RunResult>>();

beforeAll(async () => {
  diagnostics = await typecheck(blocks);
}, 300_000);

const provided: TestServicesContext = {
  redisUrl: inject('redisUrl'),
  redisUnavailable: inject('redisUnavailable'),
  redisClusterNodes: inject('redisClusterNodes'),
  redisClusterUnavailable: inject('redisClusterUnavailable'),
  redisSentinels: inject('redisSentinels'),
  redisSentinelMasterName: inject('redisSentinelMasterName'),
  redisSentinelUnavailable: inject('redisSentinelUnavailable'),
  memcachedServers: inject('memcachedServers'),
  memcachedUnavailable: inject('memcachedUnavailable'),
  mongoUrl: inject('mongoUrl'),
  mongoUnavailable: inject('mongoUnavailable'),
  postgresUrl: inject('postgresUrl'),
  postgresUnavailable: inject('postgresUnavailable'),
} as TestServicesContext;

const UNAVAILABLE: Record<string, keyof TestServicesContext> = {
  redis: 'redisUnavailable',
  'redis-cluster': 'redisClusterUnavailable',
  'redis-sentinel': 'redisSentinelUnavailable',
  memcached: 'memcachedUnavailable',
  mongo: 'mongoUnavailable',
  postgres: 'postgresUnavailable',
};

/** `README.md:57` for a program written from a block, else the file and the block's place. */
function place(block: DocBlock, program: Program, row: number): string {
  return program.firstLine === undefined
    ? `${block.file}:${row} (shown at ${block.readme}:${block.line})`
    : `${block.readme}:${program.firstLine + row - 1}`;
}

function typeErrors(block: DocBlock, program: Program): string[] {
  return (diagnostics.get(program.path) ?? []).map((diagnostic) => {
    const [at = '', ...rest] = diagnostic.split(' ');
    return `${place(block, program, Number(at.split(':')[0]))}: ${rest.join(' ')}`;
  });
}

/** The environment for `program`: its service variables, or undefined when a service is missing (and may be). */
function environment(block: DocBlock, program: Program): Record<string, string> | undefined {
  const env: Record<string, string> = {};
  for (const name of variablesRead(program.code)) {
    const variable = SERVICE_VARIABLES[name];
    if (variable === undefined) continue;
    const value = variable.value(provided);
    const reason = provided[UNAVAILABLE[variable.kind] ?? 'redisUnavailable'] as string | undefined;
    if (!requireService(`${block.readme}:${block.line} (${name})`, value, reason)) return undefined;
    env[name] = value;
  }
  return env;
}

function tail(text: string): string {
  const lines = text.trimEnd().split('\n');
  return lines.slice(-30).join('\n');
}

describe('README code blocks', () => {
  it('there are some, in more than one README', () => {
    expect(new Set(blocks.map((block) => block.readme)).size).toBeGreaterThan(1);
  });

  it('type-check with no error outside them', () => {
    const known = new Set(blocks.map((block) => programOf(block).path));
    const elsewhere = [...diagnostics].filter(([path]) => !known.has(path)).flatMap(([path, errors]) => errors.map((e) => `${path}: ${e}`));
    expect(elsewhere, elsewhere.join('\n')).toEqual([]);
  });

  const readmes = [...new Set(blocks.map((block) => block.readme))];
  for (const readme of readmes) {
    describe(readme, () => {
      for (const block of blocks.filter((candidate) => candidate.readme === readme)) {
        const what =
          block.kind === 'run' ? 'runs' : block.kind === 'typecheck-only' ? 'type-checks (typecheck-only)' : `is ${block.file}, which runs`;
        it(
          `line ${block.line} ${what}`,
          async (context) => {
            const at = `${block.readme}:${block.line}`;
            expect(block.problems, `${at}: ${block.problems.join('\n')}`).toEqual([]);
            const program = programOf(block);
            const errors = typeErrors(block, program);
            expect(errors, `${at}: the block does not type-check:\n${errors.join('\n')}`).toEqual([]);
            if (block.kind === 'typecheck-only') return;
            const env = environment(block, program);
            if (env === undefined) return context.skip();
            let run = runs.get(program.path);
            if (run === undefined) {
              run = runProgram(program.path, env, RUN_TIMEOUT_MS);
              runs.set(program.path, run);
            }
            const result = await run;
            const how = result.timedOut
              ? `did not end within ${RUN_TIMEOUT_MS} ms (something left open?)`
              : `exited with ${result.exitCode ?? result.signal} after ${Math.round(result.ms)} ms`;
            expect(
              { exitCode: result.exitCode, timedOut: result.timedOut },
              `${at}: ${program.path} ${how}\nenv: ${JSON.stringify(env)}\n--- stderr\n${tail(result.stderr)}\n--- stdout\n${tail(result.stdout)}`,
            ).toEqual({ exitCode: 0, timedOut: false });
          },
          RUN_TIMEOUT_MS + 30_000,
        );
      }
    });
  }
});
