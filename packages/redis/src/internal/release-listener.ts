import type { ReleaseConnection, ReleaseEvents } from '@latchkey/core';
import type { Redis } from 'ioredis';

/** The channels a backend hears releases on. */
export interface ReleaseChannels {
  /** Every backend's: releases that freed a lock (`<token> <dataKey>`). */
  readonly shared: string;
  /**
   * This backend's own (`<shared>@<waiter id>`): hand-overs to it, so a hand-over wakes the
   * one process it concerns instead of every subscriber.
   */
  readonly own: string;
}

/**
 * Redis's part of hearing releases, for the kit's `ReleaseListener`: a new subscriber
 * connection (from `connect`, which may pick another node each time) that `SUBSCRIBE`s to
 * both `channels` and reports each `<token> <dataKey>` message as the release of the stored
 * key `storedKeyOf` names (`undefined`: the data key cannot be told back, every waiter looks
 * again). A message whose first word starts with `@` is meant for one waiter alone (a lock
 * handed over to it; on the shared channel when the server found nobody on the waiter's own):
 * it is reported only when `forMe` (given that word and the data key) accepts it.
 */
export function subscribeToReleases(
  connect: () => Redis,
  channels: ReleaseChannels,
  storedKeyOf: (dataKey: string) => string | undefined,
  events: ReleaseEvents,
  forMe: (target: string, dataKey: string) => boolean = () => true,
): ReleaseConnection {
  const { shared, own } = channels;
  const subscriber = connect();
  // A connection error ends in 'close', which reports the loss; the error itself needs no handling.
  subscriber.on('error', () => undefined);
  subscriber.on('message', (from: string, message: string) => {
    if (from !== own && from !== shared) return;
    const space = message.indexOf(' ');
    if (space <= 0) return;
    const dataKey = message.slice(space + 1);
    if (message.startsWith('@') && !forMe(message.slice(0, space), dataKey)) return;
    events.released(storedKeyOf(dataKey));
  });
  subscriber.on('close', () => events.lost());
  return { ready: subscriber.subscribe(shared, own), close: () => subscriber.disconnect() };
}
