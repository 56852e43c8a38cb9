import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Reporter, TestCase, TestModule, TestSuite } from 'vitest/node';
import type { ConformanceGroup } from '../conformance-options.js';
import {
  NOT_APPLICABLE,
  RUN_ENV_VAR,
  TIMINGS_META_KEY,
  type AttemptTiming,
  type CheckTimings,
  type RunModule,
  type RunRequest,
} from './run-environment.js';

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
  /** Called as each module's group finishes (for progress output). */
  readonly onGroupEnd?: (group: GroupSummary) => void;
  /**
   * The test file vitest runs instead of the suite's own entry (the package's self-tests
   * register synthetic checks this way).
   * @internal
   */
  readonly entry?: string;
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
  /** How long the check took, every attempt and cleanup included, in ms (absent for skipped checks and run errors). */
  readonly durationMs?: number;
  /**
   * True when the check failed, was run again because the event loop had stalled from outside
   * the backend, and then passed: it counts as passed, and is reported with its {@link attempts}.
   */
  readonly flaky: boolean;
  /** Every attempt with its timings and event-loop lag, for failed and flaky checks. */
  readonly attempts?: readonly AttemptTiming[];
  /** Why a skipped check does not apply to this backend. */
  readonly notApplicable?: string;
}

/** The counts of one group of one module, when it finished. */
export interface GroupSummary {
  readonly module: string;
  /** The group's title, e.g. `data: the backend’s data calls`. */
  readonly group: string;
  readonly passed: number;
  readonly failed: number;
  readonly skipped: number;
  readonly flaky: number;
  /** Wall time of the group, in ms. */
  readonly durationMs: number;
}

/**
 * Which layer a check exercises: `backend` — the backend called directly (the `data`,
 * `locks` and `faults` groups and the `ttl` group's backend expiry); `store` — the backend through
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
  if (group === 'data' || group === 'locks' || group === 'faults') return 'backend';
  if (group === 'ttl') return section === 'store expiry' ? 'store' : 'backend';
  if (group === 'store' || group === 'store-locks' || group === 'bad-input') return 'store';
  return undefined;
}

/** The outcome of a run. */
export interface RunResult {
  readonly passed: number;
  /** How many of the passed checks are flaky (see {@link CheckResult.flaky}). */
  readonly flaky: number;
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

  const suiteStartedAt = new Map<string, number>();
  const reporter: Reporter = {
    onTestCaseResult(testCase: TestCase) {
      const outcome = testCase.result();
      if (outcome.state === 'pending') return;
      const timings = (testCase.meta() as Record<string, unknown>)[TIMINGS_META_KEY] as CheckTimings | undefined;
      const duration = testCase.diagnostic()?.duration;
      const label = labelOf(testCase.fullName);
      const reasonAt = label.name.indexOf(NOT_APPLICABLE);
      const flaky = outcome.state === 'passed' && timings?.flaky === true;
      record({
        ...label,
        state: outcome.state,
        messages: outcome.state === 'failed' ? outcome.errors.map((error) => error.message) : [],
        flaky,
        ...(outcome.state === 'skipped' || duration === undefined ? {} : { durationMs: Math.round(duration) }),
        ...(timings !== undefined && (flaky || outcome.state === 'failed') ? { attempts: timings.attempts } : {}),
        ...(outcome.state === 'skipped' && reasonAt >= 0 ? { notApplicable: label.name.slice(reasonAt + NOT_APPLICABLE.length) } : {}),
      });
    },
    onTestSuiteReady(testSuite: TestSuite) {
      suiteStartedAt.set(testSuite.fullName, performance.now());
    },
    onTestSuiteResult(testSuite: TestSuite) {
      // A group is a suite directly below a module's suite.
      const parent = testSuite.parent;
      if (parent.type !== 'suite' || parent.parent.type !== 'module') return;
      const { module, name: group } = labelOf(testSuite.fullName);
      const mine = results.filter((result) => result.module === module && result.name.startsWith(`${group} > `));
      options.onGroupEnd?.({
        module,
        group,
        passed: mine.filter((result) => result.state === 'passed').length,
        failed: mine.filter((result) => result.state === 'failed').length,
        skipped: mine.filter((result) => result.state === 'skipped').length,
        flaky: mine.filter((result) => result.flaky).length,
        durationMs: Math.round(performance.now() - (suiteStartedAt.get(testSuite.fullName) ?? performance.now())),
      });
    },
    onTestRunEnd(testModules: readonly TestModule[], unhandledErrors) {
      for (const testModule of testModules) {
        for (const error of testModule.errors())
          record({ module: '', name: '(loading the suite)', state: 'failed', messages: [error.message], flaky: false });
        for (const suite of testModule.children.allSuites()) {
          for (const error of suite.errors())
            record({ ...labelOf(suite.fullName), state: 'failed', messages: [`the suite failed: ${error.message}`], flaky: false });
        }
      }
      for (const error of unhandledErrors)
        record({ module: '', name: '(unhandled error during the run)', state: 'failed', messages: [error.message], flaky: false });
    },
  };

  const { startVitest } = await import('vitest/node');
  const previousExitCode = process.exitCode;
  const entry = options.entry ?? entryFile();
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
    flaky: results.filter((result) => result.flaky).length,
    failed: count('failed'),
    skipped: count('skipped'),
    layers: { backend: layerCounts('backend'), store: layerCounts('store') },
    results,
  };
}
