import { BackendUnavailableError } from '@latchkey/core';
import type { ChainableCommander, Cluster } from 'ioredis';
import { batchByNode, groupBySlot, type SlotGroup } from './slot-groups.js';

/** Queues the commands of one slot group on a node's pipeline. */
export type BatchAdd = (pipeline: ChainableCommander, group: SlotGroup) => unknown;
/** Reads the reply of one command of a slot group. */
export type BatchTake = (group: SlotGroup, reply: unknown) => void;

/**
 * A Cluster batch: the keys' slot groups, merged per node into one pipeline each (one command
 * per slot group), all pipelines in flight at once. `add` queues a group's commands; `take`
 * reads each command's reply.
 */
export async function sendClusterBatches(cluster: Cluster, dataKeys: readonly string[], add: BatchAdd, take: BatchTake): Promise<void> {
  const batches = batchByNode(groupBySlot(dataKeys), (slot) => cluster.slots[slot]?.[0]);
  await Promise.all(batches.map((batch) => sendBatch(cluster, batch, add, take)));
}

async function sendBatch(cluster: Cluster, batch: readonly SlotGroup[], add: BatchAdd, take: BatchTake): Promise<void> {
  const pipeline = cluster.pipeline();
  const owners: SlotGroup[] = [];
  for (const group of batch) {
    const before = pipeline.length;
    add(pipeline, group);
    for (let i = before; i < pipeline.length; i++) owners.push(group);
  }
  let replies: unknown[];
  try {
    replies = checkPipeline(await pipeline.exec());
  } catch (error) {
    // The slot map changed under us (resharding, failover): send each slot on its own, and
    // ioredis follows the redirection of a single-slot pipeline.
    if (batch.length > 1 && isRedirection(error)) {
      await Promise.all(batch.map((group) => sendBatch(cluster, [group], add, take)));
      return;
    }
    throw error;
  }
  replies.forEach((reply, i) => take(owners[i] as SlotGroup, reply));
}

function isRedirection(error: unknown): boolean {
  const message = error instanceof Error ? error.message : '';
  return message.startsWith('MOVED ') || message.startsWith('ASK ') || message.includes('same slots allocation group');
}

/** The replies of a pipeline, or its first error. */
export function checkPipeline(results: [error: Error | null, reply: unknown][] | null): unknown[] {
  if (results === null) throw new BackendUnavailableError('RedisBackend: the pipeline was discarded (connection lost).');
  return results.map(([error, reply]) => {
    if (error !== null) throw error;
    return reply;
  });
}
