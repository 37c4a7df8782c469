/**
 * What keeps a node from its goal, as its keeper sees it locally, in one sentence the monitor
 * shows the operator (`pgha show state`, and an event at each change): a full file system
 * under the data directory, or the reason Postgres gave for not starting. The sentences are
 * stable while the condition lasts (no byte counts that move, no log timestamps), because
 * every change of the sentence is an event.
 */

/**
 * Free space below which the data directory's file system counts as full, in bytes: one WAL
 * segment (16 MiB). Below it Postgres cannot create its next WAL segment.
 */
export const DATA_DISK_FULL_BYTES = 16 * 1024 * 1024;

/** Longest problem sentence sent to the monitor (the protocol's limit). */
export const PROBLEM_MAX_CHARS = 500;

/**
 * The sentence for a data directory's file system, from `statfs` figures.
 *
 * @param freeBytes - bytes available to unprivileged users (`bavail × bsize`).
 * @param totalBytes - size of the file system (`blocks × bsize`).
 * @returns undefined when at least {@link DATA_DISK_FULL_BYTES} are free.
 *
 * ### Examples
 * ```ts
 * diskProblem('/data/pgdata', 0, 128 * 2 ** 20)
 * // 'no space left on device: the file system of /data/pgdata (128 MiB) has less than 16 MiB free'
 * ```
 */
export function diskProblem(pgdata: string, freeBytes: number, totalBytes: number): string | undefined {
  if (freeBytes >= DATA_DISK_FULL_BYTES) return undefined;
  const mib = (n: number) => Math.round(n / 2 ** 20);
  return `no space left on device: the file system of ${pgdata} (${mib(totalBytes)} MiB) has less than ${mib(DATA_DISK_FULL_BYTES)} MiB free`;
}

/**
 * The last PANIC or FATAL message of a Postgres server log excerpt, without its line prefix
 * (time, PID), e.g. `PANIC:  could not write to file "pg_wal/xlogtemp.123": No space left on device`.
 *
 * @param logTail - the end of the server log (any number of lines; a partial first line is fine).
 * @returns undefined when the excerpt has none.
 */
export function lastServerFailure(logTail: string): string | undefined {
  const lines = logTail.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = /\b(PANIC|FATAL):\s+(.*)$/.exec(lines[i]!);
    if (m) return `${m[1]}: ${m[2]!.replace(/\d{4,}/g, 'N').trim()}`;
  }
  return undefined;
}

/** Joins the problems found into the one sentence reported, or null when there is none. */
export function problemSentence(problems: readonly (string | undefined)[]): string | null {
  const found = problems.filter((p): p is string => !!p);
  if (found.length === 0) return null;
  const text = found.join('; ');
  return text.length > PROBLEM_MAX_CHARS ? `${text.slice(0, PROBLEM_MAX_CHARS - 1)}…` : text;
}
