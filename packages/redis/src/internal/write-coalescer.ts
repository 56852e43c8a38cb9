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
 * of the client's time. The first command of a tick is written at once, as without
 * coalescing, so a lone call is not delayed at all (its write overlaps with whatever the tick
 * still runs). A second command in the same tick corks the connection's socket, and a
 * `process.nextTick` uncorks it (Node's cork/uncork pattern): every further command of the
 * tick leaves in one `writev`. Commands are still written into the stream at once, in order
 * (ioredis copies their arguments then, and its reply queue is unchanged); only the system
 * call waits, never past the current tick: no timer, no event-loop turn.
 *
 * Only sockets of connections that are `ready` are corked, read afresh each time (a
 * reconnect replaces the socket); every socket corked is uncorked exactly once, even if it
 * has ended or been destroyed since (an ended socket flushed its writes already, a destroyed
 * one has failed the commands it held, and ioredis rejects them). A Cluster corks each ready
 * node's socket, since its commands go out over one connection per node.
 */
export class WriteCoalescer {
  readonly #client: RedisClient;
  readonly #corked: Writable[] = [];
  /** 0: no command yet this tick; 1: one written uncorked; 2: corked until the tick ends. */
  #state: 0 | 1 | 2 = 0;

  constructor(client: RedisClient) {
    this.#client = client;
  }

  /** Call right before issuing commands: from the second call of a tick on, corks the connection(s) until the tick ends. */
  hold(): void {
    const state = this.#state;
    if (state === 2) return;
    if (state === 0) {
      this.#state = 1;
      process.nextTick(this.#release);
      return;
    }
    this.#state = 2;
    const client = this.#client;
    if (isCluster(client)) {
      for (const node of client.nodes('all')) this.#cork(node);
    } else {
      this.#cork(client);
    }
  }

  #cork(connection: Connection): void {
    const stream = connection.stream;
    if (connection.status !== 'ready' || stream === undefined || !stream.writable) return;
    stream.cork();
    this.#corked.push(stream);
  }

  readonly #release = (): void => {
    this.#state = 0;
    const corked = this.#corked;
    for (let i = 0; i < corked.length; i++) (corked[i] as Writable).uncork();
    corked.length = 0;
  };
}
