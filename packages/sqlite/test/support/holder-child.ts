// A process that takes the lease on `key` for `leaseMs`, prints it as one JSON line and then
// waits to be killed: `<filename> <table> <key> <leaseMs>`.
import { SqliteBackend } from '../../src/index.js';

const [filename, table, key, leaseMs] = process.argv.slice(2) as [string, string, string, string];
const backend = new SqliteBackend({ filename, table });
const lease = await backend.acquireLock(key, { leaseMs: Number(leaseMs), waitMs: 10_000 });
if (lease === undefined) throw new Error('no lease');
process.stdout.write(`${JSON.stringify({ held: true, token: lease.token, fencingToken: String(lease.fencingToken) })}\n`);
setInterval(() => undefined, 60_000);
