/**
 * Servers for the adapter suites: the user's own (`LATCHKEY_REDIS_URL`,
 * `LATCHKEY_MEMCACHED_SERVERS`, `LATCHKEY_MONGODB_URL`, `LATCHKEY_POSTGRES_URL`) or throwaway ones from
 * `tools/test-servers` on free loopback ports, stopped at the end of the suite.
 *
 * @module
 */
import { errorMessage } from '../harness/index.js';

/** A server a suite may use. */
export interface BenchServer {
  /** redis/mongodb URL, or the memjs servers string (`host:port[,host:port]`). */
  readonly url: string;
  /** Where it came from, for the notes (e.g. `throwaway redis-server on 127.0.0.1:12345`). */
  readonly origin: string;
  /** True when this process started it (so the suite may assume nobody else uses it). */
  readonly dedicated: boolean;
  /** Stops it if this process started it. */
  stop(): Promise<void>;
}

/** Why a server is not available. */
export interface NoServer {
  readonly unavailable: string;
}

interface Handle {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

async function throwaway(
  kind: string,
  start: () => Promise<Handle>,
  describe: (handle: Handle) => string,
): Promise<BenchServer | NoServer> {
  let handle: Handle;
  try {
    handle = await start();
  } catch (error) {
    return { unavailable: `could not start a throwaway ${kind}: ${errorMessage(error)}` };
  }
  return { url: handle.url, origin: describe(handle), dedicated: true, stop: () => handle.stop() };
}

function fromEnv(name: string): BenchServer | undefined {
  const value = process.env[name];
  if (value === undefined || value.trim() === '') return undefined;
  return {
    url: value.trim(),
    origin: `${name} (${value.trim()}): a shared server, so command counts may include other clients`,
    dedicated: false,
    stop: async () => undefined,
  };
}

/** A Redis server: `LATCHKEY_REDIS_URL`, else a throwaway `redis-server`. */
export async function redisServer(): Promise<BenchServer | NoServer> {
  const own = fromEnv('LATCHKEY_REDIS_URL');
  if (own !== undefined) return own;
  return throwaway(
    'redis-server',
    async () => (await import('@latchkey/test-servers')).startRedis(),
    (h) => `throwaway redis-server on 127.0.0.1:${h.port} (tools/test-servers)`,
  );
}

/** A memcached server: `LATCHKEY_MEMCACHED_SERVERS`, else a throwaway `memcached`. */
export async function memcachedServer(): Promise<BenchServer | NoServer> {
  const own = fromEnv('LATCHKEY_MEMCACHED_SERVERS');
  if (own !== undefined) return own;
  return throwaway(
    'memcached',
    async () => (await import('@latchkey/test-servers')).startMemcached(),
    (h) => `throwaway memcached on 127.0.0.1:${h.port} (tools/test-servers)`,
  );
}

/** A MongoDB-wire server: `LATCHKEY_MONGODB_URL`, else a throwaway mongod or FerretDB. */
export async function mongoServer(): Promise<BenchServer | NoServer> {
  const own = fromEnv('LATCHKEY_MONGODB_URL');
  if (own !== undefined) return own;
  let engine = 'mongo';
  return throwaway(
    'MongoDB-wire server',
    async () => {
      const server = await (await import('@latchkey/test-servers')).startMongo();
      engine = server.engine === 'ferretdb' ? 'FerretDB 1.x (SQLite backend)' : 'mongod';
      return server;
    },
    (h) => `throwaway ${engine} on 127.0.0.1:${h.port} (tools/test-servers)`,
  );
}

/** A PostgreSQL server: `LATCHKEY_POSTGRES_URL`, else a throwaway `postgres` (initdb in a temp dir). */
export async function postgresServer(): Promise<BenchServer | NoServer> {
  const own = fromEnv('LATCHKEY_POSTGRES_URL');
  if (own !== undefined) return own;
  return throwaway(
    'PostgreSQL',
    async () => (await import('@latchkey/test-servers')).startPostgres(),
    (h) => `throwaway PostgreSQL on 127.0.0.1:${h.port} (tools/test-servers)`,
  );
}
