// What a package's tests look like: inject the provided addresses, skip with a reason
// when a service is unavailable (or fail, with LATCHKEY_REQUIRE_SERVICES=1).
import { redisCommand, requireService } from '@latchkey/test-servers';
import { describe, expect, inject, it } from 'vitest';
// Probes the package does not export: this example also checks the servers themselves.
import { memcachedVersion } from '../memcached.js';
import { mongoPing } from '../probe.js';
import { redisPing } from '../redis.js';

function hostPort(s: string): [string, number] {
  const m = /^(?:[a-z]+:\/\/)?([^:/]+):(\d+)/.exec(s);
  if (m === null) throw new Error(`bad address ${s}`);
  return [m[1] as string, Number(m[2])];
}

const redisUrl = inject('redisUrl');
describe.runIf(requireService('example redis', redisUrl, inject('redisUnavailable')))('redis', () => {
  it('answers', async () => {
    expect(await redisPing(...hostPort(redisUrl as string))).toBe(true);
  });
});

const clusterNodes = inject('redisClusterNodes');
describe.runIf(requireService('example redis cluster', clusterNodes, inject('redisClusterUnavailable')))('redis cluster', () => {
  it('every node reports cluster_state:ok', async () => {
    for (const node of clusterNodes ?? []) {
      expect(await redisCommand(...hostPort(node), 'CLUSTER INFO')).toContain('cluster_state:ok');
    }
  });
});

const sentinels = inject('redisSentinels');
describe.runIf(requireService('example redis sentinel', sentinels, inject('redisSentinelUnavailable')))('redis sentinel', () => {
  it('knows the master', async () => {
    const [host, port] = hostPort(sentinels?.[0] ?? '');
    const reply = await redisCommand(host, port, `SENTINEL get-master-addr-by-name ${inject('redisSentinelMasterName') ?? ''}`);
    expect(reply.startsWith('*2\r\n')).toBe(true);
  });
});

const memcachedServers = inject('memcachedServers');
describe.runIf(requireService('example memcached', memcachedServers, inject('memcachedUnavailable')))('memcached', () => {
  it('answers', async () => {
    expect(await memcachedVersion(...hostPort(memcachedServers as string))).toBe(true);
  });
});

const pair = inject('memcachedPairServers');
describe.runIf(requireService('example memcached pair', pair, inject('memcachedPairUnavailable')))('memcached pair', () => {
  it('both answer', async () => {
    const servers = (pair as string).split(',');
    expect(servers).toHaveLength(2);
    for (const s of servers) expect(await memcachedVersion(...hostPort(s))).toBe(true);
  });
});

const mongoUrl = inject('mongoUrl');
describe.runIf(requireService('example mongo', mongoUrl, inject('mongoUnavailable')))('mongo', () => {
  it('answers ping', async () => {
    expect(['mongod', 'ferretdb', 'external']).toContain(inject('mongoEngine'));
    expect(await mongoPing(...hostPort(mongoUrl as string))).toBe(true);
  });
});
