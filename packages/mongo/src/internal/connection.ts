import type { ConnectionState } from '@latchkey/core';
import type { MongoClient } from 'mongodb';

/**
 * The connection of a client the backend built, as its call runner waits for it.
 *
 * The driver connects by itself on a client's first operation, but when that first connect
 * fails it keeps the topology it closed and fails every later operation with "Topology is
 * closed", for good; an explicit `connect()` builds a new one. So the backend connects
 * itself: calls made while not connected wait (inside their deadline) for one shared
 * `connect()`, a failed one is tried again by the next call, and a closed topology reported
 * later ({@link lost}) is connected again the same way.
 */
export class ClientConnection implements ConnectionState {
  readonly #client: Pick<MongoClient, 'connect'>;
  #ready = false;
  #connecting: Promise<void> | undefined;
  #lastError: unknown;

  constructor(client: Pick<MongoClient, 'connect'>) {
    this.#client = client;
  }

  /** True once a `connect()` succeeded, until {@link lost}. */
  get ready(): boolean {
    return this.#ready;
  }

  /** Why the last `connect()` failed (the cause of a call that timed out waiting for one). */
  get lastError(): unknown {
    return this.#lastError;
  }

  /** Connects, sharing one attempt among the calls that wait; rejects with the driver's error. */
  whenReady(): Promise<void> {
    this.#connecting ??= this.#client.connect().then(
      () => {
        this.#ready = true;
        this.#lastError = undefined;
        this.#connecting = undefined;
      },
      (error: unknown) => {
        this.#lastError = error;
        this.#connecting = undefined;
        throw error;
      },
    );
    return this.#connecting;
  }

  /** The driver reported a closed topology: the next call connects again first. */
  lost(): void {
    this.#ready = false;
  }
}
