import { inject } from 'vitest';
import { describeBackendFaults } from '../suite.js';

await describeBackendFaults('postgres', { address: inject('postgresUrl'), unavailable: inject('postgresUnavailable') });
