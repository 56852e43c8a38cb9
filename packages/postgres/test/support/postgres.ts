import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { requireService } from '@latchkey/test-servers';
import { PostgresBackend, type PostgresBackendOptions } from '../../src/index.js';

/** The test server's URL (the throwaway cluster, or LATCHKEY_POSTGRES_URL). */
export const postgresUrl = inject('postgresUrl');

/** Whether the suite named `suite` runs (skips with the reason, or throws under LATCHKEY_REQUIRE_SERVICES=1). */
export function postgresAvailable(suite: string): boolean {
  return requireService(suite, postgresUrl, inject('postgresUnavailable'));
}

const opened: { close(): Promise<unknown> }[] = [];
const tables = new Set<string>();
let adminPool: pg.Pool | undefined;

/** A table name no other test uses. */
export function uniqueTable(prefix = 't'): string {
  const table = `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  tables.add(table);
  return table;
}

/** A backend on the test server (a fresh table unless `options.table` is given), closed by {@link closeAll}. */
export function createBackend(options: Omit<PostgresBackendOptions, 'url' | 'pool'> = {}): PostgresBackend {
  const backend = new PostgresBackend({ table: uniqueTable(), ...options, url: postgresUrl as string });
  opened.push(backend);
  return backend;
}

/** Tracks something for {@link closeAll} to close. */
export function track<T extends { close(): Promise<unknown> }>(item: T): T {
  opened.push(item);
  return item;
}

/** A plain pg pool on the test server, for looking behind the backend's back. */
export function admin(): pg.Pool {
  adminPool ??= new pg.Pool({ connectionString: postgresUrl as string, max: 2 });
  return adminPool;
}

/** The rows of `table`, ordered by key. */
export async function rowsOf(table: string): Promise<Record<string, unknown>[]> {
  return (await admin().query(`SELECT * FROM "${table}" ORDER BY key`)).rows;
}

/** Drops `table` if it exists. */
export async function dropTable(table: string): Promise<void> {
  await admin().query(`DROP TABLE IF EXISTS "${table}"`);
}

/** Closes every backend opened here, drops the tables made here and ends the admin pool. */
export async function closeAll(): Promise<void> {
  await Promise.all(opened.splice(0).map((item) => item.close()));
  if (postgresUrl === undefined) return;
  for (const table of tables) await dropTable(table);
  tables.clear();
  await adminPool?.end();
  adminPool = undefined;
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
