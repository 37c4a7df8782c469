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

/**
 * How long a condition that keeps a node from its goal may last before the keeper reports it
 * as the node's problem, in ms: longer than the moments a healthy change makes (a standby
 * re-pointed to a new primary stops streaming for about a second; a transition may fail once
 * while its peer is still starting), far shorter than an operator's patience.
 */
export const STUCK_GRACE_MS = 5000;

/**
 * Since when a condition has held, by key: {@link StuckClock.note} with the same key keeps the
 * first time, another key starts again, undefined ends it. Pure (the caller gives the time).
 */
export class StuckClock {
  private current: { key: string; sinceMs: number } | undefined;

  /**
   * Records that `key` holds at `nowMs` (or that nothing holds, with undefined).
   *
   * @returns for how long, in ms, the same key has held (0 when it just started).
   */
  note(key: string | undefined, nowMs: number): number {
    if (key === undefined) {
      this.current = undefined;
      return 0;
    }
    if (this.current?.key !== key) this.current = { key, sinceMs: nowMs };
    return nowMs - this.current.sinceMs;
  }

  /** For how long, in ms, the current key has held at `nowMs`; undefined when none holds. */
  heldForMs(nowMs: number): number | undefined {
    return this.current ? nowMs - this.current.sinceMs : undefined;
  }

  /** The key that holds, if any. */
  get key(): string | undefined {
    return this.current?.key;
  }
}

/**
 * An error message made stable for a problem sentence (every change of the sentence is an
 * event): its first line, runs of 4+ digits (PIDs, ports, byte counts) as `N`, at most 300
 * characters.
 *
 * ### Examples
 * ```ts
 * stableMessage('pg_rewind failed (exit 1): connection to server at "10.0.0.2", port 5432 failed\nmore')
 * // 'pg_rewind failed (exit 1): connection to server at "10.0.0.2", port N failed'
 * ```
 */
export function stableMessage(message: string): string {
  const first = message.split('\n').find((l) => l.trim()) ?? message;
  const text = first.replace(/\d{4,}/g, 'N').trim();
  return text.length > 300 ? `${text.slice(0, 299)}…` : text;
}

/**
 * The problem of a transition (or of keeping a reached state) that has failed on every try for
 * {@link STUCK_GRACE_MS} or more, e.g. `transition from demoted to catchingup fails: pg_rewind
 * failed (exit 1): … (the keeper retries)`.
 *
 * @param step - `transition from X to Y`, or `keeping X`.
 * @param message - the error's message.
 */
export function failingStepProblem(step: string, message: string): string {
  return `${step} fails: ${stableMessage(message)} (the keeper retries)`;
}

/**
 * The problem of a standby whose WAL receiver has not streamed for {@link STUCK_GRACE_MS} or
 * more while its goal is to follow `upstream`: the reason comes from the server log (the WAL
 * receiver logs each failure as FATAL), e.g. `the WAL receiver does not stream from node 1
 * "node1" (10.0.0.1:5432): FATAL: could not connect to the primary server: …`.
 *
 * @param upstream - the node it should stream from; null when the monitor gave none.
 * @param serverFailure - {@link lastServerFailure} of the server log, if any.
 */
export function notStreamingProblem(upstream: { nodeId: number; name: string; host: string; port: number } | null, serverFailure: string | undefined): string {
  const from = upstream ? `node ${upstream.nodeId} "${upstream.name}" (${upstream.host}:${upstream.port})` : 'its upstream (the monitor names none yet)';
  return `the WAL receiver does not stream from ${from}: ${serverFailure ? stableMessage(serverFailure) : 'no error in the server log'}`;
}
