/**
 * The vitest configuration every package uses: `@latchkey/*` imports resolve to package
 * sources (tests never run against stale builds), and when `LATCHKEY_TEST_REPORT_DIR` is set
 * each run also writes a JSON report there, which `.ci/run` sums into `N passed, N failed`.
 */
import { readdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** `@latchkey/<name>` → `packages/<name>/src/index.ts` for every package in the repository. */
export function sourceAliases(): Record<string, string> {
  const aliases: Record<string, string> = {};
  for (const name of readdirSync(join(root, 'packages'))) {
    aliases[`@latchkey/${name}`] = join(root, 'packages', name, 'src', 'index.ts');
  }
  return aliases;
}

/** Options of {@link packageVitestConfig}. */
export interface PackageVitestOptions {
  /** The package directory (pass `import.meta.dirname` or `__dirname` of the config). */
  readonly packageDir: string;
  /** vitest globalSetup files (e.g. test servers). */
  readonly globalSetup?: string[];
  /** Per-test timeout. @default 20000 */
  readonly testTimeout?: number;
  /** Test file globs. @default ['test/**\/*.test.ts'] */
  readonly include?: string[];
  /** Files excluded from this run. */
  readonly exclude?: string[];
  /** A suffix for the JSON report name (for packages with several runs). */
  readonly reportSuffix?: string;
}

/** The vitest config of one package. */
export function packageVitestConfig(options: PackageVitestOptions) {
  const reportDir = process.env['LATCHKEY_TEST_REPORT_DIR'];
  const reportName = `${basename(options.packageDir)}${options.reportSuffix ?? ''}.json`;
  return defineConfig({
    resolve: { alias: sourceAliases() },
    test: {
      root: options.packageDir,
      include: options.include ?? ['test/**/*.test.ts'],
      ...(options.exclude ? { exclude: options.exclude } : {}),
      ...(options.globalSetup ? { globalSetup: options.globalSetup } : {}),
      testTimeout: options.testTimeout ?? 20_000,
      hookTimeout: 60_000,
      pool: 'forks',
      reporters: reportDir ? ['default', 'json'] : ['default'],
      ...(reportDir ? { outputFile: { json: join(reportDir, reportName) } } : {}),
    },
  });
}
