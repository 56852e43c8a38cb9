import { describeBackendConformance } from '@latchkey/conformance';
import { afterAll, describe } from 'vitest';
import { PostgresBackend } from '../../src/index.js';
import { closeAll, createBackend, postgresAvailable, postgresUrl } from '../support/postgres.js';

/** Connected and with its table in place before the checks start: timing checks then measure statements, not the first connect. */
async function ready(backend: PostgresBackend): Promise<PostgresBackend> {
  await backend.get('warm-up');
  return backend;
}

describe.runIf(postgresAvailable('PostgresBackend conformance'))('conformance', () => {
  // Tables are dropped once all checks are done: a peer still gives back its leases when the suite closes it.
  afterAll(closeAll);
  describeBackendConformance('PostgresBackend', {
    // A 1 MiB limit keeps the value-size checks (which store a value of exactly the limit) quick.
    create: () => ready(createBackend({ maxValueBytes: 1024 * 1024 })),
    // A second backend on the same table: exclusion across processes is exclusion across backends.
    createPeer: (backend) =>
      ready(new PostgresBackend({ url: postgresUrl as string, table: (backend as PostgresBackend).table, maxValueBytes: 1024 * 1024 })),
  });
});
