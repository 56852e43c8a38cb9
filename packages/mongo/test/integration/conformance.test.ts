import { afterAll, describe } from 'vitest';
import { describeBackendConformance, describeFaultConformance } from '@latchkey/conformance';
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

/**
 * The deadline of the backends under network faults: the fault checks hold every call to it, so
 * it is short (each check waits out one deadline and a reconnect) yet above what a small write
 * takes FerretDB at load average 15.
 */
const FAULT_DEADLINE_MS = 2000;

/** `mongoUrl` with the host and port of `address`, as a direct connection (no topology discovery past the proxy). */
function urlThrough(address: { host: string; port: number }): string {
  const url = new URL(mongoUrl as string);
  url.host = `${address.host}:${address.port}`;
  url.searchParams.set('directConnection', 'true');
  return url.href;
}

describe.runIf(mongoAvailable('MongoBackend network faults'))('network faults', () => {
  afterAll(closeTestClient);
  const server = new URL(mongoUrl ?? 'mongodb://127.0.0.1:1/');
  const through = (address: { host: string; port: number }): Promise<MongoBackend> =>
    connected(createBackend({ url: urlThrough(address), operationTimeoutMs: FAULT_DEADLINE_MS }));
  describeFaultConformance('MongoBackend', {
    create: () => through({ host: server.hostname, port: Number(server.port) }),
    destroy: (backend) => dropCollection(backend),
    faults: { server: { host: server.hostname, port: Number(server.port) }, createThrough: through },
    concurrency: 4,
  });
});
