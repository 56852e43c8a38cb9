/**
 * Memory suite: `KeyValueStore` over `MemoryBackend` against a plain `Map` (raw, and with a
 * v8 copy in and out) and keyv's in-memory store, plus a locked increment by 128 workers.
 *
 * @module
 */
import { deserialize, serialize } from 'node:v8';
import { KeyValueStore } from '@latchkey/core';
import { MemoryBackend } from '@latchkey/memory';
import Keyv from 'keyv';
import {
  metricAtLeast,
  metricAtMost,
  ratioAtLeast,
  type BenchCase,
  type CaseFixture,
  type Contender,
  type Suite,
} from '../harness/index.js';
import { INCREMENT_METRICS, incrementContender, type Incrementer } from './lock-increment.js';
import { keyRange, keyWindows, smallValue } from './values.js';

const KEY_COUNT = 1_000;
const BATCH = 100;
const WORKERS = 128;

let storeSerial = 0;

async function memoryStore(label: string): Promise<KeyValueStore> {
  const store = new KeyValueStore(`bench-memory-${label}-${++storeSerial}`);
  await store.configure(new MemoryBackend());
  return store;
}

interface Stores {
  readonly latchkey: KeyValueStore;
  readonly raw: Map<string, unknown>;
  readonly copied: Map<string, Buffer>;
  readonly keyv: Keyv;
}

async function filledStores(label: string, keys: readonly string[]): Promise<Stores> {
  const stores: Stores = { latchkey: await memoryStore(label), raw: new Map(), copied: new Map(), keyv: new Keyv() };
  for (const [i, key] of keys.entries()) {
    const value = smallValue(i);
    await stores.latchkey.set(key, value);
    stores.raw.set(key, value);
    stores.copied.set(key, serialize(value));
    await stores.keyv.set(key, value);
  }
  return stores;
}

const DOES = {
  latchkey:
    '`KeyValueStore` over `MemoryBackend`, default configuration (SHA-1 key mangling, tagged codec, expiry envelope, values copied in and out)',
  raw: 'a plain `Map` holding the object itself: no copy, so callers share and can mutate the stored value',
  copied: 'a `Map` of `v8.serialize` bytes, `v8.deserialize` on read: the same isolation as latchkey, without the store around it',
  keyv: '`new Keyv()` (keyv 5, in-memory `Map`, JSON serialization: `Date`, `Map`, `BigInt` do not survive)',
} as const;

function fixture(stores: Stores, contenders: Contender[]): CaseFixture {
  return { contenders, teardown: () => stores.latchkey.close() };
}

/** latchkey's goal: at least this share of the rate of `Map + v8 copy` (the same isolation, no store). */
const GOAL = 0.95;
const GOALS = [ratioAtLeast('latchkey', 'Map + v8 copy', GOAL)];

const getCase: BenchCase = {
  name: 'get',
  description: `Read one of ${KEY_COUNT} keys holding a small record`,
  baseline: 'Map + v8 copy',
  targets: GOALS,
  setup: async () => {
    const keys = keyRange('user:', KEY_COUNT);
    const s = await filledStores('get', keys);
    const key = (i: number): string => keys[i % KEY_COUNT] as string;
    return fixture(s, [
      { name: 'latchkey', does: `\`store.get(key)\`: ${DOES.latchkey}`, op: (i) => s.latchkey.get(key(i)) },
      { name: 'Map + v8 copy', does: DOES.copied, op: async (i) => deserialize(s.copied.get(key(i)) as Buffer) as unknown },
      { name: 'Map (raw)', does: DOES.raw, op: async (i) => s.raw.get(key(i)) },
      { name: 'keyv', does: `\`keyv.get(key)\`: ${DOES.keyv}`, op: (i) => s.keyv.get(key(i)) },
    ]);
  },
};

const setCase: BenchCase = {
  name: 'set',
  description: `Write a small record to one of ${KEY_COUNT} keys (overwriting)`,
  baseline: 'Map + v8 copy',
  targets: GOALS,
  setup: async () => {
    const keys = keyRange('user:', KEY_COUNT);
    const s = await filledStores('set', keys);
    const values = keys.map((_, i) => smallValue(i + 1));
    const key = (i: number): string => keys[i % KEY_COUNT] as string;
    const value = (i: number): Record<string, unknown> => values[i % KEY_COUNT] as Record<string, unknown>;
    return fixture(s, [
      { name: 'latchkey', does: `\`store.set(key, value)\`: ${DOES.latchkey}`, op: (i) => s.latchkey.set(key(i), value(i)) },
      { name: 'Map + v8 copy', does: DOES.copied, op: async (i) => void s.copied.set(key(i), serialize(value(i))) },
      { name: 'Map (raw)', does: DOES.raw, op: async (i) => void s.raw.set(key(i), value(i)) },
      { name: 'keyv', does: `\`keyv.set(key, value)\`: ${DOES.keyv}`, op: (i) => s.keyv.set(key(i), value(i)) },
    ]);
  },
};

