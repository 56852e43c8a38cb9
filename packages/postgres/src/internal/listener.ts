/**
 * PostgreSQL's part of hearing lock releases, for the kit's `ReleaseListener`.
 */

import type { ReleaseConnection, ReleaseEvents } from '@latchkey/core';
import type { Client, Notification } from 'pg';

/**
 * Connects `client` (new, unconnected), `LISTEN`s on `channel` and reports each
 * notification on it as the release of the stored key its payload names
 * (`pg_notify(channel, key)`). An error or the end of the connection is its loss.
 */
export function listenForReleases(client: Client, channel: string, events: ReleaseEvents): ReleaseConnection {
  client.on('notification', (message: Notification) => {
    if (message.channel === channel && message.payload !== undefined) events.released(message.payload);
  });
  const lost = (): void => events.lost();
  client.on('error', lost);
  client.on('end', lost);
  const ready = (async () => {
    await client.connect();
    await client.query(`LISTEN "${channel}"`);
  })();
  // A failed or late end changes nothing: the socket is gone either way.
  return { ready, close: () => void client.end().catch(noop) };
}

function noop(): void {}
