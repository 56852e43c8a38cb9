/**
 * Throwaway `memcached`.
 *
 * @module
 */
import { join } from 'node:path';
import { getFreePort } from './free-port.js';
import { DEFAULT_START_TIMEOUT_MS, launchInTempDir, SingleServer } from './handle.js';
import { tcpRequest } from './probe.js';
import { requireBinary } from './which.js';

/** Options of {@link startMemcached}. */
export interface MemcachedOptions {
  /** Maximum item size, passed as `-I` (e.g. `2m`); memcached's default is 1 MiB. */
  readonly itemSizeLimit?: string;
  /** Memory limit in MiB (`-m`); default 64. */
  readonly memoryMb?: number;
  /** Port to use; default a free one. */
  readonly port?: number;
  /** More memcached arguments. */
  readonly extraArgs?: readonly string[];
  /** Startup deadline; default 10 s. */
  readonly startTimeoutMs?: number;
}

/** `true` once `version` answers `VERSION …`. */
export async function memcachedVersion(host: string, port: number): Promise<boolean> {
  const reply = await tcpRequest(host, port, 'version\r\n', (buf) => buf.includes('\r\n'));
  return reply.toString('latin1').startsWith('VERSION ');
}

/**
 * Starts `memcached` (TCP only, loopback only) on a free port and waits until `version`
 * answers. When running as root it adds `-u root` (memcached refuses root otherwise).
 *
 * @param options - Item size limit, memory, port, extra arguments.
 * @returns Its handle; `url` is the memjs servers string `127.0.0.1:P`.
 * @throws {@link MissingBinaryError} when memcached is not installed.
 */
export async function startMemcached(options: MemcachedOptions = {}): Promise<SingleServer> {
  const command = requireBinary('memcached', 'apt-get install memcached, or run tools/ci-install-services.sh');
  const port = options.port ?? (await getFreePort());
  const args = ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-m', String(options.memoryMb ?? 64)];
  if (process.getuid?.() === 0) args.push('-u', 'root');
  if (options.itemSizeLimit !== undefined) args.push('-I', options.itemSizeLimit);
  args.push(...(options.extraArgs ?? []));
  return launchInTempDir(
    'memcached',
    (dir) =>
      new SingleServer({
        kind: 'memcached',
        port,
        url: `127.0.0.1:${port}`,
        dir,
        label: `memcached 127.0.0.1:${port}`,
        startTimeoutMs: options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
        spec: { command, args, cwd: dir, logFile: join(dir, 'memcached.log') },
        stopSignal: 'SIGKILL',
        ready: () => memcachedVersion('127.0.0.1', port),
      }),
  );
}