const getManyCase: BenchCase = {
  name: `getMany(${BATCH})`,
  description: `Read ${BATCH} keys at once (one operation = one batch of ${BATCH})`,
  baseline: 'Map + v8 copy',
  targets: GOALS,
  setup: async () => {
    const keys = keyRange('user:', KEY_COUNT);
    const s = await filledStores('getMany', keys);
    const windows = keyWindows(keys, BATCH, KEY_COUNT / BATCH);
    const batch = (i: number): string[] => windows[i % windows.length] as string[];
    return fixture(s, [
      { name: 'latchkey', does: `\`store.getMany(keys)\`: ${DOES.latchkey}`, op: (i) => s.latchkey.getMany(batch(i)) },
      {
        name: 'Map + v8 copy',
        does: `\`keys.map(...)\` over ${DOES.copied}`,
        op: async (i) => batch(i).map((k) => deserialize(s.copied.get(k) as Buffer) as unknown),
      },
      { name: 'Map (raw)', does: `\`keys.map(k => map.get(k))\` over ${DOES.raw}`, op: async (i) => batch(i).map((k) => s.raw.get(k)) },
      { name: 'keyv', does: `\`keyv.getMany(keys)\`: ${DOES.keyv}`, op: (i) => s.keyv.getMany(batch(i)) },
    ]);
  },
};

const lockedIncrementCase: BenchCase = {
  name: `locked increment × ${WORKERS}`,
  description:
    `${WORKERS} concurrent workers each read a counter, add 1 and write it back; ops/s = increments/s, ` +
    '*lost updates* = increments that completed − final counter value',
  baseline: 'latchkey withLock',
  concurrency: WORKERS,
  fixedConcurrency: true,
  metrics: INCREMENT_METRICS,
  targets: [
    metricAtMost('latchkey withLock', 'lost', 0, 'latchkey withLock: 0 lost updates'),
    metricAtLeast('no lock (control)', 'lost', 1, 'the control loses updates (the check can fail)'),
  ],
  setup: async () => {
    const store = await memoryStore('increment');
    const counter = 'counter';
    const latchkey: Incrementer = {
      name: 'latchkey withLock',
      does: '`store.withLock(key, async (lock) => store.set(key, (await store.get(key)) + 1, { lock }))` over `MemoryBackend` (FIFO waiters)',
      reset: () => store.set(counter, 0),
      read: () => store.get<number>(counter),
      increment: (section) =>
        store.withLock(counter, async (lock) => {
          section.enter();
          const value = await store.get<number>(counter);
          await store.set(counter, value + 1, { lock });
          section.exit();
        }),
    };
    const control: Incrementer = {
      name: 'no lock (control)',
      does: '`store.set(key, (await store.get(key)) + 1)` without a lock: shows that the lost-update check catches a race',
      reset: () => store.set('unlocked', 0),
      read: () => store.get<number>('unlocked'),
      increment: async () => {
        const value = await store.get<number>('unlocked');
        await store.set('unlocked', value + 1);
      },
    };
    return { contenders: [incrementContender(latchkey, WORKERS), incrementContender(control, WORKERS)], teardown: () => store.close() };
  },
};

/** The `memory` suite. */
export const memorySuite: Suite = {
  name: 'memory',
  title: 'KeyValueStore over MemoryBackend vs Map vs keyv',
  description:
    'What the store costs in-process. Every operation is awaited one at a time (the Map contenders too, so the loop overhead is the same); ' +
    '`Map + v8 copy` is the fair baseline because latchkey also copies values in and out. ' +
    `Target: latchkey ≥ ${GOAL.toFixed(2)}× \`Map + v8 copy\` on get/set/getMany; 0 lost updates under \`withLock\`.`,
  prepare: async () => ({
    notes: [`value: a small record (${serialize(smallValue()).byteLength} B as v8), ${KEY_COUNT} keys`],
    cases: [getCase, setCase, getManyCase, lockedIncrementCase],
  }),
};
