import { mergeConfig } from 'vitest/config';
import { packageVitestConfig } from '../vitest-shared.js';

// One backend per test file, run one file at a time: the scenarios measure timing (lease
// handoffs, deadlines) and must not compete with each other for the 2 CI cores.
export default mergeConfig(
  packageVitestConfig({
    packageDir: import.meta.dirname,
    globalSetup: ['./global-setup.ts'],
    testTimeout: 120_000,
  }),
  { test: { name: 'faults', fileParallelism: false } },
);
