/**
 * Reading small files that pgha reads again and again, without reading them again when they
 * have not changed.
 */
import { readFileSync, statSync } from 'node:fs';

/** The text of each file {@link readFileText} read, with the status it had then. */
const readTexts = new Map<string, { status: string; text: string }>();

/**
 * The text of the small file `path` (UTF-8), or undefined when there is none. The keeper checks
 * a few files on every report cycle (twice a second: `postgresql.conf` and its own
 * configuration files, `postmaster.pid`): a file whose status (inode, size, modification and
 * change times in ns) is the one it had when last read is not read again, one `statx` instead
 * of an open, a read and a close (issue 17: idle cost; system calls are most of an idle
 * keeper's work). Any write, by pgha (a rename: a new inode) or by hand, changes the status.
 *
 * ### Examples
 * ```ts
 * readFileText('/var/lib/postgresql/15/main/postgresql.conf') // "# -----------------------------\n# PostgreSQL configuration file…"
 * readFileText('/nonexistent') // undefined
 * ```
 */
export function readFileText(path: string): string | undefined {
  const st = statSync(path, { throwIfNoEntry: false, bigint: true });
  if (!st) {
    readTexts.delete(path);
    return undefined;
  }
  const status = `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  const known = readTexts.get(path);
  if (known?.status === status) return known.text;
  const text = readFileSync(path, 'utf8');
  readTexts.set(path, { status, text });
  return text;
}
