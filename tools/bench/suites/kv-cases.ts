/**
 * The get / set / getMany(100) cases shared by the adapter suites: latchkey against the raw
 * driver and keyv's adapter on the same server, at the same concurrency.
 *
 * @module
 */
import type { KeyValueStore } from '@latchkey/core';
import { errorMessage, ratioAtLeast, type BenchCase, type Contender, type Target, type Timing } from '../harness/index.js';
import { withTimeout } from './adapters.js';
import { keyRange, keyWindows, smallValue } from './values.js';

/** One contender of the key-value cases, able to fill its own keys first. */
export interface KvClient {
  readonly name: string;
  /** Why it cannot run (then nothing else is called). */
  readonly unavailable?: string;
  /** What each call does, one line each. */
  readonly does: { readonly get: string; readonly set: string; readonly getMany: string };
  /** Stores the entries (untimed). */
  fill(entries: readonly (readonly [string, unknown])[]): Promise<void>;
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown): Promise<unknown>;
  getMany(keys: readonly string[]): Promise<unknown>;
}

/** A contender that cannot run here, listed with `reason`. */
export function unavailableKvClient(name: string, reason: string, does: KvClient['does']): KvClient {
  const fail = (): Promise<never> => Promise.reject(new Error(reason));
  return { name, does, unavailable: reason, fill: fail, get: fail, set: fail, getMany: fail };
}

/**
 * latchkey as a contender: a configured store, or why there is none.
 *
 * @param backend - The backend's description, e.g. `` `RedisBackend` ``.
 * @param getManyNote - How the backend batches, for the getMany line.
 */
export function latchkeyKvClient(store: KeyValueStore | string, backend: string, getManyNote = ''): KvClient {
  const does = {
    get: `\`store.get(key)\`: \`KeyValueStore\` over ${backend}, default configuration (default key mangler, tagged codec, expiry envelope)`,
    set: '`store.set(key, value)`',
    getMany: `\`store.getMany(keys)\`${getManyNote}`,
  };
  if (typeof store === 'string') return unavailableKvClient('latchkey', store, does);
  return {
    name: 'latchkey',
    does,
    fill: (entries) => store.setMany(entries),
    get: (key) => store.get(key),
    set: (key, value) => store.set(key, value),
    getMany: (keys) => store.getMany(keys),
  };
}

/** Shape of the cases. */
export interface KvCaseOptions {
  /** The contender the `×` column divides by (the raw driver). */
  readonly baseline: string;
  /** The contenders (clients shared by the cases). */
  readonly clients: readonly KvClient[];
  /** In flight for get and set. */
  readonly concurrency: number;
  /** In flight for getMany. */
  readonly batchConcurrency: number;
  /** The goals of each case. @default {@link dataGoals} of `baseline`, for all three */
  readonly targets?: { readonly get?: readonly Target[]; readonly set?: readonly Target[]; readonly getMany?: readonly Target[] };
  /** Keys per contender. @default 1000 */
  readonly keyCount?: number;
  /** Overrides of the run's timing for these cases. */
  readonly timing?: Partial<Timing>;
}

/** Operations in flight of every data case: one at a time, and many. */
export const IN_FLIGHT = [1, 64] as const;
/** latchkey's goal against the raw driver doing the same job by hand: at least this share of its rate. */
export const RAW_GOAL = 0.95;
/** latchkey's goal against keyv's adapter for the same server: at least its rate. */
export const KEYV_GOAL = 1;
/** The name of keyv's contender in every data case. */
export const KEYV = 'keyv';

/**
 * The goals of every get / set / getMany case: latchkey ≥ {@link RAW_GOAL}× the raw driver
 * (`raw`) and ≥ {@link KEYV_GOAL}× keyv (not measured where keyv cannot run).
 */
export function dataGoals(raw: string): Target[] {
  return [ratioAtLeast('latchkey', raw, RAW_GOAL), ratioAtLeast('latchkey', KEYV, KEYV_GOAL)];
}

/** Keys read per getMany call. */
export const BATCH = 100;

/** How long a contender may take to store the case's keys. */
const FILL_TIMEOUT_MS = 60_000;
/** Entries per fill call. */
const FILL_CHUNK = 50;

/** A client whose fill failed is listed as unavailable with the reason. */
type Filled = ReadonlyMap<KvClient, string | undefined>;

