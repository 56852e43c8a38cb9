import { createGlobalSetup } from '../../../tools/test-servers/global-setup.js';

export default createGlobalSetup(['redis', 'redis-cluster', 'redis-sentinel']);
