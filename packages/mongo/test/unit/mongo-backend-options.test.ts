import { MongoClient } from 'mongodb';
import { afterAll, describe, expect, it } from 'vitest';
import { ValidationError } from '@latchkey/core';
import { DEFAULT_LOCK_POLL_INTERVAL_MS, DEFAULT_OPERATION_TIMEOUT_MS, MongoBackend, type MongoBackendOptions } from '../../src/index.js';
import { resolveMongoOptions } from '../../src/mongo-backend-options.js';

// Nothing here connects: building a MongoClient does no I/O until its first operation.
const URL = 'mongodb://127.0.0.1:1/';
const valid = { url: URL, dbName: 'db', collection: 'kvs' } as const;

function rejectsWith(options: unknown, message: RegExp): void {
  let thrown: unknown;
  try {
    new MongoBackend(options as MongoBackendOptions);
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(ValidationError);
  expect((thrown as Error).message).toMatch(message);
}

describe('MongoBackend options', () => {
  const clients: MongoClient[] = [];
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
  });

  describe('accepts', () => {
    it('a url with dbName and collection, and applies the defaults', () => {
      const resolved = resolveMongoOptions(valid);
      clients.push(resolved.client);
      expect(resolved).toMatchObject({
        ownsClient: true,
        dbName: 'db',
        collection: 'kvs',
        operationTimeoutMs: DEFAULT_OPERATION_TIMEOUT_MS,
        documentTtlIndex: true,
        lockPollIntervalMs: DEFAULT_LOCK_POLL_INTERVAL_MS,
      });
    });

    it('derives the built client’s connect and socket timeouts from operationTimeoutMs, and a server selection that gives up before it', () => {
      const resolved = resolveMongoOptions({ ...valid, operationTimeoutMs: 1234.5 });
      clients.push(resolved.client);
      expect(resolved.client.options).toMatchObject({ serverSelectionTimeoutMS: 987, connectTimeoutMS: 1235, socketTimeoutMS: 1235 });
    });

    it('passes the options Keystone’s Mongo backend took (write concern, read preference, replica set, TLS, credentials) to the built client', () => {
      const resolved = resolveMongoOptions({
        ...valid,
        clientOptions: {
          writeConcern: { w: 'majority', journal: true },
          readPreference: 'primaryPreferred',
          replicaSet: 'rs0',
          tls: false,
          auth: { username: 'u', password: 'p' },
        },
      });
      clients.push(resolved.client);
      const options = resolved.client.options;
      expect(options.writeConcern?.w).toBe('majority');
      expect(options.readPreference.mode).toBe('primaryPreferred');
      expect(options.replicaSet).toBe('rs0');
      expect(options.credentials?.username).toBe('u');
    });

    it('lets clientOptions override the derived timeouts', () => {
      const resolved = resolveMongoOptions({ ...valid, clientOptions: { serverSelectionTimeoutMS: 777 } });
      clients.push(resolved.client);
      expect(resolved.client.options.serverSelectionTimeoutMS).toBe(777);
    });

    it('a given client, which it does not own', () => {
      const client = new MongoClient(URL);
      clients.push(client);
      const resolved = resolveMongoOptions({ client, dbName: 'db', collection: 'kvs' });
      expect(resolved.client).toBe(client);
      expect(resolved.ownsClient).toBe(false);
    });
  });

  describe('rejects with ValidationError', () => {
    it.each([
      ['no options', undefined, /must be an object/],
      ['an array', [], /must be an object/],
      ['an unknown option', { ...valid, colection: 'x' }, /unknown option "colection"/],
      ['neither url nor client', { dbName: 'db', collection: 'kvs' }, /url or client is required/],
      ['both url and client', { ...valid, client: {} }, /either url or client, not both/],
      ['a url that is not a string', { ...valid, url: 42 }, /url must be a mongodb:\/\/ or mongodb\+srv:\/\/ connection string, got 42/],
      ['a url with another scheme', { ...valid, url: 'http://127.0.0.1/' }, /url must be a mongodb:\/\//],
      ['a malformed url', { ...valid, url: 'mongodb://' }, /invalid url or clientOptions/],
      [
        'a client that is not a MongoClient',
        { client: { hello: 1 }, dbName: 'db', collection: 'kvs' },
        /client must be a MongoClient, got an object/,
      ],
      ['a missing dbName', { url: URL, collection: 'kvs' }, /dbName must be a non-empty string, got undefined/],
      ['an empty dbName', { ...valid, dbName: '' }, /dbName must be a non-empty string/],
      ['a dbName with a dot', { ...valid, dbName: 'a.b' }, /dbName "a.b" contains a character MongoDB refuses/],
      ['a dbName with a slash', { ...valid, dbName: 'a/b' }, /contains a character MongoDB refuses/],
      ['a dbName of 64 bytes', { ...valid, dbName: 'd'.repeat(64) }, /shorter than 64 bytes/],
      ['a missing collection', { url: URL, dbName: 'db' }, /collection must be a non-empty string, got undefined/],
      ['a collection with "$"', { ...valid, collection: 'a$b' }, /must not contain "\$" or NUL/],
      ['a collection with NUL', { ...valid, collection: 'a\0b' }, /must not contain "\$" or NUL/],
      ['a system collection', { ...valid, collection: 'system.users' }, /must not start with "system\."/],
      ['a namespace over 255 bytes', { ...valid, collection: 'c'.repeat(260) }, /longer than MongoDB's 255 bytes/],
      [
        'operationTimeoutMs 0',
        { ...valid, operationTimeoutMs: 0 },
        /operationTimeoutMs must be a positive finite number of milliseconds .* got 0/,
      ],
      ['a negative operationTimeoutMs', { ...valid, operationTimeoutMs: -5 }, /operationTimeoutMs must be a positive/],
      ['an infinite operationTimeoutMs', { ...valid, operationTimeoutMs: Infinity }, /operationTimeoutMs must be a positive finite/],
      ['an operationTimeoutMs beyond setTimeout', { ...valid, operationTimeoutMs: 2 ** 31 }, /at most 2147483647/],
      ['a string operationTimeoutMs', { ...valid, operationTimeoutMs: '5000' }, /operationTimeoutMs .* got "5000"/],
      ['a lockPollIntervalMs of 0', { ...valid, lockPollIntervalMs: 0 }, /lockPollIntervalMs must be a positive/],
      ['a non-boolean documentTtlIndex', { ...valid, documentTtlIndex: 'yes' }, /documentTtlIndex must be a boolean, got "yes"/],
      ['clientOptions that are not an object', { ...valid, clientOptions: 'w=1' }, /clientOptions must be an object, got "w=1"/],
      [
        'clientOptions with a given client',
        { client: new MongoClient(URL), dbName: 'db', collection: 'kvs', clientOptions: {} },
        /clientOptions apply only to a client built from url/,
      ],
      [
        'a writeConcern that is not an object',
        { ...valid, clientOptions: { writeConcern: 'majority' } },
        /writeConcern must be an object like \{ w: 'majority' \}/,
      ],
      ['unacknowledged writes (w: 0)', { ...valid, clientOptions: { writeConcern: { w: 0 } } }, /unacknowledged writes \(w: 0\)/],
      ['unacknowledged writes in the url', { ...valid, url: `${URL}?w=0` }, /unacknowledged writes \(w: 0\)/],
      [
        'a negative w',
        { ...valid, clientOptions: { writeConcern: { w: -1 } } },
        /writeConcern.w must be 'majority', a tag set name or a whole number >= 1, got -1/,
      ],
      ['an empty replicaSet', { ...valid, clientOptions: { replicaSet: '' } }, /replicaSet must be a non-empty string/],
      ['a non-boolean tls', { ...valid, clientOptions: { tls: 'yes' } }, /tls must be a boolean, got "yes"/],
      [
        'credentials without a username',
        { ...valid, clientOptions: { auth: { password: 'p' } } },
        /auth must be \{ username: string, password\?: string \}/,
      ],
      [
        'an unknown read preference',
        { ...valid, clientOptions: { readPreference: 'fastest' } },
        /invalid url or clientOptions: Invalid read preference mode "fastest"/,
      ],
      [
        'a read preference of the wrong type',
        { ...valid, clientOptions: { readPreference: 3 } },
        /readPreference must be a mode name or a ReadPreference, got 3/,
      ],
      ['an option the driver does not know', { ...valid, clientOptions: { poolSize: 5 } }, /invalid url or clientOptions: .*poolsize/i],
    ])('for %s', (_name, options, message) => {
      rejectsWith(options, message);
    });

    it('for a given client that uses unacknowledged writes', () => {
      const client = new MongoClient(URL, { writeConcern: { w: 0 } });
      clients.push(client);
      rejectsWith({ client, dbName: 'db', collection: 'kvs' }, /the given client asks for unacknowledged writes/);
    });

    it('and keeps the driver’s error as the cause', () => {
      let thrown: unknown;
      try {
        new MongoBackend({ ...valid, clientOptions: { readPreference: 'fastest' } } as unknown as MongoBackendOptions);
      } catch (error) {
        thrown = error;
      }
      expect((thrown as Error).cause).toBeInstanceOf(Error);
      expect(((thrown as Error).cause as Error).name).toBe('MongoInvalidArgumentError');
    });
  });
});
