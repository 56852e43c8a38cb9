import { describe, expect, it } from 'vitest';
import { BackendError, LatchkeyError, ProxyBackend, ValidationError, type Lease } from '../../src/index.js';
import { MapBackend } from '../support/map-backend.js';

class PassThrough extends ProxyBackend {}

const lease: Lease = { key: 'k', token: 't', fencingToken: 1n };

describe('ProxyBackend', () => {
  it('refuses to be used before wrap() with ValidationError', () => {
    const proxy = new PassThrough();
    expect(() => proxy.proxied).toThrow(ValidationError);
    expect(() => proxy.proxied).toThrow(/PassThrough has not been attached to a backend/);
    expect(() => proxy.capabilities).toThrow(ValidationError);
    expect(() => proxy.get('k')).toThrow(ValidationError);
  });

  it('passes calls on once wrapped', async () => {
    const backend = new MapBackend();
    const proxy = new PassThrough().wrap(backend);
    expect(proxy.capabilities).toBe(backend.capabilities);
    expect(await proxy.set('k', new Uint8Array([1]))).toBe('written');
    expect(await proxy.get('k')).toStrictEqual(new Uint8Array([1]));
    expect(backend.calls).toStrictEqual(['set k', 'get k']);
  });

  it('rejects lock calls over a backend without locks with BackendError', async () => {
    const proxy = new PassThrough().wrap(new MapBackend());
    const calls = [proxy.acquireLock('k', { leaseMs: 100, waitMs: 0 }), proxy.releaseLock(lease), proxy.extendLock(lease, 100)] as const;
    for (const call of calls) {
      const error = await call.then(
        () => expect.fail('the lock call should have been rejected'),
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(BackendError);
      expect(error).toBeInstanceOf(LatchkeyError);
      expect((error as Error).message).toMatch(/MapBackend has no locks of its own/);
    }
  });
});
