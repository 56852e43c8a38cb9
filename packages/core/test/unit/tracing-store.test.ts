import diagnosticsChannel from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BackendError,
  InvalidKeyError,
  KeyValueStore,
  LOCK_ACQUIRE_CHANNEL,
  LOCK_RELEASE_CHANNEL,
  lockAcquireChannel,
  lockReleaseChannel,
  LockTimeoutError,
  NotConfiguredError,
  NotFoundError,
  ProxyBackend,
  STORE_OPERATION_CHANNEL,
  storeOperationChannel,
  type BackendWriteOptions,
  type ConfigureOptions,
  type StoreOperationMessage,
  type StoredValue,
  type WriteOutcome,
  ValidationError,
} from '../../src/index.js';
import { MapBackend, uniqueName } from '../support/map-backend.js';
import { at, recordTraces, type TraceRecorder } from '../support/trace-recorder.js';

const SETTLED_OK = ['start', 'end', 'asyncStart', 'asyncEnd'];
const SETTLED_WITH_ERROR = ['start', 'end', 'error', 'asyncStart', 'asyncEnd'];

let recorder: TraceRecorder<StoreOperationMessage> | undefined;
afterEach(() => {
  recorder?.stop();
  recorder = undefined;
});

/** A store over a MapBackend, configured before anything is recorded. */
async function configured(options: ConfigureOptions = {}): Promise<KeyValueStore> {
  const store = new KeyValueStore(uniqueName('traced'));
  await store.configure(new MapBackend(), options);
  return store;
}

/** Records store operations from now until the test ends. */
function record(): TraceRecorder<StoreOperationMessage> {
  recorder = recordTraces(storeOperationChannel);
  return recorder;
}

async function traced(options: ConfigureOptions = {}) {
  const store = await configured(options);
  return { store, recorder: record() };
}

/** The one message of the calls so far, checking there was exactly one. */
function only(trace: TraceRecorder<StoreOperationMessage>): StoreOperationMessage {
  const messages = trace.messages();
  expect(messages, JSON.stringify(trace.events.map((recorded) => recorded.snapshot))).toHaveLength(1);
  return messages[0] as StoreOperationMessage;
}

