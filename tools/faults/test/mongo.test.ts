import { inject } from 'vitest';
import { describeBackendFaults } from '../suite.js';

await describeBackendFaults('mongo', { address: inject('mongoUrl'), unavailable: inject('mongoUnavailable') });
