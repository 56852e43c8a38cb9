import { afterAll } from 'vitest';
import { defineFailoverTests, FAILOVER_RESULTS } from '../scenarios/failover.js';
import { flushResults } from '../stats.js';

defineFailoverTests();

afterAll(() => flushResults(FAILOVER_RESULTS));
