import { BackendTimeoutError, BackendUnavailableError, type Call } from '@latchkey/core';
import type { Cluster } from 'ioredis';
import type { ResolvedLockReplication } from '../redis-backend-options.js';
import { isCluster } from './clients.js';
import type { RedisClient } from './connection-gate.js';
import { runScript, type LuaScript } from './scripts.js';

/** What a script followed by `WAIT` answered. */
export interface Confirmed {
  /** The script's reply. */
  readonly reply: unknown;
  /** Replicas that acknowledged the script's writes (`WAIT`'s answer; 0 when `WAIT` itself failed). */
  readonly replicas: number;
}

/**
 * Runs `script` and `WAIT replicas timeoutMs` in one pipeline. One pipeline means one
 * connection — the one to the key's primary, on a Cluster too, where ioredis sends a
 * pipeline to the node of its keyed commands' slot and `WAIT` has no key — with nothing in
 * between, and `WAIT` counts the replicas that have every write this connection made so far,
 * so the script's writes included. Sent separately, a reconnect between the two would make
 * `WAIT` count a fresh connection's writes (none) and confirm at once.
 *
 * Redirections are followed here, since ioredis does not resend a pipeline whose other
 * command (`WAIT`) succeeded: after `NOSCRIPT` (a restarted or new primary) the script is
 * sent in full; after `MOVED` (a Cluster failover) the slot map is refreshed and the
 * pipeline sent again, once. Each step checks the call's deadline first.
 *
 * @throws the script's error reply (the script did not run), or {@link BackendUnavailableError}
 *   when the server lacks the script and too few replicas answer to make a new attempt worth it.
 */
export async function runConfirmed(
  client: RedisClient,
  script: LuaScript,
  args: readonly (string | Buffer)[],
  replication: ResolvedLockReplication,
  call: Call,
): Promise<Confirmed> {
  let full = false;
  let moved = false;
  for (;;) {
    const pipeline = client.pipeline();
    if (full) pipeline.eval(script.lua, script.keys, ...args);
    else pipeline.evalsha(script.sha, script.keys, ...args);
    pipeline.call('WAIT', String(replication.replicas), String(replication.timeoutMs));
    const results = await pipeline.exec();
    if (results === null) throw new BackendUnavailableError('RedisBackend: the pipeline was discarded (connection lost).');
    const [[scriptError, reply] = [null, undefined], [waitError, acknowledged] = [null, 0]] = results;
    if (scriptError === null) return { reply, replicas: waitError === null ? Number(acknowledged) : 0 };
    const message = scriptError.message;
    if (!full && message.startsWith('NOSCRIPT')) {
      // The script did not run; a WAIT already short of replicas would only repeat.
      if (waitError === null && Number(acknowledged) < replication.replicas) {
        throw new BackendUnavailableError(
          `RedisBackend: only ${Number(acknowledged)} of ${replication.replicas} replicas answered within ${replication.timeoutMs} ms; nothing was written.`,
          { cause: scriptError },
        );
      }
      full = true;
    } else if (!moved && isCluster(client) && message.startsWith('MOVED ')) {
      moved = true;
      await refreshSlots(client);
    } else {
      throw scriptError;
    }
    call.check();
  }
}

/** Resolves once ioredis has reloaded the Cluster's slot map (a refresh under way counts). */
function refreshSlots(cluster: Cluster): Promise<void> {
  return new Promise((resolve) => cluster.refreshSlotsCache(() => resolve()));
}

/** Why an acquire was not granted although the script took the lock: too few replicas have it. */
export function unconfirmedAcquire(replicas: number, replication: ResolvedLockReplication): BackendUnavailableError {
  return new BackendUnavailableError(
    `RedisBackend: acquireLock took the lock on the primary, but only ${replicas} of ${replication.replicas} replicas acknowledged it within ${replication.timeoutMs} ms, so it could be lost in a failover; the lock was given back.`,
  );
}

/** Why a lock change that happened on the primary is not reported as done: too few replicas have it. */
export function unconfirmedChange(what: string, replicas: number, replication: ResolvedLockReplication): BackendTimeoutError {
  return new BackendTimeoutError(
    `RedisBackend: ${what} happened on the primary, but only ${replicas} of ${replication.replicas} replicas acknowledged it within ${replication.timeoutMs} ms: it may or may not survive a failover.`,
    replication.timeoutMs,
  );
}

/**
 * Runs a lock script: as it is without `replication`; with it, followed by `WAIT`
 * ({@link runConfirmed}), rejecting with {@link unconfirmedChange} when the script changed
 * something (`changed(reply)`) that too few replicas acknowledged.
 */
export async function runLockScript(
  client: RedisClient,
  script: LuaScript,
  args: readonly (string | Buffer)[],
  options: { readonly replication: ResolvedLockReplication | undefined; readonly call: Call; readonly what: string },
  changed: (reply: unknown) => boolean,
): Promise<unknown> {
  const { replication, call, what } = options;
  if (replication === undefined) return runScript(client, script, args);
  const { reply, replicas } = await runConfirmed(client, script, args, replication, call);
  if (changed(reply) && replicas < replication.replicas) throw unconfirmedChange(what, replicas, replication);
  return reply;
}
