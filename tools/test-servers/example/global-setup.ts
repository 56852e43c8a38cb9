// What a package's test/global-setup.ts looks like (this one asks for every kind).
import { createGlobalSetup } from '@latchkey/test-servers';

export default createGlobalSetup(['redis', 'redis-cluster', 'redis-sentinel', 'memcached', 'memcached-pair', 'mongo']);