describe('store operations on latchkey:store:operation', () => {
  it('publishes start, end, asyncStart and asyncEnd of a get hit with the documented message', async () => {
    const store = await configured();
    await store.set('user:1', 'secret-value');
    const trace = record();
    expect(await store.get('user:1')).toBe('secret-value');
    const message = only(trace);
    expect(trace.of(message)).toStrictEqual(SETTLED_OK);
    expect(at(trace, message, 'start')).toStrictEqual({
      store: store.name,
      operation: 'get',
      backend: 'MapBackend',
      key: undefined,
      keyCount: 1,
      outcome: undefined,
      missCount: undefined,
      durationMs: undefined,
    });
    const end = at(trace, message, 'asyncEnd');
    expect(end).toMatchObject({ operation: 'get', outcome: 'hit', missCount: 0, key: undefined });
    expect(end.durationMs).toBeGreaterThanOrEqual(0);
    expect(end.error).toBeUndefined();
    // Values never travel in messages: the channel's result is undefined.
    expect('result' in end && end.result).toBeUndefined();
    expect(JSON.stringify(end)).not.toContain('secret-value');
  });

  it('reports a get miss as outcome miss, without an error event, and still rejects NotFoundError', async () => {
    const { store, recorder: trace } = await traced();
    await expect(store.get('absent')).rejects.toBeInstanceOf(NotFoundError);
    const message = only(trace);
    expect(trace.of(message)).toStrictEqual(SETTLED_OK);
    expect(message).toMatchObject({ operation: 'get', outcome: 'miss', missCount: 1 });
    expect(message.error).toBeUndefined();
  });

  it('carries user keys only with traceKeys: true, and never a batch’s keys', async () => {
    const { store, recorder: trace } = await traced({ traceKeys: true });
    await store.set('user:1', 1);
    await store.getMany(['user:1', 'user:1']);
    const [set, getMany] = trace.messages();
    expect(set).toMatchObject({ operation: 'set', key: 'user:1' });
    expect(getMany).toMatchObject({ operation: 'getMany', key: undefined, keyCount: 2 });
    expect(JSON.stringify(getMany)).not.toContain('user:1');
  });

  it('refuses a traceKeys that is not a boolean', async () => {
    const store = new KeyValueStore(uniqueName('trace-keys'));
    await expect(store.configure(new MapBackend(), { traceKeys: 'yes' as unknown as boolean })).rejects.toBeInstanceOf(ValidationError);
    expect(store.isConfigured).toBe(false);
  });

  it('counts the keys of getMany and the missing ones with duplicates, as outcome miss when any is missing', async () => {
    const { store, recorder: trace } = await traced();
    await store.setMany({ a: 1, b: 2 });
    await expect(store.getMany(['a', 'x', 'b', 'x', 'y'])).rejects.toBeInstanceOf(NotFoundError);
    expect(await store.getMany(['a', 'b', 'a'])).toStrictEqual([1, 2, 1]);
    expect(await store.getMany([])).toStrictEqual([]);
    const [, missed, found, empty] = trace.messages();
    expect(missed).toMatchObject({ operation: 'getMany', keyCount: 5, missCount: 3, outcome: 'miss' });
    expect(trace.of(missed as StoreOperationMessage)).toStrictEqual(SETTLED_OK);
    expect(found).toMatchObject({ keyCount: 3, missCount: 0, outcome: 'hit' });
    expect(empty).toMatchObject({ keyCount: 0, missCount: 0, outcome: 'hit' });
  });

  it('publishes written for set and setMany, counting setMany’s entries however they are given', async () => {
    const { store, recorder: trace } = await traced();
    await store.set('k', 1);
    await store.setMany([
      ['a', 1],
      ['b', 2],
    ]);
    await store.setMany(
      new Map([
        ['a', 1],
        ['b', 2],
        ['c', 3],
      ]),
    );
    await store.setMany({});
    const [set, fromArray, fromMap, empty] = trace.messages() as StoreOperationMessage[];
    expect(set).toMatchObject({ operation: 'set', keyCount: 1, outcome: 'written', missCount: undefined });
    expect(at(trace, fromArray!, 'start').keyCount).toBe(2);
    // A Map's entries are counted when read: before end, not at start.
    expect(at(trace, fromMap!, 'start').keyCount).toBe(0);
    expect(at(trace, fromMap!, 'end').keyCount).toBe(3);
    expect(fromMap).toMatchObject({ operation: 'setMany', outcome: 'written' });
    expect(empty).toMatchObject({ operation: 'setMany', keyCount: 0, outcome: 'written' });
  });

  it('reports a locked write refused by the backend as lease-lost, without an error event', async () => {
    class LostLease extends ProxyBackend {
      override set(key: string, value: StoredValue, options?: BackendWriteOptions): Promise<WriteOutcome> {
        return options?.lease === undefined ? super.set(key, value, options) : Promise.resolve('lease-lost');
      }
    }
    const { store, recorder: trace } = await traced({ proxies: [LostLease] });
    await store.withLock('k', async (lock) => {
      await expect(store.set('k', 1, { lock })).rejects.toBeInstanceOf(LockTimeoutError);
    });
    const set = trace.messages().find((message) => message.operation === 'set');
    expect(set).toMatchObject({ outcome: 'lease-lost' });
    expect(trace.of(set!)).toStrictEqual(SETTLED_OK);
  });

  it('publishes deleted and miss for delete, deleted for deleteMany', async () => {
    const { store, recorder: trace } = await traced();
    await store.setMany({ a: 1, b: 2 });
    await store.delete('a');
    await expect(store.delete('a')).rejects.toBeInstanceOf(NotFoundError);
    await store.deleteMany(['b', 'gone']);
    await store.deleteMany([]);
    const [, deleted, missing, many, none] = trace.messages();
    expect(deleted).toMatchObject({ operation: 'delete', outcome: 'deleted' });
    expect(missing).toMatchObject({ operation: 'delete', outcome: 'miss' });
    expect(trace.of(missing!)).toStrictEqual(SETTLED_OK);
    expect(many).toMatchObject({ operation: 'deleteMany', keyCount: 2, outcome: 'deleted' });
    expect(none).toMatchObject({ operation: 'deleteMany', keyCount: 0, outcome: 'deleted' });
  });

  it('publishes getOrCreate as hit, created or waited, around the calls it makes', async () => {
    const { store, recorder: trace } = await traced();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const creating = store.getOrCreate('k', async () => {
      await gate;
      return 'made';
    });
    // A second caller finds the key missing and waits for the first one's lock.
    const waiting = store.getOrCreate('k', () => 'never');
    await new Promise((resolve) => setTimeout(resolve, 20));
    release();
    expect(await creating).toBe('made');
    expect(await waiting).toBe('made');
    expect(await store.getOrCreate('k', () => 'never')).toBe('made');
    const outer = trace.messages().filter((message) => message.operation === 'getOrCreate');
    expect(outer.map((message) => message.outcome)).toStrictEqual(['created', 'waited', 'hit']);
    // The creator's call published its own get (miss), get under the lock (miss) and set (written), inside its span.
    const first = trace.events.findIndex((recorded) => recorded.message === outer[0] && recorded.event === 'start');
    const last = trace.events.findIndex((recorded) => recorded.message === outer[0] && recorded.event === 'asyncEnd');
    const inner = trace.events.slice(first + 1, last).filter((recorded) => recorded.event === 'start');
    expect(inner.map((recorded) => `${recorded.message.operation}:${recorded.message.outcome}`)).toEqual(
      expect.arrayContaining(['get:miss', 'set:written']),
    );
  });

  it('publishes error with the error the call rejects with, and durationMs, when the backend fails', async () => {
    class Failing extends ProxyBackend {
      override get(): Promise<StoredValue | undefined> {
        return Promise.reject(new Error('disk on fire'));
      }
    }
    const { store, recorder: trace } = await traced({ proxies: [Failing] });
    const rejection = await store.get('k').catch((error: unknown) => error);
    expect(rejection).toBeInstanceOf(BackendError);
    const message = only(trace);
    expect(trace.of(message)).toStrictEqual(SETTLED_WITH_ERROR);
    const error = at(trace, message, 'error');
    expect(error.error).toBe(rejection);
    expect(error.outcome).toBeUndefined();
    expect(error.durationMs).toBeGreaterThanOrEqual(0);
    // The backend is the one beneath the proxies.
    expect(message.backend).toBe('MapBackend');
  });

  it('publishes error for bad input and for an unconfigured store (backend undefined)', async () => {
    const { store, recorder: trace } = await traced();
    await expect(store.get('')).rejects.toBeInstanceOf(InvalidKeyError);
    const unconfigured = new KeyValueStore(uniqueName('unconfigured'));
    await expect(unconfigured.set('k', 1)).rejects.toBeInstanceOf(NotConfiguredError);
    const [bad, early] = trace.messages();
    expect(trace.of(bad!)).toStrictEqual(SETTLED_WITH_ERROR);
    expect(bad!.error).toBeInstanceOf(InvalidKeyError);
    expect(early).toMatchObject({ store: unconfigured.name, operation: 'set', backend: undefined });
    expect(early!.error).toBeInstanceOf(NotConfiguredError);
  });

  it('is reachable by its documented name, for plain channel subscribers too', async () => {
    const { store } = await traced();
    const byName = diagnosticsChannel.tracingChannel<unknown, StoreOperationMessage>(STORE_OPERATION_CHANNEL);
    const seen: string[] = [];
    const onEnd = (message: unknown) => seen.push(`plain:${(message as StoreOperationMessage).outcome}`);
    const record = (message: StoreOperationMessage) => seen.push(`tracing:${message.outcome}`);
    // @types/node 20 wants all five handlers here; Node needs only the ones given.
    const ignore = () => undefined;
    const handlers = { start: ignore, end: ignore, asyncStart: ignore, asyncEnd: record, error: ignore };
    byName.subscribe(handlers);
    diagnosticsChannel.subscribe(`tracing:${STORE_OPERATION_CHANNEL}:asyncEnd`, onEnd);
    try {
      await store.set('k', 1);
    } finally {
      byName.unsubscribe(handlers);
      diagnosticsChannel.unsubscribe(`tracing:${STORE_OPERATION_CHANNEL}:asyncEnd`, onEnd);
    }
    expect(seen.sort()).toStrictEqual(['plain:written', 'tracing:written']);
  });

  it('publishes on the five channels tracing:<name>:<event> of each documented name', () => {
    const channels = [
      ['latchkey:store:operation', STORE_OPERATION_CHANNEL, storeOperationChannel],
      ['latchkey:lock:acquire', LOCK_ACQUIRE_CHANNEL, lockAcquireChannel],
      ['latchkey:lock:release', LOCK_RELEASE_CHANNEL, lockReleaseChannel],
    ] as const;
    for (const [documented, constant, channel] of channels) {
      expect(constant).toBe(documented);
      for (const event of ['start', 'end', 'asyncStart', 'asyncEnd', 'error'] as const) {
        expect(channel[event], `${documented} ${event}`).toBe(diagnosticsChannel.channel(`tracing:${documented}:${event}`));
      }
    }
  });

  it('stops publishing once unsubscribed', async () => {
    const { store, recorder: trace } = await traced();
    await store.set('k', 1);
    expect(trace.stop()).toBe(true);
    recorder = undefined;
    expect(storeOperationChannel.hasSubscribers).toBe(false);
    await store.get('k');
    await expect(store.get('absent')).rejects.toBeInstanceOf(NotFoundError);
    expect(trace.messages().map((message) => message.operation)).toStrictEqual(['set']);
  });
});
