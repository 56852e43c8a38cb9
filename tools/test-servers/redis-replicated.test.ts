import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isPortFree } from './free-port.js';
import { parseClusterNodes, startRedisClusterWithReplicas } from './redis-cluster-replicas.js';
import { startRedisReplicaSet } from './redis-replica-set.js';
import { requireService } from './require-service.js';
import { infoFields, respOk } from './resp.js';
import { which } from './which.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const role = async (port: number): Promise<string | undefined> => infoFields(await respOk(port, ['INFO', 'replication']))['role'];

describe('parseClusterNodes', () => {
  it('reads ids, ports, roles, failure flags and slot ranges', () => {
    const text = [
      'a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460 6000',
      'b2 127.0.0.1:7001@17001 slave a1 0 1700000000000 1 connected',
      'c3 127.0.0.1:7002@17002 master,fail - 0 0 2 disconnected 5461-10922 [12000->-d4]',
      '',
    ].join('\n');
    expect(parseClusterNodes(text)).toEqual([
      {
        id: 'a1',
        port: 7000,
        master: true,
        failing: false,
        masterId: undefined,
        slots: [
          [0, 5460],
          [6000, 6000],
        ],
      },
      { id: 'b2', port: 7001, master: false, failing: false, masterId: 'a1', slots: [] },
      { id: 'c3', port: 7002, master: true, failing: true, masterId: undefined, slots: [[5461, 10922]] },
    ]);
  });
});

describe.runIf(requireService('redis replica set tooling', which('redis-sentinel'), 'redis-sentinel not installed'))(
  'redis replica set',
  () => {
    it(
      'starts 1 primary, 2 replicas and 3 Sentinels, survives kill -9 and SENTINEL FAILOVER, and cleans up',
      { timeout: 120_000 },
      async () => {
        const set = await startRedisReplicaSet();
        const pids = [...set.nodes, ...set.sentinelServers].map((s) => s.pid);
        try {
          expect(set.nodes).toHaveLength(3);
          expect(set.sentinels).toHaveLength(3);
          const first = await set.primary();
          expect(await role(first.port)).toBe('master');
          for (const replica of await set.replicas()) expect(await role(replica.port)).toBe('slave');

          const killed = await set.killPrimary();
          expect(killed.from).toBe(first.port);
          expect(killed.to).not.toBe(first.port);
          expect((await set.primary()).port).toBe(killed.to);
          // The killed node came back as a replica of the new primary.
          expect(await role(first.port)).toBe('slave');
          expect(infoFields(await respOk(first.port, ['INFO', 'replication']))['master_port']).toBe(String(killed.to));

          const manual = await set.sentinelFailover();
          expect(manual.from).toBe(killed.to);
          expect(manual.to).not.toBe(killed.to);
          expect(await role(manual.from)).toBe('slave');
          expect(manual.settledAfterMs).toBeGreaterThanOrEqual(manual.promotedAfterMs);
        } finally {
          pids.push(...[...set.nodes, ...set.sentinelServers].map((s) => s.pid));
          await set.stop();
        }
        for (const pid of pids) expect(alive(pid), `pid ${pid} still alive`).toBe(false);
        expect(existsSync(set.dir)).toBe(false);
        for (const node of set.nodes) expect(await isPortFree(node.port)).toBe(true);
      },
    );
  },
);

describe.runIf(requireService('redis cluster with replicas tooling', which('redis-cli'), 'redis-cli not installed'))(
  'redis cluster with replicas',
  () => {
    it('starts 3 primaries with a replica each, survives CLUSTER FAILOVER and kill -9, and cleans up', { timeout: 120_000 }, async () => {
      const cluster = await startRedisClusterWithReplicas();
      const pids = cluster.members.map((m) => m.pid);
      try {
        expect(cluster.members).toHaveLength(6);
        const view = await cluster.viewFrom(cluster.members[0] as (typeof cluster.members)[number]);
        expect(view.filter((n) => n.master)).toHaveLength(3);
        expect(view.filter((n) => !n.master).every((n) => view.some((m) => m.master && m.id === n.masterId))).toBe(true);

        const first = await cluster.masterOfSlot(0);
        const manual = await cluster.failover(0);
        expect(manual.from).toBe(first?.port);
        expect((await cluster.masterOfSlot(0))?.port).toBe(manual.to);
        expect(await role(manual.from)).toBe('slave');

        const killed = await cluster.killMaster(0);
        expect(killed.from).toBe(manual.to);
        expect((await cluster.masterOfSlot(0))?.port).toBe(killed.to);
        expect(await role(killed.from)).toBe('slave');
      } finally {
        pids.push(...cluster.members.map((m) => m.pid));
        await cluster.stop();
      }
      for (const pid of pids) expect(alive(pid), `pid ${pid} still alive`).toBe(false);
      expect(existsSync(cluster.dir)).toBe(false);
    });
  },
);
