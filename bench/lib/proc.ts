/**
 * Processes for the benchmark: run programs as the Postgres OS user, find a process tree,
 * kill it, and read CPU time and memory from /proc.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { execa, type ResultPromise } from 'execa';
import { postgresSpawnOptions } from '@pgha/postgres';

/** Every process the benchmark started, ended at exit by PID. */
export const started = new Set<ResultPromise>();

/** Starts a long-running program (as the Postgres OS user when `asPostgres`), output to `logFile`. */
export function spawnLogged(file: string, args: string[], logFile: string, options: { asPostgres?: boolean; env?: Record<string, string> } = {}): ResultPromise {
  const spawn = options.asPostgres ? postgresSpawnOptions() : { cwd: '/', env: process.env };
  const proc = execa(file, args, {
    ...spawn,
    env: { ...spawn.env, ...options.env },
    extendEnv: false,
    stdin: 'ignore',
    stdout: { file: logFile, append: true },
    stderr: { file: logFile, append: true },
    reject: false,
  });
  started.add(proc);
  void proc.finally(() => started.delete(proc));
  return proc;
}

/** Runs a program to completion (as the Postgres OS user when `asPostgres`). @throws when it fails. */
export async function run(file: string, args: string[], options: { asPostgres?: boolean; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<string> {
  const spawn = options.asPostgres ? postgresSpawnOptions() : { cwd: '/', env: process.env };
  const r = await execa(file, args, { ...spawn, env: { ...spawn.env, ...options.env }, extendEnv: false, reject: false, stdin: 'ignore', timeout: options.timeoutMs ?? 300_000 });
  if (r.exitCode !== 0) throw new Error(`${file} ${args.join(' ')} failed (${r.exitCode}): ${String(r.stderr).slice(-800)}`);
  return String(r.stdout);
}

/** Parent PID of every live process. */
function parents(): Map<number, number> {
  const map = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      map.set(Number(entry), ppid);
    } catch {
      // gone
    }
  }
  return map;
}

/** `pid` and all its descendants. */
export function processTree(pid: number): number[] {
  const ppids = parents();
  const out = [pid];
  for (let i = 0; i < out.length; i++) for (const [child, parent] of ppids) if (parent === out[i]) out.push(child);
  return out.filter((p) => alive(p));
}

/** The command name of a process (`comm`). */
export function commOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** True when `pid` is a live process. */
export function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Sends SIGKILL to every given PID at once. */
export function killAll(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** CPU time (user + system) of a process in ms, from /proc/PID/stat. */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

/** Current and peak resident memory of a process in bytes, from /proc/PID/status. */
export function memory(pid: number): { rssBytes: number; peakRssBytes: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { rssBytes: kb('VmRSS'), peakRssBytes: kb('VmHWM') };
  } catch {
    return { rssBytes: 0, peakRssBytes: 0 };
  }
}

/** Polls `fn` until it returns something other than undefined/false, or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
