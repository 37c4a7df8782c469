/**
 * Wrappers around the PostgreSQL server programs (`postgres`, `initdb`, `pg_ctl`,
 * `pg_basebackup`, `pg_rewind`, `pg_controldata`), run as the Postgres OS user. Each throws
 * `PostgresCommandError` (argv, exit code, stderr tail) when the program fails.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PghaError, PostgresCommandError, formatDurationMs, type Lsn } from '@pgha/shared/base';
import { chownToPostgres, postgresSpawnOptions } from './os-user.js';
import { isProcessAlive } from './proc.js';
import { readFileText } from './file-text.js';
import { pollUntil } from './poll.js';
import { loadPgDriver } from './pg-connection.js';
import { SHUTDOWN_CLUSTER_STATES, readClusterState, readShutdownCheckpointLsn } from './controldata.js';

const DEFAULT_BIN_DIRS = ['/usr/lib/postgresql/15/bin', '/usr/local/pgsql/bin'];

/**
 * Directory of the Postgres 15 server programs: `PGHA_PG_BINDIR`, else the Debian location.
 *
 * @throws PghaError `PGHA_ERR_CONFIG` when none is found.
 */
export function pgBinDir(): string {
  const fromEnv = process.env.PGHA_PG_BINDIR;
  if (fromEnv) return fromEnv;
  const found = DEFAULT_BIN_DIRS.find((d) => existsSync(join(d, 'pg_ctl')));
  if (!found) {
    throw new PghaError('PGHA_ERR_CONFIG', 'PostgreSQL 15 server programs not found in /usr/lib/postgresql/15/bin', {
      hint: 'install them with: apt-get install -y postgresql-15 (or set PGHA_PG_BINDIR)',
    });
  }
  return found;
}

/** Options of {@link runPgProgram}. */
export interface RunOptions {
  /** Kill the program after this many milliseconds. */
  timeoutMs?: number;
  /** Called with each line of stderr, e.g. for progress. */
  onStderrLine?: (line: string) => void;
  /** What the program reads on stdin (a psql script); none when absent. */
  input?: string;
}

/**
 * Runs one Postgres program from {@link pgBinDir} as the Postgres OS user, in the clean
 * environment of {@link postgresSpawnOptions} (nothing inherited from pgha's own), with execa,
 * loaded at the first program rather than when the module is (execa is about a hundred modules,
 * which a keeper's start paid before its first report; issue 17 §5).
 *
 * @returns its stdout, without its final newline.
 * @throws PostgresCommandError when it exits non-zero or times out.
 */
export async function runPgProgram(program: string, args: string[], options: RunOptions = {}): Promise<string> {
  const { execa } = await import('execa');
  const spawn = postgresSpawnOptions();
  const argv = [join(pgBinDir(), program), ...args];
  const child = execa(argv[0]!, args, {
    ...spawn,
    env: spawn.env,
    extendEnv: false,
    reject: false,
    ...(options.input === undefined ? { stdin: 'ignore' as const } : { input: options.input }),
    timeout: options.timeoutMs,
    // pg_ctl start leaves the postmaster running with our pipes: do not wait on them.
    buffer: true,
  });
  if (options.onStderrLine && child.stderr) {
    let rest = '';
    child.stderr.on('data', (chunk: Buffer) => {
      const lines = (rest + chunk.toString()).split(/[\r\n]/);
      rest = lines.pop() ?? '';
      for (const l of lines) if (l.trim()) options.onStderrLine!(l);
    });
  }
  const result = await child;
  if (result.exitCode !== 0 || result.timedOut) {
    const why = result.timedOut ? `\n(timed out after ${options.timeoutMs} ms${result.signal ? `; killed by ${result.signal}` : ''})` : result.signal ? `\n(killed by ${result.signal})` : '';
    throw new PostgresCommandError([program, ...args], result.exitCode, `${result.stdout}\n${result.stderr}${why}`);
  }
  return result.stdout;
}

/** True when `pgdata` holds a Postgres data directory (`PG_VERSION` present). */
export function isPgData(pgdata: string): boolean {
  return existsSync(join(pgdata, 'PG_VERSION'));
}

/** True when `dir` is missing or empty. */
export function isEmptyOrMissing(dir: string): boolean {
  if (!existsSync(dir)) return true;
  return readdirSync(dir).length === 0;
}

