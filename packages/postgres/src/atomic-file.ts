/**
 * The one way pgha writes a file that must survive a crash whole: its JSON files (configuration,
 * state, `up.json`), the files it owns in a data directory (`pgha.conf`, `pg_hba.conf`, the
 * pgpass file, TLS files), and secrets (the operator token, TLS keys).
 *
 * Why not the `write-file-atomic` package: it neither fsyncs the directory after the rename
 * (so a power loss can bring the old file back after pgha acted on the new one) nor sets a mode
 * regardless of the umask; this is the 20 lines Postgres itself uses (`durable_rename()` in
 * `fd.c`).
 */
import { closeSync, fchmodSync, fchownSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/** Mode and owner of a file written by {@link writeFileAtomic}. */
export interface AtomicWriteOptions {
  /** Permission bits, e.g. `0o600`; set with `fchmod`, so the umask narrows nothing. */
  mode: number;
  /** Owner of the new file (e.g. `postgresOsUser()`); undefined: the writing process's user. */
  owner?: { uid: number; gid: number } | undefined;
}

/**
 * Writes `content` to `path` atomically and durably: `<path>.pgha-new` is written with
 * `options.mode` and `options.owner`, fsynced, renamed over `path`, then the directory is
 * fsynced. A crash at any point leaves the old file or the new one, whole, never a torn or
 * empty one; once this returns, the new file survives a power loss. Readers never see a file
 * with another mode or owner than asked (the mode and owner are set before the rename).
 * The directory of `path` must exist.
 *
 * Source: Postgres's `durable_rename()` (`src/backend/storage/file/fd.c`); pg_autoctl writes
 * its state file the same way (`write_file` + `rename`).
 *
 * @throws the `fs` error (`ENOENT` for a missing directory, `EACCES`, `ENOSPC`…); the
 *   temporary file is removed then, and `path` is unchanged.
 *
 * ### Examples
 * ```ts
 * writeFileAtomic('/srv/pg/node1.pgha/auth-token', `${token}\n`, { mode: 0o600 });
 * writeFileAtomic(join(pgdata, 'pgha.conf'), text, { mode: 0o600, owner: postgresOsUser() });
 * ```
 */
export function writeFileAtomic(path: string, content: string | Uint8Array, options: AtomicWriteOptions): void {
  const tmp = `${path}.pgha-new`;
  try {
    const fd = openSync(tmp, 'w', options.mode);
    try {
      fchmodSync(fd, options.mode);
      if (options.owner) fchownSync(fd, options.owner.uid, options.owner.gid);
      const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
      for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  const dirFd = openSync(dirname(path), 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}
