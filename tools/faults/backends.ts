/**
 * The backend factory registry of the fault suite: how to build each backend for a server
 * address, from a description that can cross a process boundary (worker processes get a
 * {@link BackendTarget} over IPC and build their own backend from it).
 *
 * Adapters are loaded by dynamic import, by package name: {@link adapterStatus} says whether
 * a package loads and exports its backend, and `requireAdapter` decides what the suite of an
 * unusable adapter does (skip with the reason, or fail under `LATCHKEY_REQUIRE_SERVICES=1`).
 *
 * @module
 */
import type { Backend, BackendCapabilities } from '@latchkey/core';
import { MemoryBackend } from '@latchkey/memory';

/** Backends the fault suite knows. */
export type BackendKind = 'memory' | 'redis' | 'memcached' | 'mongo' | 'sqlite' | 'postgres';

/** Every kind, in the order suites and reports list them. */
export const BACKEND_KINDS: readonly BackendKind[] = ['memory', 'redis', 'memcached', 'mongo', 'sqlite', 'postgres'];

/**
 * Whether `kind` talks to a server over the network: memory and sqlite (a file) have none to
 * restart, cut off or delay, so the server and network scenarios do not apply to them.
 */
export function hasServer(kind: BackendKind): boolean {
  return kind !== 'memory' && kind !== 'sqlite';
}

/** A backend to build: plain data, so it can be sent to a worker process. */
export interface BackendTarget {
  readonly kind: BackendKind;
  /**
   * How the adapter reaches its server: a Redis URL, a memcached servers string, a MongoDB
   * URL, or for sqlite the database file. Ignored for memory.
   */
  readonly address: string;
  /** Isolates one run's data: the key prefix (redis, memcached), collection (mongo) or table (sqlite). */
  readonly namespace: string;
  /** The adapter's own deadline for each call. */
  readonly operationTimeoutMs: number;
}

/** Whether an adapter package can be used yet. */
export type AdapterStatus = { readonly ready: true } | { readonly ready: false; readonly reason: string };

/** Where an adapter's backend class is loaded from. */
export interface AdapterSource {
  /** The package (or any module specifier) to import. */
  readonly packageName: string;
  /** The export that is the backend class. */
  readonly exportName: string;
}

interface AdapterDescriptor extends AdapterSource {
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
  sqlite: {
    packageName: '@latchkey/sqlite',
    exportName: 'SqliteBackend',
    options: (target) => ({ filename: target.address, table: target.namespace, operationTimeoutMs: target.operationTimeoutMs }),
  },
  postgres: {
    packageName: '@latchkey/postgres',
    exportName: 'PostgresBackend',
    options: (target) => ({ url: target.address, table: target.namespace, operationTimeoutMs: target.operationTimeoutMs }),
  },
};

type BackendConstructor = new (options: Record<string, unknown>) => Backend;

/** Imports `adapter`'s backend class, or says why it cannot. */
async function loadConstructor(adapter: AdapterSource): Promise<BackendConstructor | string> {
  // A computed specifier: the suite typechecks without the adapters' builds.
  const specifier: string = adapter.packageName;
  let module: Record<string, unknown>;
  try {
    module = (await import(specifier)) as Record<string, unknown>;
  } catch (error) {
    return `${adapter.packageName} cannot be loaded: ${error instanceof Error ? error.message : String(error)}`;
  }
  const constructor = module[adapter.exportName];
  if (typeof constructor !== 'function') return `${adapter.packageName} does not export ${adapter.exportName}`;
  return constructor as BackendConstructor;
}

/** Whether `adapter`'s module loads and exports its backend class; if not, why. */
export async function adapterSourceStatus(adapter: AdapterSource): Promise<AdapterStatus> {
  const loaded = await loadConstructor(adapter);
  return typeof loaded === 'string' ? { ready: false, reason: loaded } : { ready: true };
}

/** Whether `kind`'s adapter package loads and exports its backend class (memory always does). */
export async function adapterStatus(kind: BackendKind): Promise<AdapterStatus> {
  return kind === 'memory' ? { ready: true } : adapterSourceStatus(ADAPTERS[kind]);
}

/**
 * Builds the backend `target` describes (a fresh `MemoryBackend` for memory).
 * @throws {Error} when the adapter is not available (see {@link adapterStatus}).
 */
export async function createBackend(target: BackendTarget): Promise<Backend> {
  if (target.kind === 'memory') return new MemoryBackend();
  const loaded = await loadConstructor(ADAPTERS[target.kind]);
  if (typeof loaded === 'string') throw new Error(loaded);
  return new loaded(ADAPTERS[target.kind].options(target));
}

/** A lease the backend accepts for fault scenarios: `preferredMs`, or its minimum when longer. */
export function leaseFor(capabilities: BackendCapabilities, preferredMs: number): number {
  return Math.max(preferredMs, capabilities.minLeaseMs);
}
