/**
 * The backend factory registry of the fault suite: how to build each backend for a server
 * address, from a description that can cross a process boundary (worker processes get a
 * {@link BackendTarget} over IPC and build their own backend from it).
 *
 * Adapters are loaded by dynamic import so the suite runs while some are still unwritten:
 * {@link adapterStatus} says whether a package exports its backend yet, and the scenarios of
 * a missing adapter skip with that reason.
 *
 * @module
 */
import type { Backend, BackendCapabilities } from '@latchkey/core';
import { MemoryBackend } from '@latchkey/memory';

/** Backends the fault suite knows. */
export type BackendKind = 'memory' | 'redis' | 'memcached' | 'mongo';

/** Every kind, in the order suites and reports list them. */
export const BACKEND_KINDS: readonly BackendKind[] = ['memory', 'redis', 'memcached', 'mongo'];

/** A backend to build: plain data, so it can be sent to a worker process. */
export interface BackendTarget {
  readonly kind: BackendKind;
  /**
   * How the adapter reaches its server: a Redis URL, a memcached servers string, a MongoDB
   * URL. Ignored for memory.
   */
  readonly address: string;
  /** Isolates one run's data: the key prefix (redis, memcached) or collection (mongo). */
  readonly namespace: string;
  /** The adapter's own deadline for each call. */
  readonly operationTimeoutMs: number;
}

/** Whether an adapter package can be used yet. */
export type AdapterStatus = { readonly ready: true } | { readonly ready: false; readonly reason: string };

interface AdapterDescriptor {
  readonly packageName: string;
  readonly exportName: string;
  readonly options: (target: BackendTarget) => Record<string, unknown>;
}

/** Database the mongo backends of the suite use. */
export const MONGO_DB_NAME = 'latchkey_faults';

const ADAPTERS: Record<Exclude<BackendKind, 'memory'>, AdapterDescriptor> = {
  redis: {
    packageName: '@latchkey/redis',
    exportName: 'RedisBackend',
    options: (target) => ({ url: target.address, keyPrefix: `${target.namespace}:`, operationTimeoutMs: target.operationTimeoutMs }),
  },
  memcached: {
    packageName: '@latchkey/memcached',
    exportName: 'MemcachedBackend',
    options: (target) => ({ servers: target.address, keyPrefix: `${target.namespace}:`, operationTimeoutMs: target.operationTimeoutMs }),
  },
  mongo: {
    packageName: '@latchkey/mongo',
    exportName: 'MongoBackend',
    options: (target) => ({
      url: target.address,
      dbName: MONGO_DB_NAME,
      collection: target.namespace,
      operationTimeoutMs: target.operationTimeoutMs,
    }),
  },
};

type BackendConstructor = new (options: Record<string, unknown>) => Backend;

async function loadConstructor(kind: Exclude<BackendKind, 'memory'>): Promise<BackendConstructor | string> {
  const adapter = ADAPTERS[kind];
  // A computed specifier: the suite typechecks and runs while an adapter is unwritten or unbuilt.
  const specifier: string = adapter.packageName;
  let module: Record<string, unknown>;
  try {
    module = (await import(specifier)) as Record<string, unknown>;
  } catch (error) {
    return `${adapter.packageName} cannot be loaded: ${error instanceof Error ? error.message : String(error)}`;
  }
  const constructor = module[adapter.exportName];
  if (typeof constructor !== 'function') return `${adapter.packageName} does not export ${adapter.exportName} yet`;
  return constructor as BackendConstructor;
}

/** Whether `kind`'s adapter package exports its backend class (memory always does). */
export async function adapterStatus(kind: BackendKind): Promise<AdapterStatus> {
  if (kind === 'memory') return { ready: true };
  const loaded = await loadConstructor(kind);
  return typeof loaded === 'string' ? { ready: false, reason: loaded } : { ready: true };
}

/**
 * Builds the backend `target` describes (a fresh `MemoryBackend` for memory).
 * @throws {Error} when the adapter is not available (see {@link adapterStatus}).
 */
export async function createBackend(target: BackendTarget): Promise<Backend> {
  if (target.kind === 'memory') return new MemoryBackend();
  const loaded = await loadConstructor(target.kind);
  if (typeof loaded === 'string') throw new Error(loaded);
  return new loaded(ADAPTERS[target.kind].options(target));
}

/** A lease the backend accepts for fault scenarios: `preferredMs`, or its minimum when longer. */
export function leaseFor(capabilities: BackendCapabilities, preferredMs: number): number {
  return Math.max(preferredMs, capabilities.minLeaseMs);
}
