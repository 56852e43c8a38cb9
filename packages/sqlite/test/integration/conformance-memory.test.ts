import { describeBackendConformance } from '@latchkey/conformance';
import { SqliteBackend } from '../../src/index.js';

// A private in-memory database per backend: no peer can share it, so locks are in-process.
describeBackendConformance('SqliteBackend on :memory:', {
  create: () => new SqliteBackend({ filename: ':memory:' }),
});
