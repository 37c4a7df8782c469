/**
 * The pid files of pgha's services, `<pgdata>.pgha/keeper.pid` and `<pgdata>.pgha/monitor.pid`
 * (0644: `pgha keeper status` works for any user that can read the directory): one keeper, and
 * one monitor, per data directory, and the process that `pgha keeper stop|reload|status`
 * signal. Written when `keeper run` / `monitor run` starts, removed when it exits cleanly. A
 * file left by a process that died is stale: its pid no longer runs, or runs a program that is
 * not `pgha <service> run` for this data directory (the pid was reused).
 * Source: Postgres's `postmaster.pid`, pg_autoctl's `pg_autoctl.pid`.
 */
import { closeSync, fchmodSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { ConflictError } from '@pgha/shared/core';
import { ensurePghaDir, pghaDirFor, sameDirectory } from './pgha-files.js';
import { isProcessAlive, processCommandLine, processCwd } from './proc.js';

/** A pgha service that runs one process per data directory: `pgha keeper run`, `pgha monitor run`. */
export type PghaService = 'keeper' | 'monitor';

/** Path of the pid file of `service` for `pgdata`: `<pgdata>.pgha/<service>.pid`. */
export function pidFilePath(pgdata: string, service: PghaService): string {
  return join(pghaDirFor(pgdata), `${service}.pid`);
}

/** What a pid file says. */
export type PidFileStatus =
  | { status: 'running'; pid: number }
  | { status: 'stale'; pid: number | undefined; reason: string }
  | { status: 'absent' };

/**
 * True when `argv` (a process's command line) is `… <service> run --pgdata DIR …` for `pgdata`,
 * DIR read relative to the process's working directory `cwd`. A relative DIR of a process
 * whose working directory cannot be read (`cwd` undefined) counts as a match: better refuse a
 * second keeper or monitor than run two.
 *
 * ### Examples
 * ```ts
 * isServiceCommandLine(['/usr/bin/node', '/opt/pgha/bin/pgha.js', 'keeper', 'run', '--pgdata', 'data'], 'keeper', '/srv/pg/data', '/srv/pg') // true
 * isServiceCommandLine(['node', 'pgha', 'monitor', 'run', '--pgdata=/srv/m'], 'keeper', '/srv/m', '/') // false
 * ```
 */
export function isServiceCommandLine(argv: readonly string[], service: PghaService, pgdata: string, cwd: string | undefined): boolean {
  const at = argv.findIndex((a, i) => a === service && argv[i + 1] === 'run');
  if (at < 0) return false;
  const rest = argv.slice(at + 2);
  const i = rest.indexOf('--pgdata');
  const dir = i >= 0 ? rest[i + 1] : rest.find((a) => a.startsWith('--pgdata='))?.slice('--pgdata='.length);
  if (dir === undefined) return false;
  if (cwd === undefined && !isAbsolute(dir)) return true;
  return sameDirectory(resolve(cwd ?? '/', dir), pgdata);
}

/** Why `pid` is not a live `service` of `pgdata`, or undefined when it is one. */
function notTheService(pid: number, service: PghaService, pgdata: string): string | undefined {
  if (!isProcessAlive(pid)) return `pid ${pid} is not running`;
  const argv = processCommandLine(pid);
  if (argv === undefined) return `pid ${pid} is not running`;
  // undefined for another user's process: its working directory is not ours to read.
  const cwd = processCwd(pid);
  return isServiceCommandLine(argv, service, pgdata, cwd) ? undefined : `pid ${pid} runs something else (${argv.slice(0, 4).join(' ')})`;
}

/** Reads and checks the pid file of `service` for `pgdata`. Never throws. */
export function inspectPidFile(pgdata: string, service: PghaService): PidFileStatus {
  let text: string;
  try {
    text = readFileSync(pidFilePath(pgdata, service), 'utf8');
  } catch {
    return { status: 'absent' };
  }
  const pid = Number(text.split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return { status: 'stale', pid: undefined, reason: 'the file holds no pid' };
  if (pid === process.pid) return { status: 'running', pid };
  const reason = notTheService(pid, service, pgdata);
  return reason ? { status: 'stale', pid, reason } : { status: 'running', pid };
}

/** How to see or stop the running `service` of `pgdata` (pid `pid`), for hints. */
function stopHint(pgdata: string, service: PghaService, pid: number | undefined): string {
  return service === 'keeper'
    ? `see it with: pgha keeper status --pgdata ${pgdata}; stop it with: pgha keeper stop --pgdata ${pgdata}`
    : `one monitor runs per data directory; stop that one first (kill -TERM ${pid ?? '<pid>'}), or use it`;
}

/**
 * Writes the pid file of `service` for this process (created exclusively, so two processes
 * starting at once cannot both win), replacing a stale one.
 *
 * @returns the reason a stale file was replaced, or undefined.
 * @throws ConflictError when a `service` already runs for `pgdata` (the message names its pid).
 */
export function acquirePidFile(pgdata: string, service: PghaService): string | undefined {
  const path = pidFilePath(pgdata, service);
  ensurePghaDir(pghaDirFor(pgdata));
  let replaced: string | undefined;
  for (;;) {
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o644);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const seen = inspectPidFile(pgdata, service);
      if (seen.status === 'running') {
        throw new ConflictError(`a ${service} already runs for ${resolve(pgdata)} (pid ${seen.pid}, pid file ${path})`, { hint: stopHint(pgdata, service, seen.pid) });
      }
      if (replaced !== undefined) throw new ConflictError(`another ${service} took ${path} while this one replaced a stale pid file`, { hint: stopHint(pgdata, service, undefined) });
      replaced = seen.status === 'stale' ? seen.reason : 'it disappeared';
      rmSync(path, { force: true });
      continue;
    }
    try {
      fchmodSync(fd, 0o644);
      writeSync(fd, `${process.pid}\n`);
    } finally {
      closeSync(fd);
    }
    return replaced;
  }
}

/** Removes the pid file of `service` if it is this process's. */
export function releasePidFile(pgdata: string, service: PghaService): void {
  const seen = inspectPidFile(pgdata, service);
  if (seen.status === 'running' && seen.pid === process.pid) rmSync(pidFilePath(pgdata, service), { force: true });
}
