import { randomUUID } from 'node:crypto';
import { MemcachedBackend } from '@latchkey/memcached';
import { requireService } from '@latchkey/test-servers';
import { inject } from 'vitest';
import { describeKeyvSuite } from '../support/keyv-suites.js';

const servers = inject('memcachedServers');
if (requireService('@keyv/test-suite on MemcachedBackend', servers, inject('memcachedUnavailable'))) {
  // Read from the backend itself: should it ever list its keys, the iterator group runs.
  const lists = typeof (MemcachedBackend.prototype as { keys?: unknown }).keys === 'function';
  describeKeyvSuite(
    'MemcachedBackend',
    (store) => store.configure(new MemcachedBackend({ servers, keyPrefix: `keyv-${randomUUID().slice(0, 8)}:` })),
    lists ? {} : { cannotList: 'memcached cannot list its keys (MemcachedBackend has no keys()), like @keyv/memcache' },
  );
}
