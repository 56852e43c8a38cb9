// One worker process of the demo's SQLite step: adds `count` tokens to one list in the shared
// file, each under the key's lock. Usage: node sqlite-worker.mjs <file> <worker> <count>
import { getKeyValueStore, NotFoundError } from '@latchkey/core';
import { SqliteBackend } from '@latchkey/sqlite';

const [filename, worker, count] = process.argv.slice(2);
const store = getKeyValueStore('keystone.tokens');
await store.configure(new SqliteBackend({ filename }), { lockTimeoutMs: 10_000 });
for (let i = 0; i < Number(count); i++) {
  await store.withLock('tokens:carol', async (lock) => {
    const tokens = await store.get('tokens:carol').catch((error) => {
      if (error instanceof NotFoundError) return [];
      throw error;
    });
    await new Promise((resolve) => setTimeout(resolve, 1)); // let the other processes try meanwhile
    await store.set('tokens:carol', [...tokens, `p${worker}-t${i}`], { lock });
  });
}
await store.close();