async function fillAll(clients: readonly KvClient[], keys: readonly string[]): Promise<Filled> {
  const entries = keys.map((key, i) => [key, smallValue(i)] as const);
  const outcome = new Map<KvClient, string | undefined>();
  for (const client of clients) {
    if (client.unavailable !== undefined) {
      outcome.set(client, client.unavailable);
      continue;
    }
    try {
      // In chunks: one huge batch can stall a slow server (FerretDB) past its driver's heartbeat.
      const fill = async (): Promise<void> => {
        for (let start = 0; start < entries.length; start += FILL_CHUNK) await client.fill(entries.slice(start, start + FILL_CHUNK));
      };
      await withTimeout(fill(), FILL_TIMEOUT_MS, `${client.name} storing ${entries.length} keys`);
      outcome.set(client, undefined);
    } catch (error) {
      outcome.set(client, `could not store the case's keys: ${errorMessage(error)}`);
    }
  }
  return outcome;
}

function contenders(
  filled: Filled,
  does: (client: KvClient) => string,
  op: (client: KvClient, index: number) => Promise<unknown>,
): Contender[] {
  return [...filled].map(([client, unavailable]) =>
    unavailable === undefined
      ? { name: client.name, does: does(client), op: (index: number) => op(client, index) }
      : { name: client.name, does: does(client), unavailable },
  );
}

/** The three cases: `get`, `set`, `getMany(100)`. */
export function kvCases(options: KvCaseOptions): BenchCase[] {
  const count = options.keyCount ?? 1_000;
  const keys = keyRange('user:', count);
  const key = (i: number): string => keys[i % count] as string;
  const values = keys.map((_, i) => smallValue(i + 1));
  const windows = keyWindows(keys, BATCH, Math.max(1, Math.floor(count / BATCH)));
  const goals = dataGoals(options.baseline);
  const timing = options.timing === undefined ? {} : { timing: options.timing };
  return [
    {
      name: 'get',
      description: `Read one of ${count} keys holding a small record, decoded`,
      baseline: options.baseline,
      concurrency: options.concurrency,
      latency: true,
      targets: options.targets?.get ?? goals,
      ...timing,
      setup: async () => ({
        contenders: contenders(
          await fillAll(options.clients, keys),
          (c) => c.does.get,
          (c, i) => c.get(key(i)),
        ),
      }),
    },
    {
      name: 'set',
      description: `Write a small record to one of ${count} keys (overwriting), encoded`,
      baseline: options.baseline,
      concurrency: options.concurrency,
      latency: true,
      targets: options.targets?.set ?? goals,
      ...timing,
      setup: async () => ({
        contenders: contenders(
          await fillAll(options.clients, keys),
          (c) => c.does.set,
          (c, i) => c.set(key(i), values[i % count]),
        ),
      }),
    },
    {
      name: `getMany(${BATCH})`,
      description: `Read ${BATCH} keys at once, decoded (one operation = one batch of ${BATCH})`,
      baseline: options.baseline,
      concurrency: options.batchConcurrency,
      latency: true,
      targets: options.targets?.getMany ?? goals,
      ...timing,
      setup: async () => ({
        contenders: contenders(
          await fillAll(options.clients, keys),
          (c) => c.does.getMany,
          (c, i) => c.getMany(windows[i % windows.length] as string[]),
        ),
      }),
    },
  ];
}

/**
 * The three cases at each of `levels` operations in flight (getMany too), pinned so that
 * `--concurrency` leaves them alone: `get, 1 in flight`, `get, 64 in flight`, `set, 1 in flight`, ….
 *
 * @param timing - Overrides of the run's timing at a level (e.g. longer rounds where a slow
 *   server's drain of 64 operations would fill most of a default round).
 */
export function kvCasesInFlight(
  options: Omit<KvCaseOptions, 'concurrency' | 'batchConcurrency'>,
  levels: readonly number[] = IN_FLIGHT,
  timing?: (level: number) => Partial<Timing> | undefined,
): BenchCase[] {
  const byLevel = levels.map((level) => {
    const atLevel = timing?.(level) ?? options.timing;
    return kvCases({ ...options, concurrency: level, batchConcurrency: level, ...(atLevel === undefined ? {} : { timing: atLevel }) }).map(
      (bench): BenchCase => ({
        ...bench,
        name: inFlightCaseName(bench.name, level),
        fixedConcurrency: true,
      }),
    );
  });
  const operations = byLevel[0]?.length ?? 0;
  return Array.from({ length: operations }, (_, op) => byLevel.map((cases) => cases[op] as BenchCase)).flat();
}

/** The name of an operation's case at `level` in flight (`get, 64 in flight`). */
export function inFlightCaseName(operation: string, level: number): string {
  return `${operation}, ${level} in flight`;
}
