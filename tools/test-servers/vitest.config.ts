import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

// Tests of the test-server tooling (`npx nx run test-servers:test`). Project "example" is also
// the reference for packages: a globalSetup made with createGlobalSetup, and tests that
// inject() what it provides. With LATCHKEY_TEST_REPORT_DIR set, a JSON report is written
// there for .ci/run's `N passed, N failed` line.
const reportDir = process.env['LATCHKEY_TEST_REPORT_DIR'];

export default defineConfig({
  test: {
    root: import.meta.dirname,
    reporters: reportDir ? ['default', 'json'] : ['default'],
    ...(reportDir ? { outputFile: { json: join(reportDir, 'test-servers.json') } } : {}),
    projects: [
      {
        test: {
          name: 'tooling',
          root: import.meta.dirname,
          include: ['*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'example',
          root: import.meta.dirname,
          include: ['example/*.test.ts'],
          globalSetup: ['./example/global-setup.ts'],
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
