// Starts throwaway redis, memcached and MongoDB-wire servers for the integration suites (or uses
// the LATCHKEY_* addresses); tests read them with inject().
import { createGlobalSetup } from '@latchkey/test-servers';

export const setup = createGlobalSetup(['redis', 'memcached', 'mongo']);
