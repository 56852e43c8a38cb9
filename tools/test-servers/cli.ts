/**
 * Starts one throwaway server, prints how to reach it as JSON, and keeps it running until
 * SIGINT/SIGTERM (then stops it and removes its directory).
 *
 * Usage: `tsx tools/test-servers/cli.ts redis|redis-cluster|redis-sentinel|memcached|memcached-pair|mongo|postgres
 *   [--appendonly] [--item-size 2m] [--engine mongod|ferretdb] [--no-serialize]`
 *
 * @module
 */
import type { ServerHandle } from './handle.js';
import { startMemcached, type MemcachedOptions } from './memcached.js';
import { startMongo, type MongoOptions } from './mongo.js';
import { startPostgres } from './postgres.js';
import { startRedisCluster } from './redis-cluster.js';
import { startRedisSentinel } from './redis-sentinel.js';
import { startRedis } from './redis.js';

const USAGE =
  'usage: tsx tools/test-servers/cli.ts redis|redis-cluster|redis-sentinel|memcached|memcached-pair|mongo|postgres ' +
  '[--appendonly] [--item-size 2m] [--engine mongod|ferretdb] [--no-serialize]';

function describe(h: ServerHandle): Record<string, unknown> {
  const info: Record<string, unknown> = { kind: h.kind, url: h.url, host: h.host, port: h.port, pid: h.pid, dir: h.dir };
  if ('nodes' in h) info['nodes'] = h.nodes;
  if ('sentinels' in h) info['sentinels'] = h.sentinels;
  if ('masterName' in h) info['masterName'] = h.masterName;
  if ('engine' in h) info['engine'] = h.engine;
  return info;
}

async function main(argv: string[]): Promise<void> {
  const [kind, ...flags] = argv;
  const flag = (name: string): boolean => flags.includes(name);
  const value = (name: string): string | undefined => {
    const i = flags.indexOf(name);
    return i >= 0 ? flags[i + 1] : undefined;
  };
  let handles: ServerHandle[];
  let output: unknown;
  switch (kind) {
    case 'redis': {
      const h = await startRedis({ appendonly: flag('--appendonly') });
      handles = [h];
      output = describe(h);
      break;
    }
    case 'redis-cluster': {
      const h = await startRedisCluster();
      handles = [h];
      output = describe(h);
      break;
    }
    case 'redis-sentinel': {
      const h = await startRedisSentinel();
      handles = [h];
      output = { ...describe(h), masterUrl: h.master.url };
      break;
    }
    case 'memcached':
    case 'memcached-pair': {
      const size = value('--item-size');
      const opts: MemcachedOptions = size === undefined ? {} : { itemSizeLimit: size };
      handles = await Promise.all(kind === 'memcached' ? [startMemcached(opts)] : [startMemcached(opts), startMemcached(opts)]);
      output =
        kind === 'memcached'
          ? describe(handles[0] as ServerHandle)
          : { kind, servers: handles.map((h) => h.url).join(','), pids: handles.map((h) => h.pid) };
      break;
    }
    case 'mongo': {
      const engine = value('--engine');
      const opts: MongoOptions = {
        ...(engine === 'mongod' || engine === 'ferretdb' ? { engine } : {}),
        ...(flag('--no-serialize') ? { serialize: false } : {}),
      };
      const h = await startMongo(opts);
      handles = [h];
      output = describe(h);
      break;
    }
    case 'postgres': {
      const h = await startPostgres();
      handles = [h];
      output = describe(h);
      break;
    }
    default:
      console.error(USAGE);
      process.exit(2);
  }
  console.log(JSON.stringify(output));

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    void Promise.allSettled(handles.map((h) => h.stop())).then(() => {
      console.error(`stopped (${signal})`);
      process.exit(0);
    });
  };
  // Registered after the servers started, so these run after the test-servers exit hook
  // (which SIGKILLs children and removes their directories synchronously).
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  setInterval(() => undefined, 1 << 30); // keep the event loop alive
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
