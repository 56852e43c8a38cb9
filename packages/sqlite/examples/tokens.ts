import { getKeyValueStore } from '@latchkey/core';
import { SqliteBackend } from '@latchkey/sqlite';

const filename = process.env.TOKENS_DB ?? 'latchkey.db';
const store = getKeyValueStore('tokens');
await store.configure(new SqliteBackend({ filename }), { ttlMs: 3_600_000 });

await store.withLock('user:42', async (lock) => {
  const tokens = await store.get<string[]>('user:42').catch(() => []);
  await store.set('user:42', [...tokens, 'abc'], { lock });
});
console.log(await store.get('user:42'));
await store.close(); // gives back held locks, then closes the file
