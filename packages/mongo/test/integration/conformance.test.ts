import { afterAll, describe } from 'vitest';
import { describeBackendConformance } from '@latchkey/conformance';
import { MongoBackend } from '../../src/index.js';
import { closeTestClient, createBackend, dropCollection, mongoAvailable, mongoUrl, TEST_DB } from './mongo-test-env.js';

async function connected(backend: MongoBackend): Promise<MongoBackend> {
  await backend.get('connection-warm-up');
  return backend;
}

/**
 * Deadline of each call and time limit of each check. The checks do not test deadlines, but one
 * stores values of exactly maxValueBytes (16 MiB) two or three times: FerretDB (SQLite, one
 * command at a time) took 1–3 s per 16 MiB write on the quiet two-core test machine and 10–30 s
 * at load average 13, where the usual 5 s deadline and 26 s limit cut it off (and the writes it
 * abandoned then held up the checks after it).
 */
const CALL_DEADLINE_MS = 60_000;
const CHECK_TIME_LIMIT_MS = 150_000;

describe.runIf(mongoAvailable('MongoBackend conformance'))('conformance', () => {
  afterAll(closeTestClient);
  describeBackendConformance('MongoBackend', {
    // Connected before the checks start: timing checks then measure the server, not the
    // first connection's handshake (which would otherwise eat into a 300 ms lease).
    create: () => connected(createBackend({ operationTimeoutMs: CALL_DEADLINE_MS })),
    // A second client on the same collection: exclusion across processes is exclusion across clients.
    createPeer: (backend) =>
      connected(
        new MongoBackend({
          url: mongoUrl as string,
          dbName: TEST_DB,
          collection: backend.collection.collectionName,
          documentTtlIndex: false,
          operationTimeoutMs: CALL_DEADLINE_MS,
        }),
      ),
    destroy: (backend) => dropCollection(backend),
    testTimeoutMs: CHECK_TIME_LIMIT_MS,
  });
});
