// Opens `<filename>` (with `readonly` when the second argument is `readonly`) and prints one
// JSON line: what get, set and acquireLock did, as `ok:<value>` or `<error class>:<driver code>`.
import { SqliteBackend } from '../../src/index.js';

const [filename, mode] = process.argv.slice(2) as [string, string];
const backend = new SqliteBackend({ filename, readonly: mode === 'readonly' });

async function outcome(call: () => Promise<unknown>): Promise<string> {
  try {
    const value = await call();
    return `ok:${value instanceof Uint8Array ? new TextDecoder().decode(value) : String(value)}`;
  } catch (error) {
    const cause = (error as { cause?: { code?: unknown } }).cause;
    return `${(error as Error).name}:${String(cause?.code)}:${(error as Error).message}`;
  }
}

const report = {
  get: await outcome(() => backend.get('k')),
  set: await outcome(() => backend.set('k', new TextEncoder().encode('changed'))),
  acquireLock: await outcome(() => backend.acquireLock('k', { leaseMs: 1000, waitMs: 0 })),
};
await backend.close();
process.stdout.write(`${JSON.stringify(report)}\n`);
