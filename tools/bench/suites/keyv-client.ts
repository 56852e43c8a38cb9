/**
 * keyv 5 with one of its storage adapters, as a contender of the key-value cases.
 *
 * @module
 */
import type Keyv from 'keyv';
import { errorMessage } from '../harness/index.js';
import { withTimeout } from './adapters.js';
import type { KvClient } from './kv-cases.js';

/** How long keyv gets to store the case's keys before it counts as not working here. */
const FILL_TIMEOUT_MS = 30_000;

/**
 * A {@link KvClient} over `keyv`. keyv reports store failures as `error` events (and some
 * calls then never settle, e.g. @keyv/mongo when its TTL index cannot be created), so the
 * fill fails fast with the reported error instead of hanging.
 *
 * @param adapter - How the store is described, e.g. `@keyv/redis on node-redis`.
 */
export function keyvClient(keyv: Keyv, adapter: string): KvClient {
  let reported: ((error: unknown) => void) | undefined;
  let lastError: unknown;
  keyv.on('error', (error: unknown) => {
    lastError ??= error;
    reported?.(error);
  });
  const missing = (key: string): Error =>
    new Error(`${key} is missing${lastError === undefined ? '' : ` (keyv reported: ${errorMessage(lastError)})`}`);
  return {
    name: 'keyv',
    does: {
      get: `\`keyv.get(key)\` (keyv 5 + ${adapter}, JSON serialization)`,
      set: '`keyv.set(key, value)`',
      getMany: '`keyv.getMany(keys)`',
    },
    fill: async (entries) => {
      const failed = new Promise<never>((_, reject) => {
        reported = (error) => reject(new Error(`keyv reported: ${errorMessage(error)}`, { cause: error }));
        if (lastError !== undefined) reported(lastError);
      });
      try {
        const writes = Promise.all(
          entries.map(async ([key, value]) => {
            if (!(await keyv.set(key, value))) throw new Error(`keyv.set("${key}") returned false`);
          }),
        );
        await withTimeout(Promise.race([writes, failed]), FILL_TIMEOUT_MS, 'keyv storing the keys');
      } finally {
        reported = undefined;
      }
    },
    get: async (key) => {
      const value: unknown = await keyv.get(key);
      if (value === undefined) throw missing(key);
      return value;
    },
    set: (key, value) => keyv.set(key, value),
    getMany: (keys) => keyv.getMany([...keys]),
  };
}
