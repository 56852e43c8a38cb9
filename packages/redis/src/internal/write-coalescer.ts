import type { Writable } from 'node:stream';
import type { RedisClient } from './connection-gate.js';
import { isCluster } from './clients.js';

/** The part of an ioredis connection the coalescer looks at. */
interface Connection {
  readonly status: string;
  readonly stream?: Writable | undefined;
}

/**
 * Sends the commands issued in one tick in one socket write. ioredis writes each command to
 * the socket as it is issued, one system call apiece; with many calls in flight that is most
 * of the client's time. {@link hold} corks the connection's socket before the first command
 * of a tick, and a `process.nextTick` uncorks it (Node's cork/uncork pattern), so every
 * command of the tick leaves in one `writev`. The commands are still written into the stream
 * at once, in order (ioredis copies their arguments then, and its reply queue is unchanged);
 * only the system call waits, and for no longer than the current tick: a single call pays one
 * `nextTick`, never a timer or an event-loop turn.
 *
 * Only sockets of connections that are `ready` are corked, read afresh each tick (a reconnect
 * replaces the socket); every socket corked is uncorked exactly once, even if it has ended or
 * been destroyed since (an ended socket flushed its writes already, a destroyed one has
 * failed the commands it held, and ioredis rejects them). A Cluster corks each ready node's
 * socket, since its commands go out over one connection per node.
 */
export class WriteCoalescer {
  readonly #client: RedisClient;
  readonly #corked: Writable[] = [];
  #held = false;

  constructor(client: RedisClient) {
    this.#client = client;
  }

  /** Corks the connection(s) until the end of this tick, unless already held this tick. Call right before issuing commands. */
  hold(): void {
    if (this.#held) return;
    const client = this.#client;
    if (isCluster(client)) {
      for (const node of client.nodes('all')) this.#cork(node);
    } else {
      this.#cork(client);
    }
    if (this.#corked.length === 0) return;
    this.#held = true;
    process.nextTick(this.#release);
  }

  #cork(connection: Connection): void {
    const stream = connection.stream;
    if (connection.status !== 'ready' || stream === undefined || !stream.writable) return;
    stream.cork();
    this.#corked.push(stream);
  }

  readonly #release = (): void => {
    this.#held = false;
    const corked = this.#corked;
    for (let i = 0; i < corked.length; i++) (corked[i] as Writable).uncork();
    corked.length = 0;
  };
}
