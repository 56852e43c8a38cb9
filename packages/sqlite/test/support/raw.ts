import Database from 'better-sqlite3';
import { quote } from '../../src/internal/statements.js';

/** One row of a latchkey table, as stored. */
export interface RawRow {
  readonly key: string;
  readonly value: Buffer | null;
  readonly expires_at: number | null;
  readonly lock_token: string | null;
  readonly lock_expires_at: number | null;
  readonly fence: number;
}

/** A plain better-sqlite3 connection to `filename`, to look at (or lock) what the backend stored. */
export function rawConnection(filename: string): Database.Database {
  return new Database(filename, { timeout: 0 });
}

/** Every row of `table` in `filename`, by key. */
export function rawRows(filename: string, table: string): Map<string, RawRow> {
  const db = rawConnection(filename);
  try {
    const rows = db.prepare(`SELECT * FROM ${quote(table)}`).all() as RawRow[];
    return new Map(rows.map((row) => [row.key, row]));
  } finally {
    db.close();
  }
}
