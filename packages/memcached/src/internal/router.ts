import type { ServerChannel } from './channel.js';
import { HashRing } from './hash-ring.js';
import type { KeyScheme } from './keys.js';

/** Where one backend key lives: its server and the stored keys of its items. */
export interface Route {
  /** The backend key (as the backend received it). */
  readonly key: string;
  readonly channel: ServerChannel;
  readonly dataKey: string;
  readonly lockKey: string;
  /** The fence counter of the key's server. */
  readonly fenceKey: string;
  /** The value generation counter of the key's server. */
  readonly generationKey: string;
}

/**
 * Maps backend keys to servers: the stored data key picks the server on a ketama ring, and
 * the key's lock item and the server's fence counter go to the same server, so one server
 * restart loses a key's value, lock and fence together, never one without the others. The
 * server's generation counter lives there too, so a value and the generation it is checked
 * against are read and written on one connection, whose requests the server runs in order.
 */
export class Router {
  readonly #channels: readonly ServerChannel[];
  readonly #ring: HashRing;
  readonly #keys: KeyScheme;

  constructor(channels: readonly ServerChannel[], keys: KeyScheme) {
    this.#channels = channels;
    this.#ring = new HashRing(channels.map((channel) => channel.name));
    this.#keys = keys;
  }

  route(key: string): Route {
    const dataKey = this.#keys.dataKey(key);
    const channel = this.#channels[this.#ring.nodeFor(dataKey)] as ServerChannel;
    return {
      key,
      channel,
      dataKey,
      lockKey: this.#keys.lockKey(key),
      fenceKey: this.#keys.fenceKey(),
      generationKey: this.#keys.generationKey(),
    };
  }

  /**
   * A route to `channel`'s own counters (the generation counter stands as its data key), for
   * calls that address every server rather than one key.
   */
  serverRoute(channel: ServerChannel): Route {
    const generationKey = this.#keys.generationKey();
    return { key: generationKey, channel, dataKey: generationKey, lockKey: generationKey, fenceKey: this.#keys.fenceKey(), generationKey };
  }

  /** Groups routes by server, keeping input order within each group. */
  static byChannel(routes: readonly Route[]): Map<ServerChannel, Route[]> {
    const groups = new Map<ServerChannel, Route[]>();
    for (const route of routes) {
      const group = groups.get(route.channel);
      if (group === undefined) groups.set(route.channel, [route]);
      else group.push(route);
    }
    return groups;
  }
}
