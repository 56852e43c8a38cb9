import { packageVitestConfig } from '../../tools/vitest-shared.js';

export default packageVitestConfig({ packageDir: import.meta.dirname, globalSetup: ['test/global-setup.ts'] });
