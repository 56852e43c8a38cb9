import { ValidationError } from '@latchkey/core';
import { describe, expect, it } from 'vitest';
import { resolveRedisBackendOptions, type RedisLockReplication } from '../../src/redis-backend-options.js';
import { RedisBackend } from '../../src/index.js';

const NOWHERE = 'redis://127.0.0.1:1';

describe('lockReplication option', () => {
  it('is off unless given', () => {
    expect(resolveRedisBackendOptions({}).lockReplication).toBeUndefined();
  });

  it('waits half the operation deadline by default, and takes a shorter wait', () => {
    expect(resolveRedisBackendOptions({ lockReplication: { replicas: 2 } }).lockReplication).toEqual({ replicas: 2, timeoutMs: 1000 });
    expect(resolveRedisBackendOptions({ operationTimeoutMs: 801, lockReplication: { replicas: 1 } }).lockReplication).toEqual({
      replicas: 1,
      timeoutMs: 400,
    });
    expect(resolveRedisBackendOptions({ lockReplication: { replicas: 1, timeoutMs: 1999 } }).lockReplication?.timeoutMs).toBe(1999);
  });

  it.each([
    ['no object', 2],
    ['null', null],
    ['0 replicas', { replicas: 0 }],
    ['a fraction of a replica', { replicas: 1.5 }],
    ['replicas as a string', { replicas: '2' }],
    ['a 0 ms wait (WAIT would block for ever)', { replicas: 1, timeoutMs: 0 }],
    ['a fractional wait', { replicas: 1, timeoutMs: 10.5 }],
    ['a wait as long as the operation deadline', { replicas: 1, timeoutMs: 2000 }],
    ['an endless wait', { replicas: 1, timeoutMs: Infinity }],
  ])('rejects %s with ValidationError before any I/O', (_, lockReplication) => {
    expect(() => new RedisBackend({ url: NOWHERE, lockReplication: lockReplication as unknown as RedisLockReplication })).toThrow(
      ValidationError,
    );
  });

  it('needs an operation deadline above 1 ms to leave WAIT a whole millisecond', () => {
    expect(() => resolveRedisBackendOptions({ operationTimeoutMs: 1, lockReplication: { replicas: 1 } })).toThrow(ValidationError);
  });
});
