import { inject } from 'vitest';
import { describeBackendFaults } from '../suite.js';

await describeBackendFaults('memcached', { address: inject('memcachedServers'), unavailable: inject('memcachedUnavailable') });
