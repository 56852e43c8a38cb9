import { randomUUID } from 'node:crypto';
import { MongoBackend } from '@latchkey/mongo';
import { requireService } from '@latchkey/test-servers';
import { inject } from 'vitest';
import { describeKeyvSuite } from '../support/keyv-suites.js';

const url = inject('mongoUrl');
if (requireService('@keyv/test-suite on MongoBackend', url, inject('mongoUnavailable'))) {
  describeKeyvSuite('MongoBackend', (store) =>
    store.configure(new MongoBackend({ url, dbName: 'latchkey_keyv_test', collection: `keyv_${randomUUID().replaceAll('-', '')}` })),
  );
}
