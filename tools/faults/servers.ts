/**
 * Server-side faults: making a server lose its data (flush, drop), and dedicated throwaway
 * servers the scenarios may kill, restart or put behind a proxy without disturbing the
 * suite's shared servers.
 *
 * @module
 */
import Database from 'better-sqlite3';
import { MongoClient } from 'mongodb';
import pg from 'pg';
import {
  POSTGRES_USER,
  redisCommand,
  type ServerHandle,
  startMemcached,
  startMongo,
  startPostgres,
  startRedis,
  tcpRequest,
} from '@latchkey/test-servers';
import { MONGO_DB_NAME, type BackendKind, type BackendTarget } from './backends.js';

/** `host` and `port` of a Redis URL, a memcached servers string or a MongoDB URL. */
export function hostPort(address: string): { host: string; port: number } {
  const match = /^(?:[a-z]+:\/\/)?([^:/,]+):(\d+)/.exec(address);
  if (match === null) throw new Error(`not a host:port address: ${address}`);
  return { host: match[1] as string, port: Number(match[2]) };
}

/** The address `kind`'s adapter takes for a server on `127.0.0.1:port`. */
export function addressFor(kind: Exclude<BackendKind, 'memory'>, port: number): string {
  switch (kind) {
    case 'redis':
      return `redis://127.0.0.1:${port}`;
    case 'memcached':
      return `127.0.0.1:${port}`;
    case 'mongo':
      return `mongodb://127.0.0.1:${port}/`;
    case 'postgres':
      // The role and database of the throwaway servers (tools/test-servers).
      return `postgres://${POSTGRES_USER}@127.0.0.1:${port}/${POSTGRES_USER}`;
    case 'sqlite':
      throw new Error('sqlite has no server: its address is the database file');
  }
}

/**
 * Makes the server of `target` lose its data, as a restart without persistence would:
 * Redis `FLUSHALL`, memcached `flush_all`, dropping the mongo collection, or deleting every
 * row of the sqlite table.
 */
export async function loseServerData(target: BackendTarget): Promise<void> {
  if (target.kind === 'sqlite') {
    // The file's counterpart of a flush: every row of the run's table goes, leases included.
    const db = new Database(target.address, { timeout: 5000 });
    try {
      db.exec(`DELETE FROM "${target.namespace}"`);
    } finally {
      db.close();
    }
    return;
  }
  const { host, port } = hostPort(target.address);
  switch (target.kind) {
    case 'memory':
      throw new Error('memory has no server: flush the MemoryBackend itself');
    case 'redis': {
      const reply = await redisCommand(host, port, 'FLUSHALL');
      if (!reply.startsWith('+OK')) throw new Error(`FLUSHALL answered ${reply}`);
      return;
    }
    case 'memcached': {
      const reply = await tcpRequest(host, port, 'flush_all\r\n', (received) => received.includes('\r\n'));
      if (!reply.toString('latin1').startsWith('OK')) throw new Error(`flush_all answered ${reply.toString('latin1')}`);
      return;
    }
    case 'mongo': {
      const client = new MongoClient(target.address, { serverSelectionTimeoutMS: 5000 });
      try {
        await client.db(MONGO_DB_NAME).collection(target.namespace).drop();
      } finally {
        await client.close();
      }
      return;
    }
    case 'postgres': {
      // The table's counterpart of a flush: every row of the run goes, leases and fences included.
      const client = new pg.Client({ connectionString: target.address, connectionTimeoutMillis: 5000 });
      await client.connect();
      try {
        await client.query(`TRUNCATE "${target.namespace}"`);
      } finally {
        await client.end();
      }
    }
  }
}

/** Options of {@link startDedicatedServer}. */
export interface DedicatedServerOptions {
  /**
   * Redis only: `appendonly yes` with `appendfsync always`. (With the default `everysec`,
   * Redis may acknowledge writes it has not yet handed to the kernel — it postpones the AOF
   * write while a slow background fsync runs — so a kill -9 can lose acknowledged writes
   * whatever the client does; the suite measured 1 lost of 5,343 on a loaded machine.)
   */
  readonly appendonly?: boolean;
}

/** Starts a throwaway server of `kind` that only the calling scenario uses. */
export async function startDedicatedServer(
  kind: Exclude<BackendKind, 'memory'>,
  options: DedicatedServerOptions = {},
): Promise<ServerHandle> {
  switch (kind) {
    case 'redis':
      return options.appendonly === true ? startRedis({ appendonly: true, extraArgs: ['--appendfsync', 'always'] }) : startRedis();
    case 'memcached':
      return startMemcached();
    case 'mongo':
      return startMongo();
    case 'postgres':
      return startPostgres();
    case 'sqlite':
      throw new Error('sqlite has no server to start: its backends share a file');
  }
}
