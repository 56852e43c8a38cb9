import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PURGE_FAILED_WARNING, SqliteBackend } from '../../src/index.js';
import { bytes, tempDir, text, uniqueTable } from '../support/files.js';
import { rawConnection, rawRows } from '../support/raw.js';
import { writeFileSync } from 'node:fs';

const dir = tempDir('storage');
const filename = join(dir, 'storage.db');
const open: SqliteBackend[] = [];

afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(open.splice(0).map((backend) => backend.close()));
});

function backend(options: { table?: string; purgeIntervalMs?: number; purgeBatchSize?: number; filename?: string } = {}): SqliteBackend {
  const made = new SqliteBackend({ filename, table: uniqueTable(), ...options });
  open.push(made);
  return made;
}

describe('the file', () => {
  it('is in WAL mode and holds the documented table and its expiry index', async () => {
    const store = backend();
    await store.set('k', bytes('v'));
    const raw = rawConnection(filename);
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
      const columns = raw.pragma(`table_info(${store.table})`) as { name: string; type: string; pk: number; notnull: number }[];
      expect(columns.map(({ name, type, pk }) => [name, type, pk])).toStrictEqual([
        ['key', 'TEXT', 1],
        ['value', 'BLOB', 0],
        ['expires_at', 'INTEGER', 0],
        ['lock_token', 'TEXT', 0],
        ['lock_expires_at', 'INTEGER', 0],
        ['fence', 'INTEGER', 0],
      ]);
      const indexes = raw.pragma(`index_list(${store.table})`) as { name: string; partial: number }[];
      expect(indexes.find((index) => index.name === `${store.table}_expires_at`)?.partial).toBe(1);
    } finally {
      raw.close();
    }
  });

  it('keeps values as BLOBs byte for byte and expiries as epoch ms rounded up', async () => {
    const store = backend();
    const expiresAt = Date.now() + 60_000.25;
    await store.set('k', new Uint8Array([0, 255, 1]), { expiresAt });
    await store.set('forever', bytes('x'));
    const rows = rawRows(filename, store.table);
    expect([...(rows.get('k')?.value ?? [])]).toStrictEqual([0, 255, 1]);
    expect(rows.get('k')?.expires_at).toBe(Math.ceil(expiresAt));
    expect(rows.get('forever')?.expires_at).toBeNull();
  });

  it('keeps values across a reopen, and tables of one file apart', async () => {
    const table = uniqueTable();
    const first = new SqliteBackend({ filename, table });
    await first.set('k', bytes('kept'));
    await first.close();
    const reopened = backend({ table });
    const neighbour = backend();
    expect(text(await reopened.get('k'))).toBe('kept');
    expect(await neighbour.get('k')).toBeUndefined();
  });
});

describe('deletes and the purge', () => {
  it('removes the row of a key never locked at once, and keeps a tombstone with the fence of one that was', async () => {
    const store = backend();
    await store.set('plain', bytes('v'));
    await store.set('locked', bytes('v'));
    const lease = await store.acquireLock('locked', { leaseMs: 10_000, waitMs: 0 });
    await store.releaseLock(lease!);
    expect(await store.delete('plain')).toBe('deleted');
    expect(await store.delete('locked')).toBe('deleted');
    const rows = rawRows(filename, store.table);
    expect(rows.has('plain')).toBe(false);
    expect(rows.get('locked')).toMatchObject({ value: null, fence: 1 });
    expect(await store.get('locked')).toBeUndefined();
  });

  it('filters expired values on read before any purge, and purgeExpired removes them but no live value or held lease', async () => {
    const store = backend();
    const past = Date.now() - 1;
    await store.setMany(
      [
        ['old-1', bytes('x')],
        ['old-2', bytes('x')],
      ],
      { expiresAt: past },
    );
    await store.set('held-old', bytes('x'), { expiresAt: past });
    await store.acquireLock('held-old', { leaseMs: 60_000, waitMs: 0 });
    await store.set('live', bytes('live'), { expiresAt: Date.now() + 60_000 });
    expect(await store.getMany(['old-1', 'old-2', 'held-old'])).toStrictEqual([undefined, undefined, undefined]);
    expect(rawRows(filename, store.table).size, 'expired rows stay until purged').toBe(4);
    expect(await store.purgeExpired()).toBe(2);
    expect([...rawRows(filename, store.table).keys()].sort()).toStrictEqual(['held-old', 'live']);
    expect(text(await store.get('live'))).toBe('live');
  });

  it('purges in transactions of purgeBatchSize rows: purgeExpired takes them all, the background one batch per interval', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const store = backend({ purgeIntervalMs: 1000, purgeBatchSize: 10 });
    const expired = Array.from({ length: 25 }, (_, i) => [`k${i}`, bytes('x')] as const);
    await store.setMany(expired, { expiresAt: Date.now() - 1 });
    // The background purge runs its batch synchronously when its timer fires.
    vi.advanceTimersByTime(1000);
    expect(rawRows(filename, store.table).size).toBe(15);
    vi.advanceTimersByTime(1000);
    expect(rawRows(filename, store.table).size).toBe(5);
    await store.setMany(expired, { expiresAt: Date.now() - 1 });
    expect(await store.purgeExpired()).toBe(25);
    expect(rawRows(filename, store.table).size).toBe(0);
  });

  it('stops the background purge at close', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const table = uniqueTable();
    const store = new SqliteBackend({ filename, table, purgeIntervalMs: 1000 });
    await store.set('k', bytes('x'), { expiresAt: Date.now() - 1 });
    await store.close();
    vi.advanceTimersByTime(5000);
    expect(rawRows(filename, table).size, 'a closed backend purged').toBe(1);
  });

  it('warns once with LATCHKEY_SQLITE_PURGE_FAILED when the background purge fails for another reason than contention', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const garbage = join(dir, 'garbage.db');
    writeFileSync(garbage, Buffer.alloc(4096, 1));
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning);
    process.on('warning', onWarning);
    try {
      backend({ filename: garbage, purgeIntervalMs: 1000 });
      vi.advanceTimersByTime(3000);
      // process.emitWarning delivers on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    const ours = warnings.filter((warning) => (warning as Error & { code?: string }).code === PURGE_FAILED_WARNING);
    expect(ours).toHaveLength(1);
    expect(ours[0]?.message).toContain('not a healthy SQLite database');
  });
});
