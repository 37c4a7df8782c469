/**
 * The keeper's pid file, `<pgdata>.pgha/keeper.pid` (0644: `pgha keeper status` works for any
 * user that can read the directory): one keeper per data directory, and the process that
 * `pgha keeper stop|reload|status` signal. Written when `keeper run` starts, removed when it
 * exits cleanly. A file left by a keeper that died is stale: its pid no longer runs, or runs a
 * program that is not `pgha keeper run` for this data directory (the pid was reused).
 * Source: Postgres's `postmaster.pid`, pg_autoctl's `pg_autoctl.pid`.
 */
import { closeSync, fchmodSync, openSync, readFileSync, readlinkSync, rmSync, writeSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { ConflictError } from '@pgha/shared';
import { ensurePghaDir, pghaDirFor, sameDirectory } from './keeper-config.js';
import { isProcessAlive } from './postgres/pg-ctl.js';

/** Path of the keeper's pid file for `pgdata`. */
export function keeperPidFile(pgdata: string): string {
  return join(pghaDirFor(pgdata), 'keeper.pid');
}

/** What the pid file says. */
export type KeeperPidStatus =
  | { status: 'running'; pid: number }
  | { status: 'stale'; pid: number | undefined; reason: string }
  | { status: 'absent' };

/**
 * True when `argv` (a process's command line) is `… keeper run --pgdata DIR …` for `pgdata`,
 * DIR read relative to the process's working directory `cwd`. A relative DIR of a process
 * whose working directory cannot be read (`cwd` undefined) counts as a match: better refuse a
 * second keeper than run two.
 *
 * ### Examples
 * ```ts
 * isKeeperCommandLine(['/usr/bin/node', '/opt/pgha/bin/pgha.js', 'keeper', 'run', '--pgdata', 'data'], '/srv/pg/data', '/srv/pg') // true
 * ```
 */
export function isKeeperCommandLine(argv: readonly string[], pgdata: string, cwd: string | undefined): boolean {
  const at = argv.findIndex((a, i) => a === 'keeper' && argv[i + 1] === 'run');
  if (at < 0) return false;
  const rest = argv.slice(at + 2);
  const i = rest.indexOf('--pgdata');
  const dir = i >= 0 ? rest[i + 1] : rest.find((a) => a.startsWith('--pgdata='))?.slice('--pgdata='.length);
  if (dir === undefined) return false;
  if (cwd === undefined && !isAbsolute(dir)) return true;
  return sameDirectory(resolve(cwd ?? '/', dir), pgdata);
}

/** Why `pid` is not a live keeper of `pgdata`, or undefined when it is one. */
function notAKeeper(pid: number, pgdata: string): string | undefined {
  if (!isProcessAlive(pid)) return `pid ${pid} is not running`;
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return `pid ${pid} is not running`;
  }
  let cwd: string | undefined;
  try {
    cwd = readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    cwd = undefined; // another user's process: its working directory is not ours to read
  }
  return isKeeperCommandLine(argv, pgdata, cwd) ? undefined : `pid ${pid} runs something else (${argv.slice(0, 4).join(' ')})`;
}

/** Reads and checks the pid file of `pgdata`. Never throws. */
export function inspectKeeperPidFile(pgdata: string): KeeperPidStatus {
  let text: string;
  try {
    text = readFileSync(keeperPidFile(pgdata), 'utf8');
  } catch {
    return { status: 'absent' };
  }
  const pid = Number(text.split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return { status: 'stale', pid: undefined, reason: 'the file holds no pid' };
  if (pid === process.pid) return { status: 'running', pid };
  const reason = notAKeeper(pid, pgdata);
  return reason ? { status: 'stale', pid, reason } : { status: 'running', pid };
}

/**
 * Writes the pid file for this process (created exclusively, so two keepers starting at once
 * cannot both win), replacing a stale one.
 *
 * @returns the reason a stale file was replaced, or undefined.
 * @throws ConflictError when a keeper already runs for `pgdata`.
 */
export function acquireKeeperPidFile(pgdata: string): string | undefined {
  const path = keeperPidFile(pgdata);
  ensurePghaDir(pghaDirFor(pgdata));
  let replaced: string | undefined;
  for (;;) {
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o644);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const seen = inspectKeeperPidFile(pgdata);
      if (seen.status === 'running') {
        throw new ConflictError(`a keeper already runs for ${resolve(pgdata)} (pid ${seen.pid}, pid file ${path})`, {
          hint: `see it with: pgha keeper status --pgdata ${pgdata}; stop it with: pgha keeper stop --pgdata ${pgdata}`,
        });
      }
      if (replaced !== undefined) throw new ConflictError(`another keeper took ${path} while this one replaced a stale pid file`, { hint: `see it with: pgha keeper status --pgdata ${pgdata}` });
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

/** Removes the pid file if it is this process's. */
export function releaseKeeperPidFile(pgdata: string): void {
  const seen = inspectKeeperPidFile(pgdata);
  if (seen.status === 'running' && seen.pid === process.pid) rmSync(keeperPidFile(pgdata), { force: true });
}
