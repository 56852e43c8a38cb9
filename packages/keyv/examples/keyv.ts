import { getKeyValueStore } from '@latchkey/core';
import { KeyvLatchkey } from '@latchkey/keyv';
import { RedisBackend } from '@latchkey/redis';
import Keyv from 'keyv';

const store = getKeyValueStore('sessions');
await store.configure(new RedisBackend({ url: process.env['REDIS_URL'] ?? 'redis://localhost:6379', keyPrefix: 'app:' }));

const sessions = new Keyv({ store: new KeyvLatchkey(store), namespace: 'sessions' });
sessions.on('error', (error) => console.error('session store:', error));

await sessions.set('alice', { user: 'alice', roles: ['admin'] }, 15 * 60_000); // TTL in ms
console.log(await sessions.get('alice')); // { user: 'alice', roles: [ 'admin' ] }
console.log(await store.ttl('sessions:alice')); // ≈ 900000: the store sees keyv's namespaced key
await sessions.delete('alice');
await sessions.disconnect(); // closes the store and its Redis connection
