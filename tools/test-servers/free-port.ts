/**
 * Free loopback ports for throwaway servers.
 *
 * Ports are picked at random below the kernel's ephemeral range (where outgoing
 * connections take their local ports), so a port we hand out is unlikely to be taken
 * by a client socket between our check and the server's bind, or while a server is
 * down for a restart on the same port.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const LOOPBACK = '127.0.0.1';
/** Offset of a Redis Cluster node's bus port from its client port. */
export const CLUSTER_BUS_PORT_OFFSET = 10_000;

/** Ports handed out by this process, never handed out twice. */
const handedOut = new Set<number>();

/** The lower bound of the kernel's ephemeral port range (32768 when unknown). */
function ephemeralLow(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    const n = Number(low);
    return Number.isInteger(n) && n > 2048 ? n : 32_768;
  } catch {
    return 32_768;
  }
}

/**
 * Whether `port` can be bound on `host` right now.
 *
 * @param port - TCP port to try.
 * @param host - Address to bind; defaults to 127.0.0.1.
 */
export function isPortFree(port: number, host: string = LOOPBACK): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => {
      server.close(() => resolve(true));
    });
  });
}

/** A port the kernel picks (fallback when the random search fails). */
function kernelPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port: 0, host: LOOPBACK, exclusive: true }, () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('could not read the bound port'));
      });
    });
  });
}

async function search(low: number, high: number, extraOffset: number | undefined): Promise<number | undefined> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (handedOut.has(port)) continue;
    if (extraOffset !== undefined && handedOut.has(port + extraOffset)) continue;
    if (!(await isPortFree(port))) continue;
    if (extraOffset !== undefined && !(await isPortFree(port + extraOffset))) continue;
    handedOut.add(port);
    if (extraOffset !== undefined) handedOut.add(port + extraOffset);
    return port;
  }
  return undefined;
}

/**
 * A loopback TCP port that is free now and was not handed out before by this process.
 *
 * @returns A port in 12000 to the start of the ephemeral range (or a kernel-picked port
 *   if that range is exhausted).
 */
export async function getFreePort(): Promise<number> {
  const port = await search(12_000, ephemeralLow(), undefined);
  if (port !== undefined) return port;
  for (let attempt = 0; attempt < 20; attempt++) {
    const p = await kernelPort();
    if (!handedOut.has(p)) {
      handedOut.add(p);
      return p;
    }
  }
  throw new Error('no free loopback port found');
}

/**
 * A loopback port for a Redis Cluster node: the port and its cluster bus port
 * (port + 10000) are both free.
 */
export async function getFreeClusterPort(): Promise<number> {
  const high = Math.min(ephemeralLow(), 65_536) - CLUSTER_BUS_PORT_OFFSET;
  const port = await search(12_000, Math.max(high, 12_001), CLUSTER_BUS_PORT_OFFSET);
  if (port !== undefined) return port;
  throw new Error('no free loopback port pair (port and port + 10000) found for a Redis Cluster node');
}
