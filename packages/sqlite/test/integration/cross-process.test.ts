import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SqliteBackend } from '../../src/index.js';
import { startChild } from '../support/children.js';
import { bytes, tempDir, text, uniqueTable } from '../support/files.js';

const dir = tempDir('processes');

describe('locks shared by processes on one file', () => {
  it('lets 4 processes × 2 workers do 50 locked increments each on one counter: exactly 400, fencing tokens in lock order', async () => {
    const filename = join(dir, 'counter.db');
    const table = uniqueTable();
    const [processes, workers, increments] = [4, 2, 50];
    const startedAt = performance.now();
    const children = Array.from({ length: processes }, () =>
      startChild('increment-child.ts', [filename, table, String(workers), String(increments)]),
    );
    const results = await Promise.all(children.map((child) => child.done));
    const elapsedMs = performance.now() - startedAt;
    for (const result of results) expect(result.code, `a child failed: ${result.stderr}`).toBe(0);

    const backend = new SqliteBackend({ filename, table });
    const total = processes * workers * increments;
    expect(text(await backend.get('counter'))).toBe(String(total));
    await backend.close();

    // Every count was read by exactly one holder, and the holder of a later count had a larger token.
    const records = results.flatMap((result) => JSON.parse(result.stdout) as [number, string][]);
    const byCount = records.sort(([a], [b]) => a - b);
    expect(byCount.map(([count]) => count)).toStrictEqual(Array.from({ length: total }, (_, i) => i));
    const tokens = byCount.map(([, token]) => BigInt(token));
    const outOfOrder = tokens.findIndex((token, i) => i > 0 && token <= (tokens[i - 1] as bigint));
    expect(outOfOrder, `fencing token ${tokens[outOfOrder]} at count ${outOfOrder} is not above the previous one`).toBe(-1);
    console.log(
      `${total} locked increments by ${processes} processes × ${workers} workers in ${elapsedMs.toFixed(0)} ms (with process start-up)`,
    );
  });

  it('gives the key of a holder killed with SIGKILL to a waiter in another process once its lease lapses, with a larger token', async () => {
    const filename = join(dir, 'crash.db');
    const table = uniqueTable();
    const leaseMs = 1000;
    const holder = startChild('holder-child.ts', [filename, table, 'k', String(leaseMs)]);
    const held = JSON.parse(await holder.line((line) => line.startsWith('{'))) as { token: string; fencingToken: string };
    const backend = new SqliteBackend({ filename, table });
    try {
      expect(await backend.acquireLock('k', { leaseMs, waitMs: 0 }), 'the key is free while the holder lives').toBeUndefined();
      holder.kill('SIGKILL');
      const killedAt = performance.now();
      expect((await holder.done).signal).toBe('SIGKILL');
      const lease = await backend.acquireLock('k', { leaseMs, waitMs: 5000 });
      const waitedMs = performance.now() - killedAt;
      expect(lease, 'no lease within 5 s of the kill').toBeDefined();
      // At most the lease (it started before the kill) plus one 50 ms poll and a loaded machine's slack.
      expect(waitedMs, `took the key ${waitedMs.toFixed(0)} ms after the kill`).toBeLessThan(leaseMs + 250);
      expect(lease?.fencingToken).toBeGreaterThan(BigInt(held.fencingToken));
      // The dead holder's lease writes nothing.
      const stale = { key: 'k', token: held.token, fencingToken: BigInt(held.fencingToken) };
      expect(await backend.set('k', bytes('stale'), { lease: stale })).toBe('lease-lost');
      expect(await backend.get('k')).toBeUndefined();
    } finally {
      holder.kill('SIGKILL');
      await backend.close();
    }
  });
});
