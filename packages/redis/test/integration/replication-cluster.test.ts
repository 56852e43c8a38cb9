import { randomUUID } from 'node:crypto';
import { BackendUnavailableError, type Lease } from '@latchkey/core';
import { Cluster, Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  infoFields,
  type RedisReplicatedCluster,
  requireService,
  type SingleServer,
  startRedisClusterWithReplicas,
  which,
} from '@latchkey/test-servers';
import { clusterSlot } from '../../src/internal/cluster-slot.js';
import { KeyLayout } from '../../src/internal/key-layout.js';
import { RedisBackend } from '../../src/index.js';

const OPERATION_MS = 2_500;
const WAIT_MS = 1_000;
/** How late past a deadline a call may settle on this (shared, 2-core) machine. */
const MARGIN_MS = 700;

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

describe.runIf(requireService('RedisBackend replicated locks (Cluster)', which('redis-cli'), 'redis-cli not installed'))(
  'RedisBackend replicated locks: a Cluster of 3 primaries with a replica each',
  () => {
    let cluster: RedisReplicatedCluster;
    const opened: { close(): unknown }[] = [];

    beforeAll(async () => {
      cluster = await startRedisClusterWithReplicas();
    }, 120_000);

    afterEach(async () => {
      await Promise.all(opened.splice(0).map((item) => item.close()));
      for (const member of cluster.members) await member.resume();
      await cluster.waitUntilReplicated();
    }, 90_000);

    afterAll(async () => {
      await cluster?.stop();
    });

    const replicated = (keyPrefix: string): RedisBackend => {
      const backend = new RedisBackend({
        cluster: { nodes: cluster.nodes },
        keyPrefix,
        operationTimeoutMs: OPERATION_MS,
        lockReplication: { replicas: 1, timeoutMs: WAIT_MS },
      });
      opened.push(backend);
      return backend;
    };
    const prefix = (): string => `repl-${randomUUID().slice(0, 8)}:`;
    const slotOf = (keyPrefix: string, key: string): number => clusterSlot(new KeyLayout(keyPrefix).dataKey(key));
    /** The replica of the primary that serves `slot`. */
    const replicaOf = async (slot: number): Promise<SingleServer> => {
      const master = await cluster.masterOfSlot(slot);
      const view = await cluster.viewFrom(master as SingleServer);
      const masterId = view.find((n) => n.port === master?.port)?.id;
      const port = view.find((n) => !n.master && n.masterId === masterId)?.port;
      const replica = cluster.members.find((m) => m.port === port);
      if (replica === undefined) throw new Error(`slot ${slot} has no replica`);
      return replica;
    };
    /** Keys under `keyPrefix` whose slots the primary of `slot` serves, or does not. */
    const keysBy = async (keyPrefix: string, slot: number, count: number): Promise<{ same: string[]; other: string[] }> => {
      const owner = (await cluster.masterOfSlot(slot))?.port;
      const same: string[] = [];
      const other: string[] = [];
      for (let i = 0; same.length < count || other.length < count; i++) {
        const key = `k${i}`;
        const port = (await cluster.masterOfSlot(slotOf(keyPrefix, key)))?.port;
        if (port === owner) {
          if (same.length < count) same.push(key);
        } else if (other.length < count) other.push(key);
      }
      return { same, other };
    };

    it("sends a keyless command of a pipeline to the node of the pipeline's key, where WAIT must run", async () => {
      const admin = new Cluster(cluster.nodes.map((node) => ({ host: '127.0.0.1', port: Number(node.split(':')[1]) })));
      opened.push({ close: () => admin.disconnect() });
      const keyPrefix = prefix();
      for (let i = 0; i < 12; i++) {
        const key = new KeyLayout(keyPrefix).dataKey(`k${i}`);
        const results = await admin.pipeline().get(key).call('INFO', 'server').exec();
        const port = Number(infoFields(String(results?.[1]?.[1]))['tcp_port']);
        expect(port, `key ${key}`).toBe((await cluster.masterOfSlot(clusterSlot(key)))?.port);
      }
    });

    it("fails the acquires of a stalled replica's shard only, each within the deadline", async () => {
      const keyPrefix = prefix();
      const backend = replicated(keyPrefix);
      const { same, other } = await keysBy(keyPrefix, 0, 4);
      const granted = await Promise.all([...same, ...other].map((key) => backend.acquireLock(key, { leaseMs: 30_000, waitMs: 0 })));
      await Promise.all(granted.map((lease) => backend.releaseLock(lease as Lease)));
      const replica = await replicaOf(0);
      await replica.pause();
      for (const key of same) {
        const started = performance.now();
        const error = await backend.acquireLock(key, { leaseMs: 30_000, waitMs: 0 }).then(
          () => undefined,
          (reason: unknown) => reason,
        );
        const ms = performance.now() - started;
        expect(error, key).toBeInstanceOf(BackendUnavailableError);
        expect(ms, `${key} settled after ${ms} ms`).toBeLessThan(OPERATION_MS + MARGIN_MS);
      }
      for (const key of other) expect(await backend.acquireLock(key, { leaseMs: 30_000, waitMs: 0 }), key).toBeDefined();
    });

    it("acknowledges a locked write once the shard's replica has it", async () => {
      const keyPrefix = prefix();
      const backend = replicated(keyPrefix);
      const lease = (await backend.acquireLock('k', { leaseMs: 30_000, waitMs: 0 })) as Lease;
      expect(await backend.set('k', bytes('v'), { lease })).toBe('written');
      const replica = await replicaOf(slotOf(keyPrefix, 'k'));
      const reader = new Redis({ host: '127.0.0.1', port: replica.port });
      opened.push({ close: () => reader.disconnect() });
      await reader.call('READONLY');
      expect(await reader.get(new KeyLayout(keyPrefix).dataKey('k'))).toBe('v');
    });

    it('keeps a held lock across CLUSTER FAILOVER, and follows the redirection of its next locked write', { timeout: 90_000 }, async () => {
      const keyPrefix = prefix();
      const holder = replicated(keyPrefix);
      const lease = (await holder.acquireLock('k', { leaseMs: 60_000, waitMs: 0 })) as Lease;
      expect(await holder.set('k', bytes('before'), { lease })).toBe('written');
      const report = await cluster.failover(slotOf(keyPrefix, 'k'));
      expect(report.to).not.toBe(report.from);
      // The holder's slot map still names the old primary: the pipeline is redirected (MOVED).
      expect(await holder.set('k', bytes('after'), { lease })).toBe('written');
      const other = replicated(keyPrefix);
      expect(await other.acquireLock('k', { leaseMs: 1_000, waitMs: 0 })).toBeUndefined();
      expect(Array.from((await other.get('k')) ?? [])).toEqual(Array.from(bytes('after')));
      expect(await holder.releaseLock(lease)).toBe(true);
    });
  },
);
