// latchkey in one minute, on the in-memory backend and then across processes on SQLite: `npm start`.
import { getKeyValueStore, NotFoundError } from '@latchkey/core';
import { MemoryBackend } from '@latchkey/memory';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const PROCESSES = 4;
const TOKENS_PER_PROCESS = 25;

const step = (title) => console.log(`\n\x1b[1m${title}\x1b[0m`);

// 1. A named store over a backend. getKeyValueStore returns the same store for the same name.
step('1. Configure a named store over the memory backend');
const store = getKeyValueStore('keystone.tokens');
await store.configure(new MemoryBackend(), { ttlMs: 60_000, lockTimeoutMs: 5_000 });
console.log(`   store "${store.name}" configured: ${store.isConfigured}`);

// 2. Plain reads and writes. Values keep their types (Date, Map, BigInt, …).
step('2. set / get');
await store.set('user:alice', { name: 'Alice', created: new Date('2026-01-01T00:00:00Z'), roles: new Set(['admin']) });
const alice = await store.get('user:alice');
console.log(`   get('user:alice') →`, alice);

// 3. Missing keys are an error you can test for, not a silent undefined.
step('3. A missing key rejects with NotFoundError');
try {
  await store.get('user:nobody');
} catch (error) {
  if (!(error instanceof NotFoundError)) throw error;
  console.log(`   ${error.name} (${error.code}): ${error.message}`);
}

// 4. Keystone's per-user token index: many workers append to one list. Without the lock,
//    concurrent read-modify-write loses updates; with it, every token lands.
step('4. 50 concurrent workers each add 20 tokens to one user’s token index, under the key’s lock');
const WORKERS = 50;
const TOKENS_EACH = 20;
await store.set('tokens:alice', []);
const started = performance.now();
await Promise.all(
  Array.from({ length: WORKERS }, async (_, worker) => {
    for (let i = 0; i < TOKENS_EACH; i++) {
      await store.withLock('tokens:alice', async (lock) => {
        const tokens = await store.get('tokens:alice');
        await new Promise((resolve) => setImmediate(resolve)); // let other workers interleave
        await store.set('tokens:alice', [...tokens, `w${worker}-t${i}`], { lock });
      });
    }
  }),
);
const tokens = await store.get('tokens:alice');
const expected = WORKERS * TOKENS_EACH;
console.log(
  `   expected ${expected} tokens, found ${tokens.length} (${new Set(tokens).size} distinct) in ${Math.round(performance.now() - started)} ms`,
);
if (tokens.length !== expected) throw new Error('lost updates: the lock did not serialise the writers');

// 5. The same race without the lock, for contrast.
step('5. The same race WITHOUT the lock');
await store.set('tokens:bob', []);
await Promise.all(
  Array.from({ length: WORKERS }, async (_, worker) => {
    const current = await store.get('tokens:bob');
    await new Promise((resolve) => setImmediate(resolve));
    await store.set('tokens:bob', [...current, `w${worker}`]);
  }),
);
console.log(`   expected ${WORKERS} tokens, found ${(await store.get('tokens:bob')).length} — updates were lost`);

// 6. getOrCreate: concurrent callers run the expensive creator once.
step('6. getOrCreate: 10 concurrent callers, one creator run');
let runs = 0;
const results = await Promise.all(
  Array.from({ length: 10 }, () =>
    store.getOrCreate('catalog', async () => {
      runs += 1;
      await new Promise((resolve) => setTimeout(resolve, 50)); // an expensive lookup
      return { services: ['identity', 'compute'], builtAt: new Date() };
    }),
  ),
);
console.log(`   creator ran ${runs} time(s); all 10 callers got ${JSON.stringify(results[0].services)}`);

await store.close();

// 7. Locks across processes with no server: every process that opens the same SQLite file shares
//    its values and its locks.
step(`7. ${PROCESSES} processes each add ${TOKENS_PER_PROCESS} tokens to one list in a SQLite file, under the key’s lock`);
let sqlite;
try {
  sqlite = await import('@latchkey/sqlite');
} catch (error) {
  console.log(`   skipped: @latchkey/sqlite could not be loaded (${error.message.split('\n')[0]})`);
}
if (sqlite !== undefined) {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-demo-'));
  const filename = join(dir, 'tokens.db');
  try {
    const worker = fileURLToPath(new URL('./sqlite-worker.mjs', import.meta.url));
    const began = performance.now();
    await Promise.all(
      Array.from({ length: PROCESSES }, (_, p) => run(process.execPath, [worker, filename, String(p), String(TOKENS_PER_PROCESS)])),
    );
    const shared = getKeyValueStore('keystone.shared');
    await shared.configure(new sqlite.SqliteBackend({ filename }));
    const carol = await shared.get('tokens:carol');
    await shared.close();
    const wanted = PROCESSES * TOKENS_PER_PROCESS;
    console.log(
      `   expected ${wanted} tokens, found ${carol.length} from ${PROCESSES} processes in ${Math.round(performance.now() - began)} ms`,
    );
    if (carol.length !== wanted) throw new Error('lost updates: the lock did not serialise the processes');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
step('Done. The stores are closed; see README.md for Redis, memcached, MongoDB and PostgreSQL.');
