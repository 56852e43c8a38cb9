import { randomUUID } from 'node:crypto';
import { MemcachedBackend } from '@latchkey/memcached';
import { requireService } from '@latchkey/test-servers';
import { inject } from 'vitest';
import { describeKeyvSuite } from '../support/keyv-suites.js';

const servers = inject('memcachedServers');
if (requireService('@keyv/test-suite on MemcachedBackend', servers, inject('memcachedUnavailable'))) {
  describeKeyvSuite('MemcachedBackend', (store) =>
    store.configure(new MemcachedBackend({ servers, keyPrefix: `keyv-${randomUUID().slice(0, 8)}:` })),
  );
}
