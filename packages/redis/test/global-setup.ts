import { createGlobalSetup } from '@latchkey/test-servers';

export default createGlobalSetup(['redis', 'redis-cluster', 'redis-sentinel']);