/**
 * PID of the running postmaster of `pgdata`, from the first line of `postmaster.pid`, when that
 * process lives and is not a zombie ({@link isProcessAlive}); undefined otherwise. The one
 * reader of `postmaster.pid`'s PID: the keeper, the monitor, the CLI, the benchmark and the
 * tests use it. Source: Postgres's `pg_ctl status` (`get_pgpid` + `postmaster_is_alive`).
 */
export function postmasterPid(pgdata: string): number | undefined {
  let text: string | undefined;
  try {
    text = readFileText(join(pgdata, 'postmaster.pid'));
  } catch {
    return undefined;
  }
  if (text === undefined) return undefined;
  const pid = Number(text.split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 && isProcessAlive(pid) ? pid : undefined;
}

/** Runs `initdb` for a new data directory (UTF-8, local trust, host scram-sha-256). */
export async function initdb(pgdata: string): Promise<void> {
  await runPgProgram('initdb', [
    '--pgdata', pgdata,
    '--username', 'postgres',
    '--encoding', 'UTF8',
    '--locale', 'C.UTF-8',
    '--auth-local', 'trust',
    '--auth-host', 'scram-sha-256',
    '--no-instructions',
  ], { timeoutMs: 120_000 });
}

/** How often {@link startPostgres} looks whether the postmaster it started is ready (ms). */
const START_POLL_INTERVAL_MS = 5;

/**
 * The postmaster's status in `postmaster.pid` (its 8th line, `PM_STATUS_*`) once it accepts
 * connections: as a primary (`ready`), or as a hot standby that has reached a consistent state
 * (`standby`). What `pg_ctl start --wait` waits for.
 */
const READY_STATUSES: ReadonlySet<string> = new Set(['ready', 'standby']);

/**
 * Starts Postgres in `pgdata` and waits until it accepts connections, as `pg_ctl start --wait`
 * does, but looking every {@link START_POLL_INTERVAL_MS} where pg_ctl looks every 100 ms
 * (`WAITS_PER_SEC` in pg_ctl.c), and without a pg_ctl process: the postmaster is spawned
 * directly as the Postgres OS user, in a session of its own (`setsid`, as pg_ctl does), stdin
 * from /dev/null and its output appended to `logFile`. It is ready when `postmaster.pid` names
 * it with the status `ready` or `standby`. The postmaster is detached from us, so it outlives a
 * crashed keeper (a keeper crash must not stop writes); while the caller lives, Node reaps it
 * when it exits. Issue 17 §5: a rejoining standby's start waited out 50 ms of pg_ctl's poll on
 * average, and spawning pg_ctl cost more.
 *
 * @param logFile - server log path (created for the Postgres OS user when missing).
 * @param timeoutS - how long to wait for it to accept connections (s); it is left running after.
 * @throws PostgresCommandError when the postmaster exits before it is ready (its reason is in
 *   `logFile`) or cannot be spawned; PghaError `PGHA_ERR_TIMEOUT` when it is not ready within `timeoutS`.
 */
export async function startPostgres(pgdata: string, logFile: string, timeoutS = 60): Promise<void> {
  const argv = [join(pgBinDir(), 'postgres'), '-D', pgdata];
  const { uid, gid, cwd, env } = postgresSpawnOptions();
  const log = openSync(logFile, 'a', 0o600);
  let child: ChildProcess;
  try {
    chownToPostgres(logFile);
    child = spawn(argv[0]!, argv.slice(1), { uid, gid, cwd, env, detached: true, stdio: ['ignore', log, log] });
  } finally {
    closeSync(log);
  }
  let exited: { code: number | undefined; why: string } | undefined;
  child.once('error', (err) => (exited = { code: undefined, why: err.message }));
  child.once('exit', (code, signal) => (exited = { code: code ?? undefined, why: code === null ? `killed by ${signal}` : `exit code ${code}` }));
  child.unref();
  let driverLoaded = false;
  const ready = await pollUntil(() => {
    if (exited !== undefined || child.pid === undefined) return exited !== undefined;
    const status = postmasterStatus(pgdata, child.pid);
    // The caller's next step is a session to it: the driver (about 80 ms of CPU on Node 20, see
    // `loadPgDriver`) loads once the postmaster has started its startup process, which then
    // mostly waits on the fsync of the data directory and on its WAL, not while the postmaster
    // itself starts and needs the CPU.
    if (status !== undefined && !driverLoaded) {
      driverLoaded = true;
      loadPgDriver();
    }
    return status !== undefined && READY_STATUSES.has(status);
  }, { timeoutMs: timeoutS * 1000, intervalMs: START_POLL_INTERVAL_MS });
  if (exited !== undefined) throw new PostgresCommandError(['postgres', ...argv.slice(1)], exited.code, `the postmaster ended before it accepted connections (${exited.why}); see ${logFile}`);
  if (!ready) throw new PghaError('PGHA_ERR_TIMEOUT', `Postgres in ${pgdata} does not accept connections ${timeoutS} s after its start (it keeps running)`, { hint: `see its log, ${logFile}` });
}

/**
 * The status in `postmaster.pid` of `pgdata` (its 8th line: `starting` once the postmaster has
 * started its startup process, then `ready`, `standby` or `stopping`) when the file names `pid`
 * and has one; undefined otherwise.
 */
function postmasterStatus(pgdata: string, pid: number): string | undefined {
  const lines = readFileText(join(pgdata, 'postmaster.pid'))?.split('\n');
  const status = lines !== undefined && Number(lines[0]) === pid ? lines[7]?.trim() : undefined;
  return status ? status : undefined;
}

/** Restarts a running Postgres (`pg_ctl restart -m fast -w`), e.g. to apply a new port or socket directory. */
export async function pgCtlRestart(pgdata: string, logFile: string, timeoutS = 60): Promise<void> {
  await runPgProgram('pg_ctl', ['restart', '--pgdata', pgdata, '--mode', 'fast', '--wait', '--timeout', String(timeoutS), '--log', logFile, '--silent'], {
    timeoutMs: (timeoutS + 10) * 1000,
  });
}

/** The port a running postmaster listens on, from `postmaster.pid` (line 4). */
export function postmasterPort(pgdata: string): number | undefined {
  try {
    const port = Number(readFileSync(join(pgdata, 'postmaster.pid'), 'utf8').split('\n')[3]);
    return Number.isInteger(port) && port > 0 ? port : undefined;
  } catch {
    return undefined;
  }
}

/**
 * How often {@link pgCtlStop} looks whether the postmaster has exited (ms). `pg_ctl stop --wait`
 * looks every 100 ms (`WAITS_PER_SEC` in pg_ctl.c), which a switchover waited out in full: the
 * old primary's keeper reports it stopped, and only then is the standby promoted.
 */
const STOP_POLL_INTERVAL_MS = 5;

/**
 * Stops Postgres: a fast shutdown (SIGINT to the postmaster, what `pg_ctl stop -m fast` sends:
 * sessions are ended, new ones refused, a shutdown checkpoint written, and the WAL up to it sent
 * to the streaming standbys before the postmaster exits), waiting until the postmaster has
 * exited, looking every {@link STOP_POLL_INTERVAL_MS}; an immediate shutdown (`pg_ctl stop -m
 * immediate`) if it has not exited within `timeoutS`. Does nothing when it is not running.
 *
 * @throws PostgresCommandError when the postmaster still runs after the immediate shutdown.
 */
export async function pgCtlStop(pgdata: string, timeoutS = 10): Promise<void> {
  if (!(await startFastShutdown(pgdata))) return;
  if (await pollUntil(() => postmasterPid(pgdata) === undefined, { timeoutMs: timeoutS * 1000, intervalMs: STOP_POLL_INTERVAL_MS })) return;
  await runPgProgram('pg_ctl', ['stop', '--pgdata', pgdata, '--mode', 'immediate', '--wait', '--timeout', '30', '--silent']).catch((e) => {
    if (postmasterPid(pgdata) !== undefined) throw e;
  });
}

/**
 * Sends the postmaster of `pgdata` the fast-shutdown signal (SIGINT; `pg_ctl stop -m fast
 * --no-wait` when it cannot be signalled from here). A postmaster already shutting down ignores it.
 *
 * @returns false when no postmaster runs.
 */
async function startFastShutdown(pgdata: string): Promise<boolean> {
  const pid = postmasterPid(pgdata);
  if (pid === undefined) return false;
  try {
    process.kill(pid, 'SIGINT');
  } catch {
    // Exited meanwhile, or not ours to signal: pg_ctl decides.
    if (postmasterPid(pgdata) === undefined) return false;
    await runPgProgram('pg_ctl', ['stop', '--pgdata', pgdata, '--mode', 'fast', '--no-wait', '--silent']).catch(() => undefined);
  }
  return true;
}

/**
 * How long {@link stopWrites} waits for the shutdown checkpoint once Postgres takes no more
 * writes, by default (ms). With the CHECKPOINT a planned stop runs first, it takes 10–30 ms;
 * minutes only when that CHECKPOINT failed and much was left to write.
 */
export const SHUTDOWN_CHECKPOINT_WAIT_MS = 60_000;

/** Options of {@link stopWrites}. */
export interface StopWritesOptions {
  /** How long Postgres may take to end its sessions before an immediate shutdown (s); default 10. */
  timeoutS?: number;
  /** Then how long the shutdown checkpoint may take before the stop returns without it (ms); default {@link SHUTDOWN_CHECKPOINT_WAIT_MS}. */
  checkpointWaitMs?: number;
}

/** What {@link stopWrites} came to. */
export interface StopWritesResult {
  /**
   * Where the shutdown checkpoint starts, the end of the primary's WAL ({@link readShutdownCheckpointLsn});
   * undefined when the stop ended without one ({@link why}).
   */
  shutdownCheckpointLsn: Lsn | undefined;
  /**
   * Why there is no shutdown checkpoint, in words for the log (e.g. `the shutdown checkpoint was
   * not written within 60 s: the control file says shutting down`); undefined when there is one.
   */
  why?: string;
}

/**
 * Starts a fast shutdown of Postgres and returns once it takes no more writes and its shutdown
 * checkpoint is written: when its control file says `shut down` (or `shut down in recovery`),
 * or when the postmaster has exited. By then every session, background worker and autovacuum
 * process has exited (the postmaster asks the checkpointer for the shutdown checkpoint only
 * after that, and it accepts no session from the signal on), and nothing is written to the WAL
 * after the checkpoint, whose location the result carries. The rest goes on: the WAL up to the
 * checkpoint sent to the streaming standbys, and the postmaster's exit ({@link pgCtlStop}
 * waits for those). Looks every {@link STOP_POLL_INTERVAL_MS}. When Postgres has not stopped
 * taking writes (`shutting down`) within `timeoutS`, stops as {@link pgCtlStop} does
 * (immediate); when the checkpoint then is not written within `checkpointWaitMs`, returns
 * without it, the shutdown still going on. Source: PostgreSQL's `PostmasterStateMachine`
 * (`PM_WAIT_BACKENDS` → `PM_SHUTDOWN` → `PM_SHUTDOWN_2`, the walsenders' last WAL) and
 * `CreateCheckPoint` (`DB_SHUTDOWNING`, then `DB_SHUTDOWNED` with `checkPoint`).
 *
 * @returns where the shutdown checkpoint starts, or why there is none: Postgres was not running
 *   (and was not stopped cleanly before), crashed or was stopped immediately, or the checkpoint
 *   took too long.
 * @throws PostgresCommandError when the postmaster still runs after the immediate shutdown.
 *
 * ### Examples
 * ```ts
 * await stopWrites('/srv/pg/data') // { shutdownCheckpointLsn: 0x3000028n }
 * ```
 */
export async function stopWrites(pgdata: string, options: StopWritesOptions = {}): Promise<StopWritesResult> {
  const { timeoutS = 10, checkpointWaitMs = SHUTDOWN_CHECKPOINT_WAIT_MS } = options;
  const result = (how: string): StopWritesResult => {
    const at = readShutdownCheckpointLsn(pgdata);
    return at !== undefined ? { shutdownCheckpointLsn: at } : { shutdownCheckpointLsn: undefined, why: `${how}: the control file says ${readClusterState(pgdata) ?? 'nothing readable'}` };
  };
  if (!(await startFastShutdown(pgdata))) return result('Postgres was not running');
  const exited = (): boolean => postmasterPid(pgdata) === undefined;
  const noWrites = (): boolean => SHUTDOWN_CLUSTER_STATES.has(readClusterState(pgdata) ?? 'in production') || exited();
  if (!(await pollUntil(noWrites, { timeoutMs: timeoutS * 1000, intervalMs: STOP_POLL_INTERVAL_MS }))) {
    await pgCtlStop(pgdata, 0);
    return result(`Postgres still took writes ${timeoutS} s after the fast-shutdown signal and was stopped immediately`);
  }
  // The LSN rather than the state alone: a read while the checkpointer rewrites the file fails its CRC, and is tried again.
  const checkpointed = (): boolean => readShutdownCheckpointLsn(pgdata) !== undefined || readClusterState(pgdata) === 'shut down in recovery' || exited();
  if (!(await pollUntil(checkpointed, { timeoutMs: checkpointWaitMs, intervalMs: STOP_POLL_INTERVAL_MS }))) {
    return result(`the shutdown checkpoint was not written within ${formatDurationMs(checkpointWaitMs)}`);
  }
  return result('Postgres stopped without the shutdown checkpoint of a primary');
}
