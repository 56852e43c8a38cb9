import { describe, expect, it } from 'vitest';
import { ClientConnection } from '../../src/internal/connection.js';

/** A stand-in for MongoClient.connect whose attempts the test settles one by one. */
function fakeClient(): { client: { connect: () => Promise<never> }; attempts: { resolve: () => void; reject: (error: Error) => void }[] } {
  const attempts: { resolve: () => void; reject: (error: Error) => void }[] = [];
  const client = {
    connect: () =>
      new Promise<never>((resolve, reject) => {
        attempts.push({ resolve: () => resolve(undefined as never), reject });
      }),
  };
  return { client, attempts };
}

describe('ClientConnection', () => {
  it('is not ready before the first connect, and concurrent waits share one connect', async () => {
    const { client, attempts } = fakeClient();
    const connection = new ClientConnection(client);
    expect(connection.ready).toBe(false);
    const waits = [connection.whenReady(), connection.whenReady(), connection.whenReady()];
    expect(attempts).toHaveLength(1);
    attempts[0]!.resolve();
    await Promise.all(waits);
    expect(connection.ready).toBe(true);
  });

  it('rejects every wait with the driver error of a failed connect, keeps it as lastError, and connects again on the next wait', async () => {
    const { client, attempts } = fakeClient();
    const connection = new ClientConnection(client);
    const error = new Error('Server selection timed out');
    const waits = [connection.whenReady(), connection.whenReady()];
    attempts[0]!.reject(error);
    for (const wait of waits) await expect(wait).rejects.toBe(error);
    expect(connection.ready).toBe(false);
    expect(connection.lastError).toBe(error);

    const retry = connection.whenReady();
    expect(attempts).toHaveLength(2);
    attempts[1]!.resolve();
    await retry;
    expect(connection.ready).toBe(true);
    expect(connection.lastError).toBeUndefined();
  });

  it('connects again after lost()', async () => {
    const { client, attempts } = fakeClient();
    const connection = new ClientConnection(client);
    const first = connection.whenReady();
    attempts[0]!.resolve();
    await first;
    connection.lost();
    expect(connection.ready).toBe(false);
    const again = connection.whenReady();
    expect(attempts).toHaveLength(2);
    attempts[1]!.resolve();
    await again;
    expect(connection.ready).toBe(true);
  });
});
