import { defineConfig } from 'vitest/config';

// Tests of the test-server tooling: `npx vitest run --root tools/test-servers`.
// Project "example" is also the reference for packages: a globalSetup made with
// createGlobalSetup, and tests that inject() what it provides.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'tooling',
          include: ['*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'example',
          include: ['example/*.test.ts'],
          globalSetup: ['./example/global-setup.ts'],
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
