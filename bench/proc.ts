/**
 * CPU time of processes on this machine from /proc (Linux), and a container's
 * CPU and throttling from the engine's stats: enough to tell which hop of the
 * terminal path is busy during a benchmark.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type Docker from 'dockerode';

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** CPU seconds (user + system, all threads) a process has used, or NaN if it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

function pids(): number[] {
  try {
    return readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .map(Number);
  } catch {
    return [];
  }
}

function read(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** The Docker engine serving this machine: dockerd processes in our own PID namespace (not the sandboxes' inner ones). */
export function hostDockerdPids(): number[] {
  let ownNs = '';
  try {
    ownNs = readlinkSync('/proc/self/ns/pid');
  } catch {
    return [];
  }
  return pids().filter((pid) => {
    if (read(`/proc/${pid}/comm`).trim() !== 'dockerd') return false;
    try {
      return readlinkSync(`/proc/${pid}/ns/pid`) === ownNs;
    } catch {
      return false;
    }
  });
}

/** The containerd shim process of a container (its command line names the container id). */
export function shimPids(containerId: string): number[] {
  return pids().filter((pid) => read(`/proc/${pid}/comm`).startsWith('containerd-shim') && read(`/proc/${pid}/cmdline`).includes(containerId));
}

export function sumCpu(pidList: number[]): number {
  return pidList.reduce((n, pid) => n + (cpuSeconds(pid) || 0), 0);
}

export interface ContainerCpu {
  /** CPU seconds used by every process of the container. */
  seconds: number;
  /** CFS periods, those in which the container hit its CPU limit, and the time it was held back. */
  periods: number;
  throttledPeriods: number;
  throttledSeconds: number;
}

interface StatsJson {
  cpu_stats?: {
    cpu_usage?: { total_usage?: number };
    throttling_data?: { periods?: number; throttled_periods?: number; throttled_time?: number };
  };
}

export async function containerCpu(docker: Docker, containerId: string): Promise<ContainerCpu> {
  const s = (await docker.getContainer(containerId).stats({ stream: false })) as StatsJson;
  const c = s.cpu_stats ?? {};
  return {
    seconds: (c.cpu_usage?.total_usage ?? NaN) / 1e9,
    periods: c.throttling_data?.periods ?? NaN,
    throttledPeriods: c.throttling_data?.throttled_periods ?? NaN,
    throttledSeconds: (c.throttling_data?.throttled_time ?? NaN) / 1e9,
  };
}
