/**
 * A worker process of the cross-process lock case (`lock-processes.ts`): it hosts every lock
 * contender on its own connections and runs the increments the parent asks for over IPC,
 * timing each critical section on the machine's monotonic clock so the parent can measure hand-overs
 * between processes. It counts the commands its clients send (every ioredis `sendCommand`,
 * pipelined ones included) so the parent can tell them from the commands Redis runs inside
 * scripts.
 *
 * Started by the parent with `fork`, its configuration as JSON in `argv[2]`.
 * `LATCHKEY_BENCH_REDIS_MODULE` (a path to an `index.js`) runs another build of
 * `@latchkey/redis` as the latchkey contender, for before/after comparisons;
 * `LATCHKEY_BENCH_REDIS_COMPARE_MODULE` adds one more build as the contender
 * {@link LATCHKEY_COMPARED}, so a before/after comparison runs in one run, rounds paired.
 *
 * @module
 */
import type { KeyValueStore } from '@latchkey/core';
import { Redis } from 'ioredis';
import { errorMessage } from '../harness/index.js';
import { loadBackendClass, storeOver } from './adapters.js';
import type { Incrementer } from './lock-increment.js';
import { COMPARE_MODULE, LATCHKEY_COMPARED } from './lock-processes.js';
import { latchkeyIncrementer, peerIncrementers } from './redis-incrementers.js';

/** What the parent passes a worker. */
export interface WorkerConfig {
  readonly url: string;
  /** Key prefix of the latchkey store (the same in every worker: they share the lock). */
  readonly keyPrefix: string;
  /** Scope of the peers' keys (the same in every worker). */
  readonly scope: string;
}

/** A request from the parent. */
export type WorkerRequest =
  | { readonly id: number; readonly type: 'increment' | 'reset' | 'read'; readonly contender: string }
  | { readonly id: number; readonly type: 'sent' }
  | { readonly id: number; readonly type: 'close' };

/** A worker's answer: `enter`/`exit` are ms on the machine's monotonic clock (`process.hrtime`) of the critical section. */
export type WorkerReply =
  | { readonly id: number; readonly ok: true; readonly value?: number; readonly enter?: number; readonly exit?: number }
  | { readonly id: number; readonly ok: false; readonly error: string; readonly acquired: boolean };

/** The first message of a worker: ready, or why it could not set up. */
export type WorkerHello = { readonly ready: true } | { readonly ready: false; readonly error: string };

let sent = 0;
// Counts before any client exists, so the backend's own connections are counted too.
const sendCommand = Redis.prototype.sendCommand;
Redis.prototype.sendCommand = function (this: Redis, ...args: Parameters<Redis['sendCommand']>) {
  sent++;
  return sendCommand.apply(this, args);
} as Redis['sendCommand'];

// CLOCK_MONOTONIC is one clock for every process on the machine; `performance.timeOrigin` differs by up to ms between processes.
const now = (): number => Number(process.hrtime.bigint()) / 1e6;

function send(message: WorkerReply | WorkerHello): void {
  process.send?.(message);
}

async function setUp(config: WorkerConfig): Promise<{ incrementers: Map<string, Incrementer>; close: () => Promise<void> }> {
  const clients: Redis[] = [];
  const connect = (): Redis => {
    const client = new Redis(config.url, { maxRetriesPerRequest: 1 });
    clients.push(client);
    return client;
  };
  // Another build of the adapter (an earlier commit's, to compare with) when the environment names one.
  const module = process.env['LATCHKEY_BENCH_REDIS_MODULE'] ?? '@latchkey/redis';
  const loaded = await loadBackendClass<{ url: string; keyPrefix: string }>(module, 'RedisBackend');
  let store: KeyValueStore | string;
  if ('missing' in loaded) store = loaded.missing;
  else store = await storeOver('redis-processes', new loaded.backend({ url: config.url, keyPrefix: config.keyPrefix }));
  const stores = [store];
  const incrementers = new Map<string, Incrementer>();
  for (const incrementer of [latchkeyIncrementer(store), ...peerIncrementers(connect, config.scope)])
    incrementers.set(incrementer.name, incrementer);
  if (COMPARE_MODULE !== undefined) {
    const compared = await loadBackendClass<{ url: string; keyPrefix: string }>(COMPARE_MODULE, 'RedisBackend');
    // Its own keys: the builds' lock queues must not meet.
    const keyPrefix = `${config.keyPrefix}compared:`;
    const other =
      'missing' in compared ? compared.missing : await storeOver('redis-processes', new compared.backend({ url: config.url, keyPrefix }));
    stores.push(other);
    incrementers.set(LATCHKEY_COMPARED, { ...latchkeyIncrementer(other), name: LATCHKEY_COMPARED });
  }
  return {
    incrementers,
    close: async () => {
      await Promise.all(stores.map((open) => (typeof open === 'string' ? undefined : open.close())));
      await Promise.all(clients.map((client) => client.quit().catch(() => client.disconnect())));
    },
  };
}

async function serve(config: WorkerConfig): Promise<void> {
  let setup;
  try {
    setup = await setUp(config);
  } catch (error) {
    send({ ready: false, error: errorMessage(error) });
    process.exit(1);
  }
  const { incrementers, close } = setup;
  process.on('message', (request: WorkerRequest) => {
    void (async (): Promise<void> => {
      if (request.type === 'close') {
        await close().catch(() => undefined);
        send({ id: request.id, ok: true });
        process.disconnect();
        return;
      }
      if (request.type === 'sent') {
        send({ id: request.id, ok: true, value: sent });
        return;
      }
      const incrementer = incrementers.get(request.contender);
      let acquired = false;
      try {
        if (incrementer === undefined) throw new Error(`no contender named ${request.contender}`);
        if (request.type === 'reset') {
          await incrementer.reset();
          send({ id: request.id, ok: true });
        } else if (request.type === 'read') {
          send({ id: request.id, ok: true, value: await incrementer.read() });
        } else {
          let enter = 0;
          let exit = 0;
          await incrementer.increment({
            enter: () => {
              acquired = true;
              enter = now();
            },
            exit: () => (exit = now()),
          });
          send({ id: request.id, ok: true, enter, exit });
        }
      } catch (error) {
        send({ id: request.id, ok: false, error: errorMessage(error), acquired });
      }
    })();
  });
  send({ ready: true });
}

await serve(JSON.parse(process.argv[2] ?? '{}') as WorkerConfig);
