import { getKeyValueStore } from '@latchkey/core';
import { KeyvLatchkey } from '@latchkey/keyv';
import { MemoryBackend } from '@latchkey/memory';
import { RedisBackend } from '@latchkey/redis';
import { createCache } from 'cache-manager';
import Keyv from 'keyv';

// Two tiers: a bounded in-process store in front of Redis, which every process shares.
const local = getKeyValueStore('pages-local');
await local.configure(new MemoryBackend({ maxEntries: 10_000 }));
const shared = getKeyValueStore('pages');
await shared.configure(new RedisBackend({ url: process.env['REDIS_URL'] ?? 'redis://localhost:6379', keyPrefix: 'pages:' }));

const cache = createCache({
  stores: [new Keyv({ store: new KeyvLatchkey(local) }), new Keyv({ store: new KeyvLatchkey(shared) })],
  ttl: 60_000,
});

let renders = 0;
const render = async (path: string) => `<h1>${path}</h1><p>render ${++renders}</p>`;

console.log(await cache.wrap('/about', () => render('/about'))); // <h1>/about</h1><p>render 1</p>
console.log(await cache.wrap('/about', () => render('/about'))); // the same page, from the local tier
await local.clear(); // as in a fresh process: the page comes from Redis
console.log(await cache.get('/about')); // <h1>/about</h1><p>render 1</p>
await cache.disconnect(); // closes both stores
