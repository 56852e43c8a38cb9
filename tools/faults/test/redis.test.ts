import { inject } from 'vitest';
import { describeBackendFaults } from '../suite.js';

await describeBackendFaults('redis', { address: inject('redisUrl'), unavailable: inject('redisUnavailable') });
