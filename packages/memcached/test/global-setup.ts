import { createGlobalSetup } from '@latchkey/test-servers';

/** Starts one memcached and a pair for the multi-server suites (vitest runs `setup`, then the teardown it returns). */
export const setup = createGlobalSetup(['memcached', 'memcached-pair']);
