import { mergeConfig } from 'vitest/config';
import { packageVitestConfig } from '../vitest-shared.js';

// The README blocks run one at a time (each is a Node process; they share the servers).
export default mergeConfig(
  packageVitestConfig({
    packageDir: import.meta.dirname,
    globalSetup: ['./global-setup.ts'],
    include: ['*.test.ts'],
    testTimeout: 120_000,
  }),
  { test: { name: 'docs' } },
);
