import { MemoryBackend } from '@latchkey/memory';
import { describeBackendConformance } from '../../src/index.js';

// A bounded MemoryBackend keeps least-recently-used order on every read and evicts on writes:
// the data and ttl groups cover those paths, and `maxEntries` turns on the eviction checks.
const MAX_ENTRIES = 1_100;

describeBackendConformance('MemoryBackend with maxEntries', {
  create: () => new MemoryBackend({ maxEntries: MAX_ENTRIES }),
  maxEntries: MAX_ENTRIES,
  only: ['data', 'ttl'],
});
