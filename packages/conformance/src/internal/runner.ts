import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Reporter, TestCase, TestModule } from 'vitest/node';
import type { ConformanceGroup } from '../conformance-options.js';
import { RUN_ENV_VAR, type RunModule, type RunRequest } from './run-environment.js';

/** Options of {@link runConformance}. */
export interface RunOptions {
  /** Module paths (relative to `cwd`) or package names; each default-exports a `create` function. */
  readonly modules: readonly string[];
  /** Run only these groups. */
  readonly only?: readonly ConformanceGroup[];
  /** How many checks may run at once (overrides the modules' own `conformanceOptions`). */
  readonly concurrency?: number;
  /** Where relative paths and package names are resolved from. @default process.cwd() */
  readonly cwd?: string;
  /** Called as each check finishes (for progress output). */
  readonly onResult?: (result: CheckResult) => void;
}

/** The outcome of one check. */
export interface CheckResult {
  /** The module label (as given on the command line). */
  readonly module: string;
  /** The check's full name below the module: `group > behaviour > rule`. */
  readonly name: string;
  readonly state: 'passed' | 'failed' | 'skipped';
  /** Failure messages (empty unless failed). */
  readonly messages: readonly string[];
}

/**
 * Which layer a check exercises: `backend` — the backend called directly (the `data` and
 * `locks` groups and the `ttl` group's backend expiry); `store` — the backend through
 * `KeyValueStore` (the `store`, `store-locks` and `bad-input` groups and the `ttl` group's store
 * expiry). A backend can pass many store checks while storing nothing (the store's own
 * validation, registry and lock logic run above it), so the two counts are reported apart.
 */
export type CheckLayer = 'backend' | 'store';

/** Counts of one layer's checks. */
export interface LayerCounts {
  readonly passed: number;
  readonly failed: number;
  readonly skipped: number;
}

/** The layer of a check by its full name below the module (`group: title > section > … > rule`); undefined for run errors. */
export function layerOf(name: string): CheckLayer | undefined {
  const [groupTitle, section] = name.split(' > ');
  const group = groupTitle?.split(':')[0];
  if (group === 'data' || group === 'locks') return 'backend';
  if (group === 'ttl') return section === 'store expiry' ? 'store' : 'backend';
  if (group === 'store' || group === 'store-locks' || group === 'bad-input') return 'store';
  return undefined;
}

/** The outcome of a run. */
export interface RunResult {
  readonly passed: number;
  readonly failed: number;
  readonly skipped: number;
  /** The counts split by {@link CheckLayer}: checks of the backend itself and checks through `KeyValueStore`. */
  readonly layers: Readonly<Record<CheckLayer, LayerCounts>>;
  /** Every check, in the order they finished, plus a failed entry for each suite or run error. */
  readonly results: readonly CheckResult[];
}

/** A module that could not be found; the run did not start. */
export class ModuleNotFoundError extends Error {}

/** The test entry shipped next to this file (compiled to `dist/internal/conformance-entry.js`). */
function entryFile(): string {
  return join(dirname(fileURLToPath(import.meta.url)), 'conformance-entry.js');
}

/** Resolves a module argument to an absolute file path. @throws {ModuleNotFoundError} */
export function resolveModule(specifier: string, cwd: string): string {
  const asPath = isAbsolute(specifier) ? specifier : resolve(cwd, specifier);
  if (existsSync(asPath) && statSync(asPath).isFile()) return asPath;
  const looksLikePath = specifier.startsWith('.') || specifier.startsWith('/') || /\.[cm]?[jt]s$/.test(specifier);
  if (!looksLikePath) {
    try {
      return createRequire(join(cwd, 'package.json')).resolve(specifier);
    } catch (error) {
      throw new ModuleNotFoundError(
        `Cannot find the backend module "${specifier}" as a file or package from ${cwd}: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }
  throw new ModuleNotFoundError(`Cannot find the backend module "${specifier}": no file at ${asPath}.`);
}

/**
 * Runs the conformance suite for each module through vitest's Node API, in one worker
 * process, with no user configuration.
 *
 * @throws {ModuleNotFoundError} when a module cannot be found (before anything runs).
 */
export async function runConformance(options: RunOptions): Promise<RunResult> {
  const cwd = options.cwd ?? process.cwd();
  const modules: RunModule[] = options.modules.map((specifier) => ({ label: specifier, path: resolveModule(specifier, cwd) }));
  const request: RunRequest = {
    modules,
    ...(options.only === undefined ? {} : { only: options.only }),
    ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
  };
  const results: CheckResult[] = [];
  const labelOf = (fullName: string): { module: string; name: string } => {
    const owner = modules.find((module) => fullName === module.label || fullName.startsWith(`${module.label} > `));
    return owner === undefined ? { module: '', name: fullName } : { module: owner.label, name: fullName.slice(owner.label.length + 3) };
  };
  const record = (result: CheckResult): void => {
    results.push(result);
    options.onResult?.(result);
  };

  const reporter: Reporter = {
    onTestCaseResult(testCase: TestCase) {
      const outcome = testCase.result();
      if (outcome.state === 'pending') return;
      record({
        ...labelOf(testCase.fullName),
        state: outcome.state,
        messages: outcome.state === 'failed' ? outcome.errors.map((error) => error.message) : [],
      });
    },
    onTestRunEnd(testModules: readonly TestModule[], unhandledErrors) {
      for (const testModule of testModules) {
        for (const error of testModule.errors())
          record({ module: '', name: '(loading the suite)', state: 'failed', messages: [error.message] });
        for (const suite of testModule.children.allSuites()) {
          for (const error of suite.errors())
            record({ ...labelOf(suite.fullName), state: 'failed', messages: [`the suite failed: ${error.message}`] });
        }
      }
      for (const error of unhandledErrors)
        record({ module: '', name: '(unhandled error during the run)', state: 'failed', messages: [error.message] });
    },
  };

  const { startVitest } = await import('vitest/node');
  const previousExitCode = process.exitCode;
  const entry = entryFile();
  const vitest = await startVitest('test', [], {
    config: false,
    root: dirname(entry),
    include: [entry.slice(dirname(entry).length + 1)],
    exclude: [],
    pool: 'forks',
    watch: false,
    reporters: [reporter],
    env: { [RUN_ENV_VAR]: JSON.stringify(request) },
    passWithNoTests: false,
    // Each suite's own gate (its `concurrency` option) is the real limit.
    maxConcurrency: 100,
    // The ordering cache would be written inside the installed package; one file needs no ordering.
    cache: false,
  });
  await vitest.close();
  process.exitCode = previousExitCode;

  const count = (state: CheckResult['state'], layer?: CheckLayer): number =>
    results.filter((result) => result.state === state && (layer === undefined || layerOf(result.name) === layer)).length;
  const layerCounts = (layer: CheckLayer): LayerCounts => ({
    passed: count('passed', layer),
    failed: count('failed', layer),
    skipped: count('skipped', layer),
  });
  return {
    passed: count('passed'),
    failed: count('failed'),
    skipped: count('skipped'),
    layers: { backend: layerCounts('backend'), store: layerCounts('store') },
    results,
  };
}
