/**
 * Processes for the benchmark: run programs as the Postgres OS user, find a process tree,
 * kill it, and read CPU time and memory (with `@pgha/postgres`'s /proc reader).
 */
import { execa, type ResultPromise } from 'execa';
import { clockTicksPerSecond, descendantPids, isProcessAlive, postgresSpawnOptions, postmasterPid, processStat } from '@pgha/postgres';

/** Every process the benchmark started, ended at exit by PID. */
export const started = new Set<ResultPromise>();

/** Processes started by code the benchmark reuses (etcd members), ended at exit by PID too. */
export const startedPids = new Set<number>();

/**
 * Data directories whose postmaster a system starts outside the processes in {@link started}:
 * pgha's keepers and monitor start Postgres with `pg_ctl`, which detaches it (its parent is no
 * longer the keeper), so a process tree does not reach it. Ended at exit too
 * ({@link killStarted}).
 */
export const startedPgdata = new Set<string>();

/**
 * SIGKILL to every process the benchmark started and is still running: the trees of
 * {@link started}, {@link startedPids}, and the postmasters of {@link startedPgdata} (read
 * from each `postmaster.pid`). For an exit on Ctrl-C or an error, when no teardown ran.
 */
export function killStarted(): void {
  for (const p of started) if (p.pid) killAll(processTree(p.pid));
  killAll([...startedPids]);
  killAll([...startedPgdata].map((pgdata) => postmasterPid(pgdata)).filter((pid): pid is number => pid !== undefined));
}

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

/** `pid` and all its live descendants. */
export function processTree(pid: number): number[] {
  return [pid, ...descendantPids(pid)].filter((p) => isProcessAlive(p));
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

/** CPU time (user + system) of a process in ms, from /proc/PID/stat; 0 when it is gone. */
export function cpuMs(pid: number): number {
  const stat = processStat(pid);
  return stat ? (stat.cpuTicks * 1000) / clockTicksPerSecond : 0;
}
