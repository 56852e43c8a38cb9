/**
 * Throwaway MongoDB-wire server: `mongod` where installed, otherwise FerretDB 1.x
 * (SQLite backend) built from tools/ferretdb into tools/.bin/ferretdb.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getFreePort } from './free-port.js';
import { launchInTempDir, SingleServer, type SingleServerOptions } from './handle.js';
import { mongoPing } from './probe.js';
import { MissingBinaryError, which } from './which.js';

/** Which server implements the MongoDB wire protocol. */
export type MongoEngine = 'mongod' | 'ferretdb';

/** Options of {@link startMongo}. */
export interface MongoOptions {
  /** `auto` (default): mongod if on the PATH, else FerretDB. */
  readonly engine?: MongoEngine | 'auto';
  /**
   * FerretDB only: put FerretDB behind the wrapper's one-command-at-a-time proxy so
   * single-document writes are atomic as on MongoDB (default true; env
   * `LATCHKEY_FERRETDB_SERIALIZE=0` turns it off). See tools/ferretdb/main.go.
   */
  readonly serialize?: boolean;
  /** Port to use; default a free one. */
  readonly port?: number;
  /** Build (or bring up to date) tools/.bin/ferretdb when Go is available; default true. */
  readonly build?: boolean;
  /** Startup deadline; default 30 s. */
  readonly startTimeoutMs?: number;
}

/** Default startup deadline for mongod and FerretDB. */
export const MONGO_START_TIMEOUT_MS = 30_000;

const toolsDir = fileURLToPath(new URL('..', import.meta.url));
const DEFAULT_FERRETDB_BIN = join(toolsDir, '.bin', 'ferretdb');
/** The FerretDB binary: `LATCHKEY_FERRETDB_BIN`, else tools/.bin/ferretdb (built by build-ferretdb.sh). */
export const FERRETDB_BIN = process.env['LATCHKEY_FERRETDB_BIN'] ?? DEFAULT_FERRETDB_BIN;
const BUILD_SCRIPT = join(toolsDir, 'test-servers', 'build-ferretdb.sh');

/** A running mongod or FerretDB. */
export class MongoServer extends SingleServer {
  /** Use {@link startMongo}. */
  constructor(
    options: SingleServerOptions,
    /** Which server it is. */
    readonly engine: MongoEngine,
  ) {
    super(options);
  }
}

function goAvailable(): boolean {
  return which('go') !== undefined || existsSync('/usr/local/go/bin/go');
}

/**
 * Builds tools/.bin/ferretdb with build-ferretdb.sh; a quick no-op when it is newer than
 * its sources. The script's output goes to this process's stderr.
 *
 * @param quiet - Print nothing when it is up to date.
 * @throws When the script fails.
 */
export function buildFerretDB(quiet = false): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [BUILD_SCRIPT, ...(quiet ? ['--quiet'] : [])], {
      stdio: ['ignore', process.stderr, process.stderr],
    });
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${BUILD_SCRIPT} failed (code ${code}, signal ${signal})`)),
    );
  });
}

async function resolveEngine(options: MongoOptions): Promise<{ engine: MongoEngine; command: string }> {
  const wanted = options.engine ?? 'auto';
  if (wanted !== 'ferretdb') {
    const mongod = which('mongod');
    if (mongod !== undefined) return { engine: 'mongod', command: mongod };
    if (wanted === 'mongod') throw new MissingBinaryError('mongod', 'install MongoDB, or use the FerretDB engine');
  }
  // Our own build is kept in step with tools/ferretdb whenever Go is here (a no-op when
  // up to date); a binary named by LATCHKEY_FERRETDB_BIN is used as it is.
  if (FERRETDB_BIN === DEFAULT_FERRETDB_BIN && options.build !== false && goAvailable()) {
    if (!existsSync(FERRETDB_BIN)) {
      process.stderr.write(`test-servers: building FerretDB into ${FERRETDB_BIN} (a cold build takes about 2 min)…\n`);
    }
    try {
      await buildFerretDB(true);
    } catch (error) {
      if (!existsSync(FERRETDB_BIN)) throw error;
      console.warn(`test-servers: could not rebuild FerretDB, using the existing binary: ${(error as Error).message}`);
    }
  }
  if (!existsSync(FERRETDB_BIN)) {
    throw new MissingBinaryError(
      'mongod or FerretDB',
      `no mongod on PATH and no ${FERRETDB_BIN}; install Go (/usr/local/go) and run tools/test-servers/build-ferretdb.sh`,
    );
  }
  return { engine: 'ferretdb', command: FERRETDB_BIN };
}

/**
 * Starts a MongoDB-wire server on a free loopback port in a fresh temp dir and waits
 * until it answers `ping`. Uses `mongod` when installed; otherwise FerretDB with its
 * SQLite backend (telemetry off), building it first if needed.
 *
 * @param options - Engine choice, FerretDB serialisation, port, deadline.
 * @returns Its handle; `url` is `mongodb://127.0.0.1:P/`; `engine` says which server it is.
 * @throws {@link MissingBinaryError} when neither mongod nor FerretDB (nor Go to build it) exists.
 */
export async function startMongo(options: MongoOptions = {}): Promise<MongoServer> {
  const { engine, command } = await resolveEngine(options);
  const port = options.port ?? (await getFreePort());
  const serialize = options.serialize ?? process.env['LATCHKEY_FERRETDB_SERIALIZE'] !== '0';
  return launchInTempDir(engine, (dir) => {
    const args =
      engine === 'mongod'
        ? [
            '--port',
            String(port),
            '--bind_ip',
            '127.0.0.1',
            '--dbpath',
            dir,
            '--nounixsocket',
            '--quiet',
            '--wiredTigerCacheSizeGB',
            '0.25',
            '--setParameter',
            'diagnosticDataCollectionEnabled=false',
          ]
        : ['--listen-addr', `127.0.0.1:${port}`, '--state-dir', join(dir, 'data'), `--serialize=${serialize}`];
    return new MongoServer(
      {
        kind: 'mongo',
        port,
        url: `mongodb://127.0.0.1:${port}/`,
        dir,
        label: `${engine} 127.0.0.1:${port}`,
        startTimeoutMs: options.startTimeoutMs ?? MONGO_START_TIMEOUT_MS,
        spec: { command, args, cwd: dir, logFile: join(dir, `${engine}.log`) },
        ready: () => mongoPing('127.0.0.1', port),
      },
      engine,
    );
  });
}
