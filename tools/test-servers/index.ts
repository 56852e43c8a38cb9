/**
 * Throwaway real servers on free loopback ports for tests, fault tests and benchmarks: the
 * entry of the private workspace package `@latchkey/test-servers`, which vitest and tsx load
 * as TypeScript source.
 *
 * @module
 */
export { getFreePort, getFreeClusterPort, isPortFree } from './free-port.js';
export type { ServerHandle, ServerKind, SingleServer } from './handle.js';
export { redisCommand, tcpRequest } from './probe.js';
export { startRedis, type RedisOptions } from './redis.js';
export { startRedisCluster, RedisCluster, type RedisClusterOptions } from './redis-cluster.js';
export { startRedisSentinel, RedisSentinel, SENTINEL_MASTER_NAME, type RedisSentinelOptions } from './redis-sentinel.js';
export { startRedisReplicaSet, RedisReplicaSet, type FailoverReport, type RedisReplicaSetOptions } from './redis-replica-set.js';
export {
  startRedisClusterWithReplicas,
  RedisReplicatedCluster,
  parseClusterNodes,
  type ClusterNodeView,
  type RedisClusterWithReplicasOptions,
} from './redis-cluster-replicas.js';
export { respCommand, respOk, RespError, fieldsOf, infoFields, type RespValue } from './resp.js';
export { startMemcached, type MemcachedOptions } from './memcached.js';
export { startMongo, buildFerretDB, MongoServer, FERRETDB_BIN, type MongoEngine, type MongoOptions } from './mongo.js';
export { startPostgres, findPostgresBinaries, postgresPing, PostgresServer, POSTGRES_USER, type PostgresOptions } from './postgres.js';
export { createGlobalSetup, startServices, type StartedServices } from './global-setup.js';
export { requireService, servicesRequired } from './require-service.js';
export type { ServiceKind, TestServicesContext, ProvidedMongoEngine } from './provided-context.js';
export { MissingBinaryError, which } from './which.js';
