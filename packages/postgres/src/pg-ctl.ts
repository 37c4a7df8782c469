/**
 * Wrappers around the PostgreSQL server programs (`initdb`, `pg_ctl`, `pg_basebackup`,
 * `pg_rewind`, `pg_controldata`), run as the Postgres OS user. Each throws
 * `PostgresCommandError` (argv, exit code, stderr tail) when the program fails.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { PghaError, PostgresCommandError } from '@pgha/shared/base';
import { postgresSpawnOptions } from './os-user.js';
import { isProcessAlive } from './proc.js';
import { readFileText } from './file-text.js';
import { pollUntil } from './poll.js';
import { SHUTDOWN_CLUSTER_STATES, readClusterState } from './controldata.js';

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
}

/**
 * Runs one Postgres program from {@link pgBinDir} as the Postgres OS user, in the clean
 * environment of {@link postgresSpawnOptions} (nothing inherited from pgha's own).
 *
 * @returns its stdout.
 * @throws PostgresCommandError when it exits non-zero or times out.
 */
export async function runPgProgram(program: string, args: string[], options: RunOptions = {}): Promise<string> {
  const spawn = postgresSpawnOptions();
  const argv = [join(pgBinDir(), program), ...args];
  const child = execa(argv[0]!, args, {
    ...spawn,
    env: spawn.env,
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
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
    throw new PostgresCommandError([program, ...args], result.exitCode, `${result.stdout}\n${result.stderr}${result.timedOut ? '\n(timed out)' : ''}`);
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

/**
 * Starts Postgres with `pg_ctl start -w`. The postmaster is detached from us, so it outlives a
 * crashed keeper (a keeper crash must not stop writes).
 *
 * @param logFile - server log path (written by the Postgres OS user).
 */
export async function pgCtlStart(pgdata: string, logFile: string, timeoutS = 60): Promise<void> {
  await runPgProgram('pg_ctl', ['start', '--pgdata', pgdata, '--wait', '--timeout', String(timeoutS), '--log', logFile, '--silent'], {
    timeoutMs: (timeoutS + 10) * 1000,
  });
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
 * Starts a fast shutdown of Postgres and returns as soon as it takes no more writes: when its
 * control file says `shutting down` or `shut down` (the postmaster asks the checkpointer for the
 * shutdown checkpoint only once every session, background worker and autovacuum process has
 * exited, and it accepts no session from the signal on), or when the postmaster has exited.
 * The rest of the shutdown goes on: the checkpoint, the WAL up to it sent to the streaming
 * standbys, the exit ({@link pgCtlStop} waits for those). Looks every
 * {@link STOP_POLL_INTERVAL_MS}; after `timeoutS`, stops as {@link pgCtlStop} does (immediate).
 * Source: PostgreSQL's `PostmasterStateMachine` (`PM_WAIT_BACKENDS` → `PM_SHUTDOWN`) and
 * `CreateCheckPoint` (`DB_SHUTDOWNING`).
 *
 * @throws PostgresCommandError when the postmaster still runs after the immediate shutdown.
 */
export async function stopWrites(pgdata: string, timeoutS = 10): Promise<void> {
  if (!(await startFastShutdown(pgdata))) return;
  const done = (): boolean => {
    const state = readClusterState(pgdata);
    return (state !== undefined && SHUTDOWN_CLUSTER_STATES.has(state)) || postmasterPid(pgdata) === undefined;
  };
  if (await pollUntil(done, { timeoutMs: timeoutS * 1000, intervalMs: STOP_POLL_INTERVAL_MS })) return;
  await pgCtlStop(pgdata, 0);
}

