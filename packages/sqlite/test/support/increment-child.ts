// A process doing locked increments of one counter: `<filename> <table> <workers> <increments per worker>`.
// Prints one JSON line: every [count read under the lease, fencing token] pair, in its order.
import { SqliteBackend } from '../../src/index.js';

const [filename, table, workers, increments] = process.argv.slice(2) as [string, string, string, string];
const backend = new SqliteBackend({ filename, table, operationTimeoutMs: 5000 });
const records: [number, string][] = [];

async function worker(): Promise<void> {
  for (let i = 0; i < Number(increments); i++) {
    const lease = await backend.acquireLock('counter', { leaseMs: 30_000, waitMs: 120_000 });
    if (lease === undefined) throw new Error('no lease within 120 s');
    const stored = await backend.get('counter');
    const count = stored === undefined ? 0 : Number(new TextDecoder().decode(stored));
    const outcome = await backend.set('counter', new TextEncoder().encode(String(count + 1)), { lease });
    if (outcome !== 'written') throw new Error(`a held lease wrote nothing: ${outcome}`);
    records.push([count, String(lease.fencingToken)]);
    if (!(await backend.releaseLock(lease))) throw new Error('a held lease could not be released');
  }
}

await Promise.all(Array.from({ length: Number(workers) }, () => worker()));
await backend.close();
process.stdout.write(`${JSON.stringify(records)}\n`);
