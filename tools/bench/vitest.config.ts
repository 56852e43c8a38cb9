import { mergeConfig } from 'vitest/config';
import { packageVitestConfig } from '../vitest-shared.js';

// Unit tests of the harness and the report generator: no servers, no timing.
export default mergeConfig(packageVitestConfig({ packageDir: import.meta.dirname }), { test: { name: 'bench' } });
