import { EventEmitter } from 'node:events';
import type { Pool } from 'pg';
import { describe, expect, it } from 'vitest';
import { Database } from '../../src/internal/database.js';
import { resolvePostgresBackendOptions } from '../../src/postgres-backend-options.js';

/** A pooled client that answers its query, then reports its connection gone (as pg does when a FATAL follows a result in one read). */
function dyingClient(): EventEmitter & { released: unknown[] } {
  const client = Object.assign(new EventEmitter(), {
    released: [] as unknown[],
    query: async () => {
      client.emit('error', new Error('terminating connection due to unexpected postmaster exit'));
      return { rows: [{ value: null }], rowCount: 1 };
    },
    release: (error?: unknown) => {
      client.released.push(error);
    },
  });
  return client;
}

describe('Database.query', () => {
  it('hears an error a checked-out client reports, and releases that client as broken', async () => {
    const client = dyingClient();
    const pool = { connect: async () => client, options: {} } as unknown as Pool;
    const db = new Database({ options: { pool }, resolved: resolvePostgresBackendOptions({ pool, createTable: false }), schema: '' });
    const result = await db.query({ name: 'n', text: 'SELECT 1' }, []);
    expect(result.rowCount).toBe(1);
    expect(client.released).toEqual([expect.objectContaining({ message: expect.stringContaining('postmaster exit') })]);
    // Back in the pool, the client is the pool's to listen to.
    expect(client.listenerCount('error')).toBe(0);
  });
});
