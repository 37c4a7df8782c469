/**
 * Secret files: the monitor's operator token, TLS keys, pgpass. Written 0600 and read only
 * when nobody but their owner can read them (as ssh and libpq's pgpass do), so that a token
 * left world-readable is refused before it is used, not after it leaked. Also exported alone as
 * `@pgha/postgres/secrets`, for the CLI's start (issue 17 §4).
 */
import { closeSync, existsSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { PghaError } from '@pgha/shared/core';
import { writeFileAtomic } from './atomic-file.js';

/**
 * Writes `content` to a secret file with {@link writeFileAtomic}: mode 0600 whatever the umask,
 * owned by the writing user, fsynced, replacing any file there atomically (a crash never
 * leaves an empty token or a torn key). The directory must exist.
 *
 * @param mode - 0600 by default; 0644 for what is public (a CA certificate).
 */
export function writeSecretFile(path: string, content: string, mode = 0o600): void {
  writeFileAtomic(path, content, { mode });
}

/**
 * Reads a secret file that only its owner may read.
 *
 * @param what - what the file holds, for messages ("auth token").
 * @throws PghaError `PGHA_ERR_CONFIG` naming the file when it is missing, empty, or readable
 *   by group or others (hint: `chmod 600`).
 */
export function readSecretFile(path: string, what: string): string {
  if (!existsSync(path)) throw new PghaError('PGHA_ERR_CONFIG', `${what} file ${path} not found`, { hint: 'check the path (pgha monitor create writes <pgdata>.pgha/auth-token)' });
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (cause) {
    throw new PghaError('PGHA_ERR_CONFIG', `${what} file ${path} cannot be read (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message})`, { hint: 'run as the user that owns it' });
  }
  try {
    const mode = fstatSync(fd).mode & 0o777;
    if (mode & 0o077) {
      throw new PghaError('PGHA_ERR_CONFIG', `${what} file ${path} is readable by others (mode ${mode.toString(8).padStart(4, '0')})`, { hint: `restrict it with: chmod 600 ${path}` });
    }
    const text = readFileSync(fd, 'utf8').trim();
    if (!text) throw new PghaError('PGHA_ERR_CONFIG', `${what} file ${path} is empty`, { hint: 'restore it from a backup, or create the monitor again' });
    return text;
  } finally {
    closeSync(fd);
  }
}

/** Reads a PEM file (certificate or key). @throws PghaError `PGHA_ERR_TLS` naming the file when it is unreadable or not PEM. */
export function readPem(path: string, what: string): string {
  try {
    const text = readFileSync(path, 'utf8');
    if (!text.includes('-----BEGIN ')) throw new Error('not a PEM file');
    return text;
  } catch (cause) {
    throw new PghaError('PGHA_ERR_TLS', `${what} ${path} cannot be used: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, { hint: 'check the path and that it is a PEM file' });
  }
}

/**
 * Reads a password from a secret file ({@link readSecretFile}: 0600, not empty): the file's one
 * line, or, when that line is a pgpass entry for `user` (`host:port:database:user:password`,
 * as `pgha up` writes `DIR/pgpass`), its password field, with pgpass's `\:` and `\\` escapes
 * undone. A password is never taken from a command line, where `ps` would show it.
 *
 * @param what - what the file holds, for messages ("postgres password").
 * @throws PghaError `PGHA_ERR_CONFIG` naming the file as {@link readSecretFile} does, or when it
 *   holds more than one line.
 *
 * ### Examples
 * ```ts
 * readPasswordFile('/etc/pgha/postgres-password', 'postgres password', 'postgres') // 's3cret'
 * readPasswordFile('/tmp/pgha-up/pgpass', 'postgres password', 'postgres') // the password of '*:*:*:postgres:s3cret'
 * ```
 */
export function readPasswordFile(path: string, what: string, user: string): string {
  const text = readSecretFile(path, what);
  if (text.includes('\n')) throw new PghaError('PGHA_ERR_CONFIG', `${what} file ${path} has more than one line`, { hint: 'write the password alone on one line (or one pgpass line for this role)' });
  const fields: string[] = [];
  let field = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && i + 1 < text.length) field += text[++i];
    else if (c === ':' && fields.length < 4) (fields.push(field), (field = ''));
    else field += c;
  }
  fields.push(field);
  return fields.length === 5 && fields[3] === user && fields[4] !== '' ? fields[4]! : text;
}
