// What the integration tests share: the server address from the global setup, a unique
// collection per backend, and cleanup with a client of the tests' own.
import { randomUUID } from 'node:crypto';
import { MongoClient, type Collection } from 'mongodb';
import { inject } from 'vitest';
import { requireService } from '@latchkey/test-servers';
import { MongoBackend, type MongoBackendOptions } from '../../src/index.js';

/** The test server's connection string (or undefined when it is unavailable). */
export const mongoUrl = inject('mongoUrl');

/** Which server it is: `mongod`, `ferretdb` or `external`. */
export const mongoEngine = inject('mongoEngine');

/** True when the suite can run; prints the reason (or fails under LATCHKEY_REQUIRE_SERVICES=1) otherwise. */
export function mongoAvailable(suite: string): boolean {
  return requireService(suite, mongoUrl, inject('mongoUnavailable'));
}

/** The database every integration test uses. */
export const TEST_DB = 'latchkey_test';

/** A collection name no other test uses. */
export function uniqueCollection(prefix = 't'): string {
  return `${prefix}_${randomUUID().replaceAll('-', '')}`;
}

/** A backend on a fresh collection of the test server (TTL index off unless asked for). */
export function createBackend(options: Partial<MongoBackendOptions> = {}): MongoBackend {
  return new MongoBackend({
    url: mongoUrl as string,
    dbName: TEST_DB,
    collection: uniqueCollection(),
    operationTimeoutMs: 5000,
    documentTtlIndex: false,
    ...options,
  } as MongoBackendOptions);
}

let adminClient: MongoClient | undefined;

/** A client of the tests' own, to look at and change documents behind the backend's back. */
export function testClient(): MongoClient {
  adminClient ??= new MongoClient(mongoUrl as string, { serverSelectionTimeoutMS: 5000 });
  return adminClient;
}

/** The raw collection behind `backend`, through the tests' own client. */
export function rawCollection(backend: MongoBackend): Collection {
  return testClient().db(TEST_DB).collection(backend.collection.collectionName);
}

/** Drops the collection of `backend` (ignoring "not found"). */
export async function dropCollection(backend: MongoBackend): Promise<void> {
  await rawCollection(backend)
    .drop()
    .catch((error: unknown) => {
      if ((error as { code?: unknown }).code !== 26) throw error;
    });
}

/** Closes the tests' own client. */
export async function closeTestClient(): Promise<void> {
  await adminClient?.close();
  adminClient = undefined;
}

/** UTF-8 bytes of `text`. */
export function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** `text` of UTF-8 `data` (undefined stays undefined). */
export function text(data: Uint8Array | undefined): string | undefined {
  return data === undefined ? undefined : new TextDecoder().decode(data);
}
