import { packageVitestConfig } from '../../tools/vitest-shared.js';

// No test servers: the integration tests make their own database files in a temp directory.
export default packageVitestConfig({ packageDir: import.meta.dirname });
