import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteBackend } from '../../src/index.js';
import { bytes, tempDir, text, uniqueTable } from '../support/files.js';
import { rawRows } from '../support/raw.js';

const dir = tempDir('data-methods');
const filename = join(dir, 'data-methods.db');
const open: SqliteBackend[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((backend) => backend.close()));
});

function backend(table = uniqueTable()): SqliteBackend {
  const made = new SqliteBackend({ filename, table, purgeIntervalMs: 0 });
  open.push(made);
  return made;
}

async function collect(keys: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const key of keys) out.push(key);
  return out;
}

describe('clear, keys, has and compareAndSet', () => {
  it('keys pages through more than one page in key order, leaving out expired values and lock-only rows', async () => {
    const store = backend();
    const keys = Array.from({ length: 2345 }, (_, i) => `k${String(i).padStart(5, '0')}`);
    await store.setMany(keys.map((key) => [key, bytes(key)]));
    await store.set('expired', bytes('x'), { expiresAt: Date.now() - 1 });
    const lease = await store.acquireLock('locked', { leaseMs: 60_000, waitMs: 0 });
    expect(await collect(store.keys())).toStrictEqual(keys);
    await store.releaseLock(lease!);
  });

  it('clear deletes never-locked rows and keeps lease and fence of the others, in one transaction', async () => {
    const store = backend();
    await store.setMany([
      ['a', bytes('1')],
      ['b', bytes('2')],
    ]);
    const lease = await store.acquireLock('b', { leaseMs: 60_000, waitMs: 0 });
    await store.clear();
    const rows = rawRows(filename, store.table);
    expect([...rows.keys()]).toStrictEqual(['b']);
    expect(rows.get('b')?.value).toBeNull();
    expect(rows.get('b')?.lock_token).toBe(lease!.token);
    expect(rows.get('b')?.fence).toBe(Number(lease!.fencingToken));
    expect(await store.set('b', bytes('3'), { lease: lease! })).toBe('written');
    expect(text(await store.get('b'))).toBe('3');
    await store.releaseLock(lease!);
  });

  it('has and compareAndSet honour expiry; compareAndSet compares whole BLOBs', async () => {
    const store = backend();
    await store.set('k', Uint8Array.from([0, 1, 2]));
    await store.set('gone', bytes('v'), { expiresAt: Date.now() - 1 });
    expect(await store.has('k')).toBe(true);
    expect(await store.has('gone')).toBe(false);
    expect(await store.compareAndSet('gone', bytes('v'), bytes('w'))).toBe(false);
    expect(await store.compareAndSet('k', Uint8Array.from([0, 1]), bytes('x'))).toBe(false);
    expect(await store.compareAndSet('k', Uint8Array.from([0, 1, 2, 3]), bytes('x'))).toBe(false);
    expect(await store.compareAndSet('k', Uint8Array.from([0, 1, 2]), new Uint8Array(0))).toBe(true);
    expect(await store.compareAndSet('k', new Uint8Array(0), bytes('y'))).toBe(true);
    expect(text(await store.get('k'))).toBe('y');
  });
});
