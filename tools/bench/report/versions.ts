/**
 * Versions of the packages the benchmarks compare: installed now (`node_modules`) and as the
 * suites recorded them in their notes at run time (`clients: ioredis@6.0.0, …`).
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SuiteResult } from '../harness/index.js';

/** The packages whose versions the report states. */
export const REPORTED_PACKAGES: readonly string[] = [
  'ioredis',
  'memjs',
  'mongodb',
  'keyv',
  '@keyv/redis',
  '@keyv/memcache',
  '@keyv/mongo',
  'pg',
  '@keyv/postgres',
  'better-sqlite3',
  'sqlite3',
  '@keyv/sqlite',
  'redlock',
  'redis-semaphore',
  'msgpackr',
];

/** One package's versions. */
export interface PackageVersion {
  readonly name: string;
  /** From `node_modules/<name>/package.json`, or `undefined` when it is not installed. */
  readonly installed: string | undefined;
  /** Every distinct version the suites' notes recorded. */
  readonly recorded: readonly string[];
}

function installedVersion(root: string, name: string): string | undefined {
  try {
    const manifest = JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version?: unknown };
    return typeof manifest.version === 'string' ? manifest.version.replace(/^v/, '') : undefined;
  } catch {
    return undefined;
  }
}

/** `name@version` pairs mentioned in the suites' notes. */
function recordedVersions(suites: readonly SuiteResult[]): Map<string, Set<string>> {
  const found = new Map<string, Set<string>>();
  for (const suite of suites) {
    for (const note of suite.notes) {
      for (const match of note.matchAll(/(@?[a-z0-9][\w.-]*(?:\/[\w.-]+)?)@(\d[\w.+-]*)/gi)) {
        const [, name, version] = match as unknown as [string, string, string];
        const versions = found.get(name) ?? new Set<string>();
        versions.add(version.replace(/[.,;]$/, ''));
        found.set(name, versions);
      }
    }
  }
  return found;
}

/** The versions of {@link REPORTED_PACKAGES}, installed under `root` and recorded by `suites`. */
export function packageVersions(root: string, suites: readonly SuiteResult[]): PackageVersion[] {
  const recorded = recordedVersions(suites);
  return REPORTED_PACKAGES.map((name) => ({
    name,
    installed: installedVersion(root, name),
    recorded: [...(recorded.get(name) ?? [])].sort(),
  }));
}
