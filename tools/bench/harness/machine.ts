/**
 * How busy the machine was while a suite ran, from Linux `/proc/stat` (other processes and the
 * hypervisor's steal time are what make a shared machine's figures noisy).
 *
 * @module
 */
import { readFileSync } from 'node:fs';

/** Cumulative CPU ticks of the whole machine. */
export interface CpuTicks {
  readonly total: number;
  readonly idle: number;
  readonly steal: number;
}

/** The machine's CPU ticks now, or `undefined` where `/proc/stat` does not exist. */
export function cpuTicks(): CpuTicks | undefined {
  let line: string | undefined;
  try {
    line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  } catch {
    return undefined;
  }
  const fields = line?.trim().split(/\s+/).slice(1).map(Number) ?? [];
  if (fields.length < 8 || fields.some((n) => !Number.isFinite(n))) return undefined;
  const [user, nice, system, idle, iowait, irq, softirq, steal] = fields as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return { total: user + nice + system + idle + iowait + irq + softirq + steal, idle: idle + iowait, steal };
}

/** Share of CPU time between two readings: busy (anyone, this process included) and stolen by the hypervisor. */
export function cpuShare(before: CpuTicks | undefined, after: CpuTicks | undefined): { busyPct: number; stealPct: number } | undefined {
  if (before === undefined || after === undefined) return undefined;
  const total = after.total - before.total;
  if (total <= 0) return undefined;
  return {
    busyPct: ((total - (after.idle - before.idle) - (after.steal - before.steal)) / total) * 100,
    stealPct: ((after.steal - before.steal) / total) * 100,
  };
}
