/**
 * pg_basebackup's `--progress` lines, read into a {@link TransitionProgress}, and the rule that
 * decides which of them the keeper logs. pg_basebackup writes one line a second when its
 * stderr is not a terminal (`  123456/300000 kB (41%), 0/1 tablespace`); a log line a second
 * for an hour-long backup is too many, one every 10 % (or every 30 s when it crawls) is not.
 * Source: pg_basebackup's `progress_report()`; Patroni and pg_auto_failover log none of it.
 */
import { progressPercent, type TransitionProgress } from '@pgha/shared/base';

/** `done/total kB (N%)`, or `done kB` with `--no-estimate-size`. */
const PROGRESS_LINE = /^\s*(\d+)(?:\/(\d+))? kB\b/;

/**
 * Reads one line of pg_basebackup's stderr.
 *
 * @returns the progress it reports; undefined for any other line (a warning, "waiting for
 *   checkpoint").
 *
 * ### Examples
 * ```ts
 * parseBasebackupProgress('  1024/4096 kB (25%), 0/1 tablespace')
 * // { phase: 'basebackup', doneBytes: 1048576, totalBytes: 4194304 }
 * ```
 */
export function parseBasebackupProgress(line: string): TransitionProgress | undefined {
  const m = PROGRESS_LINE.exec(line);
  if (!m) return undefined;
  return { phase: 'basebackup', doneBytes: Number(m[1]) * 1024, totalBytes: m[2] === undefined ? null : Number(m[2]) * 1024 };
}

/** Options of {@link ProgressLogThrottle}. */
export interface ProgressLogThrottleOptions {
  /** Log when the percent has grown by this much since the last logged line (default 10). */
  stepPercent?: number;
  /** Log anyway when this long has passed since the last logged line and something moved (ms, default 30 000). */
  maxSilenceMs?: number;
}

/**
 * Decides which progress values are worth a log line: the first, each that crosses the next
 * `stepPercent` boundary, 100 %, and after `maxSilenceMs` any that moved.
 *
 * ### Examples
 * ```ts
 * const t = new ProgressLogThrottle();
 * t.shouldLog({ phase: 'basebackup', doneBytes: 1, totalBytes: 100 }, 0) // true (the first)
 * t.shouldLog({ phase: 'basebackup', doneBytes: 5, totalBytes: 100 }, 1000) // false
 * t.shouldLog({ phase: 'basebackup', doneBytes: 10, totalBytes: 100 }, 2000) // true (10 %)
 * ```
 */
export class ProgressLogThrottle {
  private readonly stepPercent: number;
  private readonly maxSilenceMs: number;
  private last: { percent: number | null; doneBytes: number; atMs: number } | undefined;

  constructor(options: ProgressLogThrottleOptions = {}) {
    this.stepPercent = options.stepPercent ?? 10;
    this.maxSilenceMs = options.maxSilenceMs ?? 30_000;
  }

  /** True when `p`, seen at `nowMs`, should be logged; remembers it if so. */
  shouldLog(p: TransitionProgress, nowMs: number): boolean {
    const percent = progressPercent(p);
    const last = this.last;
    const log =
      last === undefined ||
      (percent !== null && (last.percent === null || Math.floor(percent / this.stepPercent) > Math.floor(last.percent / this.stepPercent) || (percent === 100 && last.percent < 100))) ||
      (p.doneBytes !== last.doneBytes && nowMs - last.atMs >= this.maxSilenceMs);
    if (log) this.last = { percent, doneBytes: p.doneBytes, atMs: nowMs };
    return log;
  }
}
