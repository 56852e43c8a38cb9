// latchkey's diagnostics-channel events as OpenTelemetry metrics: keys found and missed, failed
// calls by error code, and how long callers waited for locks. instrumentLatchkey() is the part
// to copy; it only needs @opentelemetry/api (without an SDK every instrument is a no-op). The
// rest runs a small workload over a MemoryBackend with the metrics SDK and an in-memory
// exporter, and prints what the exporter received.
//
//   npx tsx examples/observability/otel-metrics.ts
import { metrics, type Meter } from '@opentelemetry/api';
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import {
  getKeyValueStore,
  LatchkeyError,
  LockAcquireTimeoutError,
  lockAcquireChannel,
  NotFoundError,
  storeOperationChannel,
  type LockAcquireMessage,
  type StoreOperationMessage,
} from '@latchkey/core';
import { MemoryBackend } from '@latchkey/memory';

/** Records latchkey's store and lock events on `meter`'s instruments; returns a function that stops. */
function instrumentLatchkey(meter: Meter): () => void {
  const hits = meter.createCounter('latchkey.store.hits', { description: 'Keys get and getMany found' });
  const misses = meter.createCounter('latchkey.store.misses', { description: 'Keys get and getMany did not find' });
  const failures = meter.createCounter('latchkey.store.failures', { description: 'Store calls that failed, by error code' });
  const lockWaits = meter.createHistogram('latchkey.lock.wait', {
    unit: 'ms',
    description: 'Time spent waiting for a lock, by outcome',
    advice: { explicitBucketBoundaries: [1, 5, 10, 25, 50, 100, 250, 500, 1000, 5000] },
  });

  const onStore = {
    asyncEnd(message: StoreOperationMessage): void {
      const attributes = { 'latchkey.store': message.store, 'latchkey.operation': message.operation };
      // get and getMany say how many of their keys were missing; the other calls leave it undefined.
      if (message.missCount !== undefined) {
        hits.add(message.keyCount - message.missCount, attributes);
        misses.add(message.missCount, attributes);
      }
      // The error's code, never its message: a message may name the key.
      if (message.error !== undefined) {
        const code = message.error instanceof LatchkeyError ? message.error.code : 'OTHER';
        failures.add(1, { ...attributes, 'error.type': code });
      }
    },
  };
  const onLockWait = {
    asyncEnd(message: LockAcquireMessage): void {
      lockWaits.record(message.durationMs ?? 0, { 'latchkey.store': message.store, 'latchkey.outcome': message.outcome ?? 'error' });
    },
  };
  storeOperationChannel.subscribe(onStore);
  lockAcquireChannel.subscribe(onLockWait);
  return () => {
    storeOperationChannel.unsubscribe(onStore);
    lockAcquireChannel.unsubscribe(onLockWait);
  };
}

/** One line per data point: `name{attributes} value`, histograms as count, sum, min and max. */
function printMetrics(exported: readonly ResourceMetrics[]): void {
  for (const { scopeMetrics } of exported) {
    for (const { metrics: scoped } of scopeMetrics) {
      for (const metric of scoped) {
        for (const point of metric.dataPoints) {
          const attributes = Object.entries(point.attributes)
            .map(([name, value]) => `${name}=${String(value)}`)
            .join(',');
          const value = point.value;
          const shown =
            metric.dataPointType === DataPointType.HISTOGRAM && typeof value === 'object'
              ? `count=${value.count} sum=${(value.sum ?? 0).toFixed(1)} min=${(value.min ?? 0).toFixed(1)} max=${(value.max ?? 0).toFixed(1)}`
              : String(value);
          console.log(`${metric.descriptor.name}{${attributes}} ${shown}`);
        }
      }
    }
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ignoreMissing = (error: unknown) => {
  if (!(error instanceof NotFoundError)) throw error;
};

const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const provider = new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 })] });
metrics.setGlobalMeterProvider(provider);
const stop = instrumentLatchkey(metrics.getMeter('latchkey-example'));

const store = getKeyValueStore('sessions');
await store.configure(new MemoryBackend(), { ttlMs: 60_000 });
await store.setMany({ 'session:a': { user: 1 }, 'session:b': { user: 2 } });
for (const key of ['session:a', 'session:b', 'session:gone', 'session:a']) await store.get(key).catch(ignoreMissing);
await store.getMany(['session:a', 'session:b', 'session:gone']).catch(ignoreMissing);
await store.get('').catch((error: unknown) => console.log(`rejected as expected: ${String(error)}`));

// Four workers take turns on one lock, each holding it 20 ms: all but the first wait.
await Promise.all([1, 2, 3, 4].map(() => store.withLock('report', () => sleep(20))));
// One more gives up after 10 ms while the lock is held.
await store.withLock('report', async () => {
  await store
    .withLock('report', () => undefined, { waitMs: 10 })
    .catch((error: unknown) => {
      if (!(error instanceof LockAcquireTimeoutError)) throw error;
    });
});

await provider.forceFlush();
printMetrics(exporter.getMetrics());
stop();
await store.close();
await provider.shutdown();
