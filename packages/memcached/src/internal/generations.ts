import { randomInt } from 'node:crypto';
import type { ServerChannel } from './channel.js';
import { statusError } from './errors.js';
import { requests, Status, type Reply, type Request } from './protocol.js';
import type { Route } from './router.js';

/**
 * Value flags are the generation modulo 2^30: below every flag the backend gives its own
 * items (lock items and placeholders start with 0x4c4b…), so a value never looks like one.
 */
const GENERATION_MODULUS = 2n ** 30n;

/**
 * How `clear()` empties a namespace without `flush_all` (which would empty the whole server,
 * other prefixes, lock items and fence counters included): every server keeps a generation
 * counter (`<prefix>~gen`), every value carries the generation it was written under in its
 * item flags (no byte of the value), and a value of an older generation reads as missing.
 * `clear()` increments every server's counter.
 *
 * - A read fetches the counter in the same pipelined batch as the values: exact, no extra
 *   round trip.
 * - A write uses the generation this backend last saw on that server and reads the counter
 *   right after it in the same batch; the server runs a connection's requests in order and the
 *   counter only grows, so an unchanged counter proves the write landed before any later
 *   clear. A moved counter (after a clear, by any process) writes once more under the new one.
 *
 * A counter lost to eviction or a restart is created again at a random generation, so values
 * of the generation it had do not come back (unless the random pick lands on it: 1 in 2^30).
 */
export class Generations {
  readonly #seen = new Map<ServerChannel, number>();
  #lastReply: Reply | undefined;
  #lastFlags = 0;

  /** The flags of the generation last seen on `route`'s server, if any was seen. */
  seen(route: Route): number | undefined {
    return this.#seen.get(route.channel);
  }

  /** The flags a value written now on `route`'s server carries, reading the counter if none was seen yet. */
  async flags(route: Route): Promise<number> {
    const seen = this.#seen.get(route.channel);
    return seen ?? this.#create(route);
  }

  /** The request that reads `route`'s server's counter; its reply goes to {@link observe}. */
  read(route: Route): Request {
    return requests.get(route.generationKey);
  }

  /**
   * The key of `route`'s server's counter, for `ServerChannel#send`'s `readAfter` (one read
   * behind a tick's requests); its reply goes to {@link observe}.
   */
  key(route: Route): string {
    return route.generationKey;
  }

  /**
   * Records the counter's reply and returns the flags of the current generation, or
   * `undefined` when the counter is missing (no value of this namespace is current then).
   */
  observe(route: Route, reply: Reply): number | undefined {
    // Calls sharing one read of the counter hand in the same reply: parsed once.
    if (reply === this.#lastReply) {
      this.#seen.set(route.channel, this.#lastFlags);
      return this.#lastFlags;
    }
    if (reply.status === Status.notFound) {
      this.#seen.delete(route.channel);
      return undefined;
    }
    if (reply.status !== Status.ok) throw statusError('reading the generation', route, reply);
    const flags = Number(BigInt(reply.value.toString('latin1')) % GENERATION_MODULUS);
    this.#seen.set(route.channel, flags);
    this.#lastReply = reply;
    this.#lastFlags = flags;
    return flags;
  }

  /** Starts a new generation on `route`'s server (creating the counter at a random one when missing). */
  async advance(route: Route): Promise<void> {
    const [reply] = (await route.channel.send([requests.increment(route.generationKey, randomGeneration())])) as [Reply];
    if (reply.status !== Status.ok || reply.value.length !== 8) throw statusError('incrementing the generation', route, reply);
    this.#seen.set(route.channel, Number(reply.value.readBigUInt64BE(0) % GENERATION_MODULUS));
  }

  /** Creates the counter if it is missing (at a random generation) and returns the current flags. */
  async #create(route: Route): Promise<number> {
    const initial = Buffer.from(randomGeneration().toString(), 'latin1');
    const [added, current] = (await route.channel.send([requests.add(route.generationKey, initial, 0, 0), this.read(route)])) as [
      Reply,
      Reply,
    ];
    if (added.status !== Status.ok && added.status !== Status.exists && added.status !== Status.notStored) {
      throw statusError('creating the generation', route, added);
    }
    const flags = this.observe(route, current);
    if (flags === undefined) throw statusError('reading the generation just created', route, current);
    return flags;
  }
}

function randomGeneration(): bigint {
  return BigInt(randomInt(0, Number(GENERATION_MODULUS)));
}
