import { BackendClosedError, InvalidKeyError, ValidationError, ValueTooLargeError, type Lease } from '@latchkey/core';
import { Cluster, Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { RedisBackend } from '../../src/index.js';

// Nothing listens on port 1: any I/O would fail, so these tests prove there is none.
const NOWHERE = 'redis://127.0.0.1:1';
const backends: RedisBackend[] = [];

function make(options: ConstructorParameters<typeof RedisBackend>[0]): RedisBackend {
  const backend = new RedisBackend(options);
  backends.push(backend);
  return backend;
}

afterEach(async () => {
  await Promise.all(backends.splice(0).map((backend) => backend.close()));
});

describe('RedisBackend options', () => {
  it('rejects more than one connection source', () => {
    expect(() => new RedisBackend({ url: NOWHERE, cluster: { nodes: ['127.0.0.1:1'] } })).toThrow(ValidationError);
    expect(() => new RedisBackend({ url: NOWHERE, client: new Redis({ lazyConnect: true }) })).toThrow(ValidationError);
  });

  it('rejects a keyPrefix with braces', () => {
    expect(() => new RedisBackend({ url: NOWHERE, keyPrefix: 'a{b}' })).toThrow(ValidationError);
  });

  it('rejects a bad operationTimeoutMs, url, cluster or sentinel', () => {
    expect(() => new RedisBackend({ url: NOWHERE, operationTimeoutMs: 0 })).toThrow(ValidationError);
    expect(() => new RedisBackend({ url: NOWHERE, operationTimeoutMs: Number.NaN })).toThrow(ValidationError);
    expect(() => new RedisBackend({ url: 'http://127.0.0.1' })).toThrow(ValidationError);
    expect(() => new RedisBackend({ cluster: { nodes: [] } })).toThrow(ValidationError);
    expect(() => new RedisBackend({ cluster: { nodes: ['no-port'] } })).toThrow(ValidationError);
    expect(() => new RedisBackend({ sentinel: { sentinels: [], name: 'm' } })).toThrow(ValidationError);
    expect(() => new RedisBackend({ sentinel: { sentinels: [{ host: '127.0.0.1', port: 1 }], name: '' } })).toThrow(ValidationError);
  });

  it('rejects a client that is not an ioredis client', () => {
    expect(() => new RedisBackend({ client: {} as unknown as Redis })).toThrow(ValidationError);
  });

  it('declares what Redis can promise', () => {
    expect(make({ url: NOWHERE }).capabilities).toEqual({
      lockScope: 'distributed',
      atomicLeaseWrites: true,
      fencingTokens: true,
      ttlResolutionMs: 1,
      minLeaseMs: 1,
      maxValueBytes: 512 * 1024 * 1024,
      mayEvict: true,
      callDeadlineMs: 2000,
    });
    expect(make({ url: NOWHERE, operationTimeoutMs: 750 }).capabilities.callDeadlineMs).toBe(750);
  });

  it('declares a lowered maxValueBytes and enforces it before any I/O', async () => {
    const backend = make({ url: NOWHERE, maxValueBytes: 10 });
    expect(backend.capabilities.maxValueBytes).toBe(10);
    await expect(backend.set('k', new Uint8Array(11))).rejects.toBeInstanceOf(ValueTooLargeError);
    await expect(backend.setMany([['k', new Uint8Array(11)]])).rejects.toBeInstanceOf(ValueTooLargeError);
    expect(backend.client.status).toBe('wait');
    expect(() => new RedisBackend({ url: NOWHERE, maxValueBytes: 0 })).toThrow(ValidationError);
  });

  it('leaves key mangling to the store default', () => {
    expect(make({ url: NOWHERE }).keyMangler).toBeUndefined();
  });
});

describe('RedisBackend without I/O', () => {
  it('answers empty batches without connecting', async () => {
    const backend = make({ url: NOWHERE });
    await expect(backend.getMany([])).resolves.toEqual([]);
    await expect(backend.setMany([])).resolves.toBeUndefined();
    await expect(backend.deleteMany([])).resolves.toBeUndefined();
    expect(backend.client.status).toBe('wait');
  });

  it('rejects bad keys and values before any I/O', async () => {
    const backend = make({ url: NOWHERE });
    await expect(backend.get('')).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(backend.getMany(['a', ''])).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(backend.set('k', 'text' as unknown as Uint8Array)).rejects.toBeInstanceOf(ValidationError);
    await expect(backend.setMany([['', new Uint8Array(1)]])).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(backend.acquireLock('k', { leaseMs: -1, waitMs: 0 })).rejects.toBeInstanceOf(ValidationError);
    expect(backend.client.status).toBe('wait');
  });

  it('rejects a malformed lease with ValidationError before any I/O', async () => {
    const backend = make({ url: NOWHERE });
    const malformed = {} as Lease;
    await expect(backend.releaseLock(malformed)).rejects.toBeInstanceOf(ValidationError);
    await expect(backend.extendLock(malformed, 1_000)).rejects.toBeInstanceOf(ValidationError);
    await expect(backend.set('k', Uint8Array.of(1), { lease: malformed })).rejects.toBeInstanceOf(ValidationError);
    await expect(backend.delete('k', { lease: malformed })).rejects.toBeInstanceOf(ValidationError);
    expect(backend.client.status).toBe('wait');
  });

  it('rejects a value over 512 MiB before any I/O', async () => {
    const backend = make({ url: NOWHERE });
    const huge = new Uint8Array(new ArrayBuffer(0), 0, 0);
    Object.defineProperty(huge, 'byteLength', { value: 512 * 1024 * 1024 + 1 });
    await expect(backend.set('k', huge)).rejects.toBeInstanceOf(ValueTooLargeError);
    expect(backend.client.status).toBe('wait');
  });
});

describe('RedisBackend.close', () => {
  it('closes a client it built, and then rejects calls', async () => {
    const backend = new RedisBackend({ url: NOWHERE });
    await backend.close();
    await backend.close();
    expect(backend.client.status).toBe('end');
    await expect(backend.get('k')).rejects.toBeInstanceOf(BackendClosedError);
  });

  it('leaves a given client open', async () => {
    const client = new Redis({ lazyConnect: true, port: 1 });
    const cluster = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true });
    await new RedisBackend({ client }).close();
    await new RedisBackend({ client: cluster }).close();
    expect(client.status).toBe('wait');
    expect(cluster.status).toBe('wait');
    client.disconnect();
    cluster.disconnect();
  });
});
