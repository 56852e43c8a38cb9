/**
 * `npm run bench` (after the packages are built): runs the benchmark suites.
 *
 *   tsx tools/bench/run.ts [suite...] [--quick] [--concurrency N] [--rounds N] [--round-ms N] [--without-adapter] [--list]
 *
 * @module
 */
import { main, type Suite } from './harness/index.js';
import { codecSuite } from './suites/codec.js';
import { memorySuite } from './suites/memory.js';
import { memcachedSuite } from './suites/memcached.js';
import { mongoSuite } from './suites/mongo.js';
import { postgresSuite } from './suites/postgres.js';
import { redisSuite } from './suites/redis.js';
import { sqliteSuite } from './suites/sqlite.js';

const SUITES: readonly Suite[] = [codecSuite, memorySuite, redisSuite, memcachedSuite, mongoSuite, postgresSuite, sqliteSuite];

const code = await main(SUITES, process.argv.slice(2));
process.exitCode = code;
// Every suite closes what it opened; if a driver still holds the event loop, say so and leave.
setTimeout(() => {
  process.stderr.write('bench: open handles kept the process alive after the run; exiting\n');
  process.exit(code);
}, 3_000).unref();
