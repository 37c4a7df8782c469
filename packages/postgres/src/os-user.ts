/**
 * Postgres refuses to run as root. When pgha runs as root, every Postgres program runs as an
 * unprivileged OS user (default `postgres`, or `PGHA_PG_USER`) that owns the data directories.
 */
import { chownSync, mkdirSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname } from 'node:path';
import { PghaError } from '@pgha/shared/core';

/** uid/gid to run Postgres programs as; undefined when pgha itself is not root. */
export interface OsUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

let cached: OsUser | undefined | null = null;

/**
 * The OS user that runs Postgres when pgha is root, read from `/etc/passwd`.
 *
 * @returns undefined when the current process is not root (programs run as ourselves).
 * @throws PghaError `PGHA_ERR_CONFIG` when running as root and the user does not exist.
 */
export function postgresOsUser(): OsUser | undefined {
  if (cached !== null) return cached;
  if (process.getuid?.() !== 0) {
    cached = undefined;
    return cached;
  }
  const name = process.env.PGHA_PG_USER ?? 'postgres';
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[0] === name);
  if (!line) {
    throw new PghaError('PGHA_ERR_CONFIG', `pgha runs as root and the OS user "${name}" that should run Postgres does not exist`, {
      hint: 'install PostgreSQL 15 (apt-get install -y postgresql-15), which creates it, or set PGHA_PG_USER',
    });
  }
  const f = line.split(':');
  cached = { name, uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '/' };
  return cached;
}

/** `PATH` of the Postgres programs pgha runs (they are run by absolute path; this is for what they run themselves). */
export const POSTGRES_PROGRAM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Spawn options (`uid`, `gid`, `cwd`, `env`) that run a program as the Postgres OS user.
 *
 * The environment is built from nothing, never inherited: `PATH` ({@link POSTGRES_PROGRAM_PATH}),
 * the C.UTF-8 locale, and the identity of the user the program runs as (`HOME`, `USER`,
 * `LOGNAME`). No `PG*` variable reaches `initdb`, `pg_ctl` (hence the postmaster),
 * `pg_basebackup`, `pg_rewind` or `pg_controldata`: an operator's `PGSSLMODE`, `PGPORT`,
 * `PGOPTIONS`, `PGSERVICE` or `PGPASSFILE` would otherwise change what they connect to and how
 * (libpq reads them for every keyword its conninfo leaves out). Whatever a program needs is on
 * its command line or in its conninfo (`passfile`, `sslmode`, `connect_timeout`).
 */
export function postgresSpawnOptions(): { uid?: number; gid?: number; cwd: string; env: NodeJS.ProcessEnv } {
  const user = postgresOsUser();
  const base = { PATH: POSTGRES_PROGRAM_PATH, LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8' };
  if (!user) {
    const self = userInfo();
    return { cwd: '/', env: { ...base, HOME: self.homedir, USER: self.username, LOGNAME: self.username } };
  }
  return { uid: user.uid, gid: user.gid, cwd: '/', env: { ...base, HOME: user.home, USER: user.name, LOGNAME: user.name } };
}

/** Gives `path` to the Postgres OS user (no-op when not root). */
export function chownToPostgres(path: string): void {
  const user = postgresOsUser();
  if (user) chownSync(path, user.uid, user.gid);
}

/** Creates `dir` (and parents) if missing, with `mode`, owned by the Postgres OS user. */
export function ensureOwnedDir(dir: string, mode = 0o700): void {
  // Parents are created traversable (0755), so that the Postgres OS user can reach `dir`.
  mkdirSync(dirname(dir), { recursive: true, mode: 0o755 });
  mkdirSync(dir, { recursive: true, mode });
  chownToPostgres(dir);
}
