/**
 * pgha's own files beside a data directory (`<pgdata>.pgha/`: the keeper's and the monitor's
 * configuration, state, secrets, socket and log directories), and the one way to write and
 * read a JSON file of theirs: atomically ({@link writeFileAtomic}), and
 * validated, never repaired, when read back.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { z } from 'zod';
import { PghaError } from '@pgha/shared/core';
import { writeFileAtomic } from './atomic-file.js';

/** Directory of pgha's own files for a data directory: `<pgdata>.pgha`. */
export function pghaDirFor(pgdata: string): string {
  return `${resolve(pgdata).replace(/\/+$/, '')}.pgha`;
}

/**
 * Creates pgha's directory for a data directory, mode 0711: root's files in it stay private
 * (0600), while the Postgres OS user can reach its own `log/` subdirectory.
 */
export function ensurePghaDir(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o711 });
  chmodSync(dir, 0o711);
  return dir;
}

/**
 * Writes a JSON file (2-space indented, a final newline) with {@link writeFileAtomic}: a crash
 * leaves either the old or the new file, never a torn one. Its directory is created as pgha's
 * directory ({@link ensurePghaDir}, mode 0711) first.
 *
 * @param mode - 0600 by default (configuration and state hold secrets); 0644 for `up.json`.
 */
export function writeJsonAtomic(path: string, value: unknown, mode = 0o600): void {
  ensurePghaDir(dirname(path));
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`, { mode });
}

/** How to recover from a bad file, shown as the hint of {@link readJsonFile}'s error. */
export interface RecoveryHints {
  /** When the file does not exist. */
  missing: string;
  /** When it is empty, unreadable, not JSON (truncated, a NUL-filled tail) or not of its schema. */
  damaged: string;
}

/** Where the recovery of each of pgha's files is described, for hints. */
export const RECOVERY_DOC = 'see "Recovering pgha\'s files" in docs/errors.md';

/**
 * Reads and validates a JSON file. Never repairs or replaces it: a caller that cannot read its
 * file must not act (a keeper that re-initialised a node because its state file was torn would
 * destroy data).
 *
 * @param what - the file's role in the message, e.g. `keeper state file`.
 * @returns the parsed, schema-checked contents.
 * @throws PghaError `PGHA_ERR_CONFIG` naming the file and what is wrong with it (not found,
 *   unreadable, empty, NUL bytes, not valid JSON, invalid: `field: problem`), its hint from `hints`.
 */
export function readJsonFile<T>(path: string, schema: z.ZodType<T>, what: string, hints: RecoveryHints): T {
  const fail = (problem: string, hint: string, cause?: unknown): never => {
    throw new PghaError('PGHA_ERR_CONFIG', `${what} ${problem}`, { hint, cause });
  };
  if (!existsSync(path)) fail(`not found at ${path}`, hints.missing);
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    fail(`at ${path} cannot be read (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`, hints.damaged, cause);
  }
  if (text.trim() === '') fail(`at ${path} is empty (${text.length} bytes)`, hints.damaged);
  if (text.includes('\0')) fail(`at ${path} is corrupt (NUL bytes at offset ${text.indexOf('\0')}: a torn write)`, hints.damaged);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    fail(`at ${path} is corrupt (not valid JSON)`, hints.damaged, cause);
  }
  const result = schema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0];
    fail(`at ${path} is invalid: ${issue?.path.join('.') || 'file'}: ${issue?.message}`, hints.damaged);
  }
  return result.data!;
}

/** True when `a` and `b` name the same directory (the same path, or the same one through links). */
export function sameDirectory(a: string, b: string): boolean {
  if (resolve(a) === resolve(b)) return true;
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/**
 * Directory of the Unix socket of the Postgres of `pgdata`: `<pgdata>.pgha/run`, owned by
 * the Postgres OS user, mode 0700 (so only that user and root connect through it). Never the
 * data directory itself: pg_rewind would try to copy the socket. When that path is too long
 * for a Unix socket (107 bytes), a directory under the OS temp dir named after it.
 */
export function socketDirFor(pgdata: string): string {
  const preferred = join(pghaDirFor(pgdata), 'run');
  if (preferred.length <= 90) return preferred;
  let hash = 0;
  for (const ch of preferred) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return join(tmpdir(), `pgha-run-${hash.toString(16)}`);
}

