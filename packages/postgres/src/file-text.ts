/**
 * Reading small files that pgha reads again and again, without reading them again when they
 * have not changed.
 */
import { readFileSync, statSync } from 'node:fs';

/** What a cache of {@link readCached} holds per file: its status when read, and what was read. */
type FileCache<T> = Map<string, { status: string; value: T }>;

const texts: FileCache<string> = new Map();
const bytes: FileCache<Buffer> = new Map();

/** `read(path)`, or what it gave when the file last had the status it has now; undefined when there is no file. */
function readCached<T>(cache: FileCache<T>, path: string, read: (path: string) => T): T | undefined {
  const st = statSync(path, { throwIfNoEntry: false, bigint: true });
  if (!st) {
    cache.delete(path);
    return undefined;
  }
  const status = `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  const known = cache.get(path);
  if (known?.status === status) return known.value;
  const value = read(path);
  // File times come from the kernel's coarse clock (a few ms a step): a file changed in place
  // within that step after this read would keep the same status. So what was read is kept only
  // once the file has been left alone for longer than such a step (as git does for racy entries).
  const changedAgoNs = BigInt(Date.now()) * 1_000_000n - (st.ctimeNs > st.mtimeNs ? st.ctimeNs : st.mtimeNs);
  if (changedAgoNs > SETTLED_NS) cache.set(path, { status, value });
  else cache.delete(path);
  return value;
}

/** How long a file must have been left alone before what is read of it is kept (ns): well over a step of the kernel's coarse clock. */
const SETTLED_NS = 100_000_000n;

/**
 * The text of the small file `path` (UTF-8), or undefined when there is none. The keeper checks
 * a few files on every report cycle (twice a second: `postgresql.conf` and its own
 * configuration files, `postmaster.pid`): a file whose status (inode, size, modification and
 * change times in ns) is the one it had when last read is not read again, one `statx` instead
 * of an open, a read and a close (issue 17: idle cost; system calls are most of an idle
 * keeper's work). Any write, by pgha (a rename: a new inode) or by hand, changes the status; a
 * file changed less than 100 ms before it was read is read again each time until it settles.
 *
 * @throws the file system's error when the file exists but cannot be read (EACCES).
 *
 * ### Examples
 * ```ts
 * readFileText('/var/lib/postgresql/15/main/postgresql.conf') // "# -----------------------------\n# PostgreSQL configuration file…"
 * readFileText('/nonexistent') // undefined
 * ```
 */
export function readFileText(path: string): string | undefined {
  return readCached(texts, path, (p) => readFileSync(p, 'utf8'));
}

/**
 * {@link readFileText} for a binary file (`global/pg_control`, checked before every start and
 * every write into a data directory, and on every monitor tick): its bytes, shared with the
 * next caller, so never to be modified.
 *
 * @throws the file system's error when the file exists but cannot be read (EACCES).
 */
export function readFileBytes(path: string): Buffer | undefined {
  return readCached(bytes, path, (p) => readFileSync(p));
}
