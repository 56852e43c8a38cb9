import { randomUUID } from 'node:crypto';
import { describeBackendConformance } from '@latchkey/conformance';
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
