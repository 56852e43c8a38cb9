import { randomUUID } from 'node:crypto';
import { describeBackendConformance, describeFaultConformance } from '@latchkey/conformance';
import { afterAll } from 'vitest';
import { RedisBackend } from '../../src/index.js';
import { availableTargets, closeAll, dropPrefix } from '../support/targets.js';

afterAll(closeAll);

for (const target of availableTargets('RedisBackend conformance')) {
  /** Each backend's prefix, so a peer can share its data and locks and cleanup can find them. */
  const prefixes = new WeakMap<RedisBackend, string>();
  const make = (keyPrefix: string): RedisBackend => {
    // A 1 MiB limit (as for a server with a lowered proto-max-bulk-len) keeps the value-size
    // checks feasible: the default 512 MiB is beyond what a JavaScript string can hold.
    const backend = new RedisBackend({ ...target.connection, keyPrefix, maxValueBytes: 1024 * 1024 });
    prefixes.set(backend, keyPrefix);
    return backend;
  };
  describeBackendConformance(`RedisBackend on ${target.name}`, {
    create: () => make(`conf-${randomUUID().slice(0, 8)}:`),
    createPeer: (backend) => make(prefixes.get(backend) ?? ''),
    destroy: async (backend) => {
      const prefix = prefixes.get(backend);
      if (prefix !== undefined && prefix !== '') await dropPrefix(target, prefix);
    },
  });
}

/**
 * The deadline of the backends under network faults: short, so the 36 fault checks (each waits
 * out one deadline and a reconnect) stay quick, and long enough for a round trip at load 15.
 */
const FAULT_DEADLINE_MS = 1000;

// Network faults through the suite's own proxy, on standalone Redis (a cluster client follows
// redirects to node addresses a single proxy cannot stand in for).
for (const target of availableTargets('RedisBackend network faults').filter((found) => found.name === 'standalone')) {
  const url = new URL(target.connection.url as string);
  const prefixes = new WeakMap<RedisBackend, string>();
  const through = (address: { host: string; port: number }): RedisBackend => {
    const keyPrefix = `faults-${randomUUID().slice(0, 8)}:`;
    const backend = new RedisBackend({ url: `redis://${address.host}:${address.port}`, keyPrefix, operationTimeoutMs: FAULT_DEADLINE_MS });
    prefixes.set(backend, keyPrefix);
    return backend;
  };
  describeFaultConformance('RedisBackend on standalone', {
    create: () => through({ host: url.hostname, port: Number(url.port) }),
    destroy: async (backend) => {
      const prefix = prefixes.get(backend);
      if (prefix !== undefined) await dropPrefix(target, prefix);
    },
    faults: { server: { host: url.hostname, port: Number(url.port) }, createThrough: through },
    concurrency: 4,
  });
}
