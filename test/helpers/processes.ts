/**
 * Processes started by tests, tracked by PID and ended in `afterAll`/`afterEach` even when a
 * test fails: pgha children, and the postmasters of every data directory a test used.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { isProcessAlive, pollUntil, postmasterPid } from '@pgha/postgres';
import { withMonitorCredentials } from './monitor-access.js';

/** The product's readers of `postmaster.pid` and of a process's descendants (`@pgha/postgres`), for tests. */
export { descendantPids, postmasterPid } from '@pgha/postgres';

/** The `pgha` entry point of this checkout. */
export const PGHA_BIN = fileURLToPath(new URL('../../packages/cli/bin/pgha.js', import.meta.url));

const started: ResultPromise[] = [];
const testDirs: string[] = [];

/** A fresh directory under the OS temp dir (reachable by the Postgres OS user), removed at cleanup. */
export function makeTestDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgha-test-'));
  chmodSync(dir, 0o755);
  testDirs.push(dir);
  return dir;
}
const pgdataDirs = new Set<string>();
/** Processes a product module started itself (etcd members), ended by PID. */
const trackedPids = new Set<number>();

/**
 * Remembers a process started outside {@link startTracked} (an etcd member), SIGKILLed by PID at
 * cleanup: its data is the test's and thrown away (etcd, crash-safe, takes 2 s to stop on SIGTERM).
 */
export function trackPid(pid: number): void {
  trackedPids.add(pid);
}

/**
 * The program and arguments that run `file args…`, inside network namespace `netns`
 * (`ip netns exec`, which execs the program: the PID is the program's own) when given.
 */
function inNetns(file: string, args: readonly string[], netns: string | undefined): [string, string[]] {
  return netns ? ['ip', ['netns', 'exec', netns, file, ...args]] : [file, [...args]];
}

/**
 * Starts `file args…` in the background, tracked and ended by PID in {@link endAllProcesses};
 * inside network namespace `netns` when given. stdout+stderr go to `logFile` if given; with
 * `pipeStdout`, stdout is readable from the returned process instead.
 */
export function startTracked(file: string, args: readonly string[], options: { logFile?: string; env?: Record<string, string>; netns?: string; pipeStdout?: boolean } = {}): ResultPromise {
  const [cmd, argv] = inNetns(file, args, options.netns);
  const log = options.logFile ? { file: options.logFile, append: true } : undefined;
  const proc = execa(cmd, argv, {
    reject: false,
    stdin: 'ignore',
    ...(options.pipeStdout ? { buffer: false } : {}),
    ...(options.pipeStdout ? { stdout: 'pipe' as const } : log ? { stdout: log } : {}),
    ...(log ? { stderr: log } : {}),
    env: { PGHA_LOG_LEVEL: 'info', ...options.env },
  });
  started.push(proc);
  return proc;
}

/** Variables every pgha process gets until {@link setPghaEnvironment} changes them (a test's own `env` wins). */
let pghaEnvironment: Record<string, string> = {};

/**
 * Gives every pgha process started from now on (by {@link startPgha}, {@link runPgha} and the
 * helpers built on them) these variables, e.g. a hostile `PG*` environment; `{}` to stop.
 */
export function setPghaEnvironment(env: Record<string, string>): void {
  pghaEnvironment = { ...env };
}

/** Starts `pgha ARGS…` in the background, tracked; see {@link startTracked} for the options. */
export function startPgha(args: string[], options: { logFile?: string; env?: Record<string, string>; netns?: string } = {}): ResultPromise {
  return startTracked(process.execPath, [PGHA_BIN, ...args], { ...options, env: withMonitorCredentials(args, { ...pghaEnvironment, ...options.env }) });
}

/** Runs `pgha ARGS…` to completion (inside network namespace `netns` when given) and returns exit code, stdout and stderr. */
export async function runPgha(args: string[], env: Record<string, string> = {}, options: { netns?: string } = {}): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const [cmd, argv] = inNetns(process.execPath, [PGHA_BIN, ...args], options.netns);
  const r = await execa(cmd, argv, { reject: false, stdin: 'ignore', env: withMonitorCredentials(args, { ...pghaEnvironment, ...env }), timeout: 300_000 });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Remembers a data directory whose postmaster must be gone at cleanup. */
export function trackPgdata(pgdata: string): void {
  pgdataDirs.add(pgdata);
}

/** Sends `signal` to `pid` if it lives. */
export function killPid(pid: number | undefined, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (isProcessAlive(pid)) process.kill(pid!, signal);
}

/**
 * Ends everything: SIGTERM to tracked pgha processes (they stop their Postgres), then SIGKILL
 * to whatever is left; then processes tracked by PID ({@link trackPid}), and postmasters of
 * tracked data directories.
 */
export async function endAllProcesses(): Promise<void> {
  for (const p of started) if (p.exitCode === null && p.pid) killPid(p.pid, 'SIGTERM');
  await pollUntil(() => !started.some((p) => isProcessAlive(p.pid) && p.exitCode === null), { timeoutMs: 20_000, intervalMs: 100 });
  for (const p of started) if (p.pid) killPid(p.pid, 'SIGKILL');
  await Promise.allSettled(started);
  started.length = 0;
  // After pgha's processes: a monitor stops while its etcd still answers.
  for (const pid of trackedPids) killPid(pid, 'SIGKILL');
  await pollUntil(() => ![...trackedPids].some((pid) => isProcessAlive(pid)), { timeoutMs: 10_000, intervalMs: 50 });
  trackedPids.clear();
  for (const dir of pgdataDirs) killPid(postmasterPid(dir), 'SIGKILL');
  // Postmasters' children exit when their postmaster dies; wait for the postmasters to go.
  await pollUntil(() => [...pgdataDirs].every((d) => postmasterPid(d) === undefined), { timeoutMs: 10_000, intervalMs: 100 });
  pgdataDirs.clear();
  if (!process.env.PGHA_KEEP_TEST_DIRS) for (const dir of testDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}
