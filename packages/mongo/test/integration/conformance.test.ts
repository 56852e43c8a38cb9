import { afterAll, describe } from 'vitest';
import { describeBackendConformance } from '@latchkey/conformance';
import { MongoBackend } from '../../src/index.js';
import { closeTestClient, createBackend, dropCollection, mongoAvailable, mongoUrl, TEST_DB } from './mongo-test-env.js';

async function connected(backend: MongoBackend): Promise<MongoBackend> {
  await backend.get('connection-warm-up');
  return backend;
}

describe.runIf(mongoAvailable('MongoBackend conformance'))('conformance', () => {
  afterAll(closeTestClient);
  describeBackendConformance('MongoBackend', {
    // Connected before the checks start: timing checks then measure the server, not the
    // first connection's handshake (which would otherwise eat into a 300 ms lease).
    create: () => connected(createBackend()),
    // A second client on the same collection: exclusion across processes is exclusion across clients.
    createPeer: (backend) =>
      connected(
        new MongoBackend({
          url: mongoUrl as string,
          dbName: TEST_DB,
          collection: backend.collection.collectionName,
          documentTtlIndex: false,
        }),
      ),
    destroy: (backend) => dropCollection(backend),
  });
});
