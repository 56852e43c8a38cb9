import { describeBackendConformance, describeFaultConformance } from '@latchkey/conformance';
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

/**
 * The deadline of the backends under network faults: short, so the 24 fault checks (each waits
 * out one deadline and a reconnect) stay quick, and long enough for a round trip at load 15.
 */
const FAULT_DEADLINE_MS = 1000;

/**
 * Registers the published suite's network-fault checks against the one server of `target`: the
 * suite puts its own proxy in front of it.
 */
export function describeFaultConformanceOn(target: Target | undefined): void {
  if (target === undefined) return;
  const server = target.servers.split(',')[0]?.trim() ?? '';
  const through = ({ host, port }: { host: string; port: number }): MemcachedBackend =>
    new MemcachedBackend({ servers: `${host}:${port}`, keyPrefix: uniquePrefix(), operationTimeoutMs: FAULT_DEADLINE_MS });
  describeFaultConformance(`MemcachedBackend on ${target.name}`, {
    create: () => new MemcachedBackend({ servers: server, keyPrefix: uniquePrefix(), operationTimeoutMs: FAULT_DEADLINE_MS }),
    faults: { server, createThrough: through },
    concurrency: 4,
  });
}
