import { getKeyValueStore } from '@latchkey/core';
import { PostgresBackend } from '@latchkey/postgres';

const url = process.env.DATABASE_URL ?? 'postgres://app@db/app';
const store = getKeyValueStore('tokens');
await store.configure(new PostgresBackend({ url, table: 'tokens' }), { ttlMs: 60_000 });

await store.withLock('user:42', async (lock) => {
  const tokens = await store.get<string[]>('user:42').catch(() => []);
  await store.set('user:42', [...tokens, 'abc'], { lock }); // refused by the server if the lock was lost
});
console.log(await store.get('user:42'));
await store.close(); // gives back held locks, then ends the pool the backend built
