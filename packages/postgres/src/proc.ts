/**
 * The one reader of `/proc` (Linux's process table): whether a process lives, its command line,
 * working directory, parent, state, CPU time, start time and memory, and a process's descendants. Used
 * by the pid files, `postmasterPid`, the CLI, the benchmark and the tests' process helpers. Every
 * function answers for a process that is gone (undefined, false, []) instead of throwing.
 * Source: proc(5); Postgres's `postmaster.pid` check (`kill(pid, 0)`), pg_autoctl's
 * `pidfile.c`, psutil's `Process.status()`/`cmdline()`/`create_time()` (what Patroni uses).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** A process's line of `/proc/PID/stat`, the fields pgha uses (proc(5) numbers them from 1). */
export interface ProcessStat {
  pid: number;
  /** Field 3: `R` running, `S` sleeping, `D` disk wait, `Z` zombie, `T` stopped, … */
  state: string;
  /** Field 4: parent PID. */
  ppid: number;
  /** Fields 14 + 15, `utime + stime`: CPU time of the process itself, in clock ticks (see {@link clockTicksPerSecond}). */
  cpuTicks: number;
  /** Fields 16 + 17, `cutime + cstime`: CPU time of its children that exited and were waited for, in clock ticks. */
  childCpuTicks: number;
  /** Field 22, `starttime`: when it started, in clock ticks after boot; with the PID, names one process even across PID reuse. */
  startTicks: number;
}

/**
 * Clock ticks per second (`sysconf(_SC_CLK_TCK)`), the unit of {@link ProcessStat}'s times: 100
 * on every Linux architecture Node runs on (the kernel's `USER_HZ`, fixed by its ABI).
 */
export const clockTicksPerSecond = 100;

/**
 * `/proc/PID/stat` of `pid`, or undefined when it is gone (or there is no `/proc`). The command
 * name in parentheses may hold spaces and parentheses, so fields are counted after its last `)`.
 *
 * ### Examples
 * ```ts
 * processStat(process.pid)?.state // 'R'
 * processStat(999_999_999)       // undefined
 * ```
 */
export function processStat(pid: number): ProcessStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // After ") ": field 3 (state) is f[0], so field N is f[N - 3].
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return {
    pid,
    state: f[0] ?? '',
    ppid: Number(f[1]),
    cpuTicks: Number(f[11]) + Number(f[12]),
    childCpuTicks: Number(f[13]) + Number(f[14]),
    startTicks: Number(f[19]),
  };
}

/**
 * True when `pid` runs: it answers `kill(pid, 0)` (EPERM, another user's process, counts) and
 * is not a zombie (a killed postmaster can linger as one until its adoptive parent reaps it).
 * Without `/proc`, `kill(0)` alone decides.
 */
export function isProcessAlive(pid: number | undefined): boolean {
  if (pid === undefined || !Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = processStat(pid);
  return stat === undefined || stat.state !== 'Z';
}

/** The command line (`argv`) of `pid`, from `/proc/PID/cmdline`; undefined when it is gone. */
export function processCommandLine(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return undefined;
  }
}

/** The working directory of `pid` (`/proc/PID/cwd`); undefined when it is gone or another user's. */
export function processCwd(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}

/** The command name (`/proc/PID/comm`, at most 15 bytes) of `pid`; '' when it is gone. */
export function processName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/**
 * Current and peak resident memory of `pid` in bytes (`VmRSS`, `VmHWM` of `/proc/PID/status`);
 * undefined when it is gone.
 */
export function processMemory(pid: number): { rssBytes: number; peakRssBytes: number } | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rssBytes: kb('VmRSS'), peakRssBytes: kb('VmHWM') };
}

/** Every process in `/proc` now, with its stat line (those that end meanwhile are left out). */
export function allProcesses(): ProcessStat[] {
  const out: ProcessStat[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = processStat(Number(entry));
    if (stat) out.push(stat);
  }
  return out;
}

/**
 * The PIDs of every live descendant of `pid` (children, their children, …), parents before
 * their children: a postmaster's backends, a browser's helpers.
 */
export function descendantPids(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const p of allProcesses()) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p.pid]);
  const out: number[] = [];
  for (let i = -1; i < out.length; i++) out.push(...(children.get(i < 0 ? pid : out[i]!) ?? []));
  return out;
}
