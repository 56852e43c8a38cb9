// @ts-check
/**
 * Mutation testing of the conformance suite: Stryker mutates the memory backend and the
 * backend-kit guards it calls, and runs only the conformance suite against MemoryBackend
 * (default, bounded, and behind the guards with size limits: tools/mutation/vitest.config.ts).
 * A surviving mutant is a defect the suite lets through.
 * Run with `npm run mutation`; results and survivors are explained in docs/MUTATION.md.
 *
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export default {
  testRunner: 'vitest',
  plugins: ['@stryker-mutator/vitest-runner'],
  vitest: { configFile: 'tools/mutation/vitest.config.ts', related: false },
  mutate: ['packages/memory/src/memory-backend.ts', 'packages/core/src/backend-kit/guards.ts'],
  coverageAnalysis: 'perTest',
  // The machine is shared; one worker keeps the conformance suite's timing checks honest.
  concurrency: 1,
  // Lock checks wait on real timers; a slow machine must not turn a killed mutant into a timeout.
  timeoutMS: 30_000,
  timeoutFactor: 2,
  reporters: ['clear-text', 'progress', 'json'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
  // Off by default: Stryker decides whether a test changed from the test files, but the checks
  // live in packages/conformance/src, so a changed check would keep its stale result.
  // `--incremental` after changing only the mutated files is safe; then use this file.
  incrementalFile: 'reports/mutation/stryker-incremental.json',
  // Copy into the sandbox only what the conformance run needs.
  ignorePatterns: [
    '/*',
    '!/package.json',
    '!/tsconfig*.json',
    '!/packages',
    '/packages/*',
    '!/packages/core',
    '!/packages/memory',
    '!/packages/conformance',
    '!/tools',
    '/tools/*',
    '!/tools/vitest-shared.ts',
    '!/tools/mutation',
  ],
};
