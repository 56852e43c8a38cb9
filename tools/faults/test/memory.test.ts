import { describeBackendFaults } from '../suite.js';

await describeBackendFaults('memory', { address: undefined, unavailable: undefined });
