/**
 * The Redis locked-increment contenders — latchkey `withLock`, redlock, redis-semaphore and a
 * control without a lock — shared by the one-process case (`redis.ts`) and the worker
 * processes of the cross-process case (`lock-process-worker.ts`), so both run the same code.
 *
 * @module
 */
import type { KeyValueStore } from '@latchkey/core';
import type { Redis } from 'ioredis';
import Redlock, { ResourceLockedError } from 'redlock';
import { Mutex } from 'redis-semaphore';
import { errorMessage } from '../harness/index.js';
import type { Incrementer } from './lock-increment.js';

/** Lease of every contender's lock. */
export const LEASE_MS = 5_000;
/** How long a waiter waits for the lock before the increment counts as a failed acquisition. */
export const WAIT_MS = 2_000;

/** The names of the lock contenders, as the tables show them. */
export const LATCHKEY = 'latchkey';
export const REDLOCK = 'redlock';
export const SEMAPHORE = 'redis-semaphore';
export const CONTROL = 'no lock (control)';

function counterOf(name: string, scope: string): string {
  return `bench:counter:${scope}${name}`;
}

async function numeric(redis: Redis, key: string): Promise<number> {
  return Number((await redis.get(key)) ?? Number.NaN);
}

/**
 * The peers and the control, each on its own connection from `connect`. `scope` keeps the
 * keys of different cases apart; processes given the same scope contend for the same locks.
 */
export function peerIncrementers(connect: () => Redis, scope = ''): Incrementer[] {
  const redlockClient = connect();
  let redlockUnexpected: unknown;
  const redlock = new Redlock([redlockClient], { retryCount: Math.ceil(WAIT_MS / 15), retryDelay: 10, retryJitter: 10, driftFactor: 0.01 });
  // Redlock reports every lost vote as an 'error' event; "resource locked" is its normal busy signal.
  redlock.on('error', (error: unknown) => {
    if (!(error instanceof ResourceLockedError)) redlockUnexpected ??= error;
  });
  const semaphoreClient = connect();
  const controlClient = connect();
  const redlockCounter = counterOf('redlock', scope);
  const semaphoreCounter = counterOf('semaphore', scope);
  const controlCounter = counterOf('control', scope);

  return [
    {
      name: REDLOCK,
      does: `\`redlock.acquire([lock], ${LEASE_MS})\` (5.0.0-beta.2 on ioredis, one server, retry every 10–20 ms for ~${WAIT_MS / 1000} s), then GET/SET of the counter, \`lock.release()\``,
      reset: async () => void (await redlockClient.set(redlockCounter, 0)),
      read: async () => {
        if (redlockUnexpected !== undefined) throw new Error(`redlock reported: ${errorMessage(redlockUnexpected)}`);
        return numeric(redlockClient, redlockCounter);
      },
      increment: async (section) => {
        const lock = await redlock.acquire([`bench:lock:${scope}redlock`], LEASE_MS);
        section.enter();
        try {
          const value = await numeric(redlockClient, redlockCounter);
          await redlockClient.set(redlockCounter, value + 1);
        } finally {
          section.exit();
          await lock.release();
        }
      },
    },
    {
      name: SEMAPHORE,
      does: `\`new Mutex(redis, lock, { lockTimeout: ${LEASE_MS}, acquireTimeout: ${WAIT_MS}, retryInterval: 10, refreshInterval: 0 })\`, acquire, GET/SET, release`,
      reset: async () => void (await semaphoreClient.set(semaphoreCounter, 0)),
      read: () => numeric(semaphoreClient, semaphoreCounter),
      increment: async (section) => {
        const mutex = new Mutex(semaphoreClient, `bench:lock:${scope}semaphore`, {
          lockTimeout: LEASE_MS,
          acquireTimeout: WAIT_MS,
          retryInterval: 10,
          refreshInterval: 0,
        });
        await mutex.acquire();
        section.enter();
        try {
          const value = await numeric(semaphoreClient, semaphoreCounter);
          await semaphoreClient.set(semaphoreCounter, value + 1);
        } finally {
          section.exit();
          await mutex.release();
        }
      },
    },
    {
      name: CONTROL,
      does: 'GET then SET of the counter without a lock: shows that the lost-update check catches a race',
      reset: async () => void (await controlClient.set(controlCounter, 0)),
      read: () => numeric(controlClient, controlCounter),
      increment: async () => {
        const value = await numeric(controlClient, controlCounter);
        await controlClient.set(controlCounter, value + 1);
      },
    },
  ];
}

/** The latchkey contender over `store` (or, given a reason, listed as unavailable). */
export function latchkeyIncrementer(store: KeyValueStore | string): Incrementer {
  const does = `\`store.withLock(key, fn, { waitMs: ${WAIT_MS} })\` over \`RedisBackend\` (lease ${LEASE_MS} ms), \`store.get\` + \`store.set(key, n + 1, { lock })\` inside`;
  if (typeof store === 'string') {
    const fail = (): Promise<never> => Promise.reject(new Error(store));
    return { name: LATCHKEY, does, unavailable: store, reset: fail, read: fail, increment: fail };
  }
  const key = 'counter';
  return {
    name: LATCHKEY,
    does,
    reset: () => store.set(key, 0),
    read: () => store.get<number>(key),
    increment: (section) =>
      store.withLock(
        key,
        async (lock) => {
          section.enter();
          const value = await store.get<number>(key);
          await store.set(key, value + 1, { lock });
          section.exit();
        },
        { waitMs: WAIT_MS },
      ),
  };
}
