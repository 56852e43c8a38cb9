import { randomUUID } from 'node:crypto';
import { RedisBackend } from '@latchkey/redis';
import { requireService } from '@latchkey/test-servers';
import { inject } from 'vitest';
import { describeKeyvSuite } from '../support/keyv-suites.js';

const url = inject('redisUrl');
if (requireService('@keyv/test-suite on RedisBackend', url, inject('redisUnavailable'))) {
  describeKeyvSuite('RedisBackend', (store) => store.configure(new RedisBackend({ url, keyPrefix: `keyv-${randomUUID().slice(0, 8)}:` })));
}
