import { describeBackendConformance } from '@latchkey/conformance';
import { MemcachedBackend } from '../../src/index.js';
import { uniquePrefix, type Target } from './targets.js';

/** Registers the published conformance suite against `target`. */
export function describeConformanceOn(target: Target | undefined): void {
  if (target === undefined) return;
  describeBackendConformance(`MemcachedBackend on ${target.name}`, {
    create: () => new MemcachedBackend({ servers: target.servers, keyPrefix: uniquePrefix() }),
    // A second client on the same servers and prefix: it shares every value and lock.
    createPeer: (backend) => new MemcachedBackend({ servers: target.servers, keyPrefix: backend.keyPrefix }),
  });
}
