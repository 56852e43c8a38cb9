/**
 * The vitest run that Stryker mutates against: the conformance suite only, run against
 * MemoryBackend (default, bounded, and behind the kit guards with size limits), so the score
 * measures what the suite proves about a backend, never what the memory or core unit tests
 * prove.
 */
import { resolve } from 'node:path';
import { packageVitestConfig } from '../vitest-shared.js';

export default packageVitestConfig({
  packageDir: resolve(import.meta.dirname, '../../packages/conformance'),
  include: ['test/unit/memory-backend.conformance.test.ts', 'test/unit/*-memory-backend.conformance.test.ts'],
});
