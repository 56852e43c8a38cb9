import { afterEach, describe, expect, it } from 'vitest';
import { KeyValueStore, NotFoundError, NotSupportedError, storeOperationChannel, type StoreOperationMessage } from '../../src/index.js';
import { ListingMapBackend } from '../support/listing-map-backend.js';
import { MapBackend, uniqueName } from '../support/map-backend.js';
import { at, recordTraces, type TraceRecorder } from '../support/trace-recorder.js';

const SETTLED_OK = ['start', 'end', 'asyncStart', 'asyncEnd'];
const SETTLED_WITH_ERROR = ['start', 'end', 'error', 'asyncStart', 'asyncEnd'];

let recorder: TraceRecorder<StoreOperationMessage> | undefined;
afterEach(() => {
  recorder?.stop();
  recorder = undefined;
});

async function traced(backend: MapBackend = new ListingMapBackend()) {
  const store = new KeyValueStore(uniqueName('traced-additions'));
  await store.configure(backend, { traceKeys: true });
  await store.setMany({ a: 1, b: 2 });
  recorder = recordTraces(storeOperationChannel);
  return { store, trace: recorder };
}

function ended(trace: TraceRecorder<StoreOperationMessage>) {
  return trace.messages().map((message) => {
    const end = at(trace, message, 'asyncEnd');
    return { operation: end.operation, outcome: end.outcome, keyCount: end.keyCount, missCount: end.missCount, key: end.key };
  });
}

describe('the additions on latchkey:store:operation', () => {
  it('publishes find, has, ttl and touch with hit, miss and written outcomes', async () => {
    const { store, trace } = await traced();
    await store.find('a');
    await store.find('x');
    await store.has('a');
    await store.has('x');
    await store.ttl('a');
    await expect(store.ttl('x')).rejects.toBeInstanceOf(NotFoundError);
    await store.touch('a', 60_000);
    await expect(store.touch('x', 60_000)).rejects.toBeInstanceOf(NotFoundError);
    expect(ended(trace)).toStrictEqual([
      { operation: 'find', outcome: 'hit', keyCount: 1, missCount: 0, key: 'a' },
      { operation: 'find', outcome: 'miss', keyCount: 1, missCount: 1, key: 'x' },
      { operation: 'has', outcome: 'hit', keyCount: 1, missCount: undefined, key: 'a' },
      { operation: 'has', outcome: 'miss', keyCount: 1, missCount: undefined, key: 'x' },
      { operation: 'ttl', outcome: 'hit', keyCount: 1, missCount: undefined, key: 'a' },
      { operation: 'ttl', outcome: 'miss', keyCount: 1, missCount: undefined, key: 'x' },
      { operation: 'touch', outcome: 'written', keyCount: 1, missCount: undefined, key: 'a' },
      { operation: 'touch', outcome: 'miss', keyCount: 1, missCount: undefined, key: 'x' },
    ]);
    // Misses are outcomes, not errors: no error event.
    for (const message of trace.messages()) expect(trace.of(message)).toStrictEqual(SETTLED_OK);
  });

  it('publishes a partial getMany as a miss with its count, and clear as deleted', async () => {
    const { store, trace } = await traced();
    await store.getMany(['a', 'x', 'x'], { allowMissing: true });
    await store.clear();
    expect(ended(trace)).toStrictEqual([
      { operation: 'getMany', outcome: 'miss', keyCount: 3, missCount: 2, key: undefined },
      { operation: 'clear', outcome: 'deleted', keyCount: 0, missCount: undefined, key: undefined },
    ]);
  });

  it('publishes one keys operation per iteration, listed with the number of keys yielded, also when stopped early', async () => {
    const { store, trace } = await traced();
    const keys: string[] = [];
    for await (const key of store.keys()) keys.push(key);
    for await (const key of store.keys()) {
      expect(typeof key).toBe('string');
      break;
    }
    expect(keys.sort()).toStrictEqual(['a', 'b']);
    // The channel publishes asyncEnd a few microtasks after the iteration ends.
    await new Promise((resolve) => setImmediate(resolve));
    expect(ended(trace)).toStrictEqual([
      { operation: 'keys', outcome: 'listed', keyCount: 2, missCount: undefined, key: undefined },
      { operation: 'keys', outcome: 'listed', keyCount: 1, missCount: undefined, key: undefined },
    ]);
    const first = trace.messages()[0]!;
    expect(at(trace, first, 'start').keyCount).toBe(0);
    expect(at(trace, first, 'asyncEnd').durationMs).toBeGreaterThanOrEqual(0);
  });

  it('publishes a keys() the backend cannot serve with the NotSupportedError it rejects with', async () => {
    const { store, trace } = await traced(new MapBackend());
    const iterator = store.keys()[Symbol.asyncIterator]();
    const error = await iterator.next().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(NotSupportedError);
    const message = trace.messages()[0]!;
    expect(trace.of(message)).toStrictEqual(SETTLED_WITH_ERROR);
    expect(at(trace, message, 'asyncEnd')).toMatchObject({ operation: 'keys', outcome: undefined, error });
  });
});
