import { BackendUnavailableError, type ConnectionState } from '@latchkey/core';
import type { Cluster, Redis } from 'ioredis';

/** A standalone/Sentinel client or a Cluster client. */
export type RedisClient = Redis | Cluster;

const WAITING_STATUSES = new Set(['wait', 'connecting', 'connect', 'reconnecting']);

/**
 * Lets calls wait for a connection instead of entering ioredis' offline queue: a command is
 * sent only while the client is `ready`, so it is written to the socket at once and can never
 * land later, after its caller gave up. While the client is connecting, calls share one wait
 * that ends at `ready` (go), or at the next failed connection attempt or the end of the
 * client (BackendUnavailableError: nothing was sent). The connection of the backend's call runner.
 */
export class ConnectionGate implements ConnectionState {
  readonly #client: RedisClient;
  #waiting: Promise<void> | undefined;
  #lastError: unknown;
  readonly #recordError = (error: unknown): void => {
    this.#lastError = error;
  };

  /**
   * @param client - The client to watch.
   * @param ownsClient - True for a client the backend built: the gate then listens for its
   *   `error` events (so ioredis never reports them as unhandled) and keeps the last one as
   *   the `cause` of unavailability errors. A caller's client keeps its own error handling.
   */
  constructor(client: RedisClient, ownsClient: boolean) {
    this.#client = client;
    if (ownsClient) client.on('error', this.#recordError);
  }

  /** The last `error` event of a client the backend built (the cause of unavailability errors). */
  get lastError(): unknown {
    return this.#lastError;
  }

  /** True when commands can be sent now. */
  get ready(): boolean {
    return this.#client.status === 'ready';
  }

  /**
   * Resolves once the client is ready; rejects with {@link BackendUnavailableError} when the
   * connection attempt under way fails or the client has ended. Never rejects unhandled:
   * callers race it against their deadline.
   */
  whenReady(): Promise<void> {
    if (this.ready) return Promise.resolve();
    const status = this.#client.status;
    if (!WAITING_STATUSES.has(status)) {
      return Promise.reject(
        new BackendUnavailableError(`RedisBackend: the Redis client is not connected (status "${status}").`, { cause: this.#lastError }),
      );
    }
    this.#waiting ??= this.#wait(status);
    return this.#waiting;
  }

  /** Stops listening to the client. */
  dispose(): void {
    this.#client.off('error', this.#recordError);
  }

  #wait(status: string): Promise<void> {
    const client = this.#client;
    const waiting = new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        client.off('ready', onReady);
        client.off('close', onDown);
        client.off('end', onDown);
        this.#waiting = undefined;
      };
      const onReady = (): void => {
        cleanup();
        resolve();
      };
      const onDown = (): void => {
        cleanup();
        reject(new BackendUnavailableError('RedisBackend: could not connect to Redis.', { cause: this.#lastError }));
      };
      client.on('ready', onReady);
      client.on('close', onDown);
      client.on('end', onDown);
    });
    if (status === 'wait') client.connect().catch(() => undefined);
    return waiting;
  }
}
