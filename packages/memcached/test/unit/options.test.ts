import { ValidationError } from '@latchkey/core';
import { Client } from 'memjs';
import { describe, expect, it } from 'vitest';
import { MemcachedBackend } from '../../src/index.js';
import { parseServers, resolveOptions } from '../../src/memcached-backend-options.js';

describe('servers', () => {
  it('parses host:port entries from a string or an array, with 11211 as the default port', () => {
    expect(parseServers('127.0.0.1:1234, 127.0.0.1')).toStrictEqual([
      { host: '127.0.0.1', port: 1234 },
      { host: '127.0.0.1', port: 11211 },
    ]);
    expect(parseServers(['[::1]:11212'])).toStrictEqual([{ host: '::1', port: 11212 }]);
  });

  it('reads SASL credentials, splitting at the last @ and the first :', () => {
    expect(parseServers('user:p@ss:word@127.0.0.1:1')).toStrictEqual([
      { host: '127.0.0.1', port: 1, username: 'user', password: 'p@ss:word' },
    ]);
  });

  it.each(['', ' , ', '127.0.0.1:0', '127.0.0.1:70000', 'host:port', 'a b:1', 'nopassword@127.0.0.1:1'])('refuses %j', (servers) => {
    expect(() => parseServers(servers)).toThrow(ValidationError);
  });

  it('refuses a server listed twice', () => {
    expect(() => parseServers('127.0.0.1:1,127.0.0.1:1')).toThrow(/listed twice/);
  });

  it('never puts a password in an error message', () => {
    expect(() => parseServers('user:secret@bad host')).toThrow(ValidationError);
    try {
      parseServers('user:secret@bad host');
    } catch (error) {
      expect(String((error as Error).message)).not.toContain('secret');
    }
  });
});

describe('options', () => {
  it('applies the documented defaults', () => {
    const resolved = resolveOptions({ servers: '127.0.0.1:1' });
    expect(resolved).toMatchObject({
      keyPrefix: '',
      operationTimeoutMs: 2000,
      itemSizeLimit: 1_048_576,
      defaultTtlMs: undefined,
      noExpiryKeys: [],
    });
  });

  it.each([
    ['neither servers nor client', {}],
    ['both servers and client', { servers: '127.0.0.1:1', client: Client.create('127.0.0.1:1') }],
    ['an unknown option', { servers: '127.0.0.1:1', severs: 'x' }],
    ['a prefix with a space', { servers: '127.0.0.1:1', keyPrefix: 'a b' }],
    ['a prefix over 128 bytes', { servers: '127.0.0.1:1', keyPrefix: 'p'.repeat(129) }],
    ['a zero timeout', { servers: '127.0.0.1:1', operationTimeoutMs: 0 }],
    ['an infinite timeout', { servers: '127.0.0.1:1', operationTimeoutMs: Infinity }],
    ['an item size limit below the item overhead', { servers: '127.0.0.1:1', maxValueBytes: 512 }],
    ['a fractional item size limit', { servers: '127.0.0.1:1', maxValueBytes: 2048.5 }],
    ['a negative default TTL', { servers: '127.0.0.1:1', defaultTtlMs: -1 }],
    ['noExpiryKeys that are not strings', { servers: '127.0.0.1:1', noExpiryKeys: [1] }],
    ['a client that is not a memjs client', { client: { servers: [] } }],
  ])('refuses %s with ValidationError', (_why, options) => {
    expect(() => new MemcachedBackend(options as never)).toThrow(ValidationError);
  });
});

describe('capabilities', () => {
  it('declares distributed, CAS-fenced locks with whole-second expiry', async () => {
    const backend = new MemcachedBackend({ servers: '127.0.0.1:1' });
    expect(backend.capabilities).toStrictEqual({
      lockScope: 'distributed',
      atomicLeaseWrites: true,
      fencingTokens: true,
      ttlResolutionMs: 1000,
      minLeaseMs: 2000,
      maxValueBytes: 1_048_576 - 512,
      mayEvict: true,
      callDeadlineMs: 2000,
    });
    expect(Object.isFrozen(backend.capabilities)).toBe(true);
    await backend.close();
  });

  it('derives the largest value from the configured item size limit', async () => {
    const backend = new MemcachedBackend({ servers: '127.0.0.1:1', maxValueBytes: 2 * 1_048_576 });
    expect(backend.capabilities.maxValueBytes).toBe(2 * 1_048_576 - 512);
    await backend.close();
  });

  it('builds a mangler that depends on the prefix length', async () => {
    const short = new MemcachedBackend({ servers: '127.0.0.1:1' });
    const long = new MemcachedBackend({ servers: '127.0.0.1:1', keyPrefix: 'p'.repeat(100) });
    const key = 'k'.repeat(200);
    expect(short.keyMangler(key)).toBe(key);
    expect(long.keyMangler(key)).not.toBe(key);
    await Promise.all([short.close(), long.close()]);
  });
});
