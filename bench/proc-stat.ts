/*
 * CPU times of other processes, from /proc/PID/stat (Linux), for the parts of a benchmark that run outside
 * the measured collector: the Okta emulator and the sinks' servers.
 */
import { readFileSync } from 'node:fs';

/** /proc's CPU times are in clock ticks (USER_HZ), 100 a second on Linux. */
const TICK_MS = 10;

export interface ProcStat {
  ppid: number;
  /** The process's own user and system time (ms). */
  cpuMs: number;
  /** What its reaped children used, user and system (ms). */
  childrenCpuMs: number;
}

/** The process's stat line, or null when it has ended. */
export function procStat(pid: number): ProcStat | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The fields after the command's closing parenthesis (the command may hold spaces and parentheses):
  // state, ppid, ..., utime (12th), stime, cutime, cstime.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return {
    ppid: Number(f[1]),
    cpuMs: (Number(f[11]) + Number(f[12])) * TICK_MS,
    childrenCpuMs: (Number(f[13]) + Number(f[14])) * TICK_MS,
  };
}
