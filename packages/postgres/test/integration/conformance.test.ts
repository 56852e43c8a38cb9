import { describeBackendConformance, describeFaultConformance } from '@latchkey/conformance';
import { afterAll, describe } from 'vitest';
import { PostgresBackend } from '../../src/index.js';
import { closeAll, createBackend, postgresAvailable, postgresUrl, track, uniqueTable } from '../support/postgres.js';

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

/**
 * The deadline of the backends under network faults: short, so the 36 fault checks (each waits
 * out one deadline and a reconnect) stay quick, and long enough for a statement at load 15.
 */
const FAULT_DEADLINE_MS = 1000;

/** `postgresUrl` with the host and port of `address`. */
function urlThrough(address: { host: string; port: number }): string {
  const url = new URL(postgresUrl as string);
  url.host = `${address.host}:${address.port}`;
  return url.href;
}

describe.runIf(postgresAvailable('PostgresBackend network faults'))('network faults', () => {
  afterAll(closeAll);
  const server = new URL(postgresUrl ?? 'postgres://127.0.0.1:1/');
  const through = (address: { host: string; port: number }): Promise<PostgresBackend> =>
    ready(track(new PostgresBackend({ url: urlThrough(address), table: uniqueTable(), operationTimeoutMs: FAULT_DEADLINE_MS })));
  describeFaultConformance('PostgresBackend', {
    create: () => through({ host: server.hostname, port: Number(server.port) }),
    faults: { server: { host: server.hostname, port: Number(server.port) }, createThrough: through },
    concurrency: 4,
  });
});
