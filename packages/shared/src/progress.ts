/**
 * How progress and sizes read for an operator: `pgha keeper create`'s log, `pgha show state`
 * and `pgha watch` print them the same way.
 */
import type { TransitionProgress } from './protocol.js';

/** Percent (0..100, whole) of a progress; null when the total is not known. */
export function progressPercent(p: TransitionProgress): number | null {
  if (p.totalBytes === null || p.totalBytes === 0) return null;
  return Math.min(100, Math.floor((p.doneBytes * 100) / p.totalBytes));
}

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB'] as const;

/**
 * A byte count for people: `0 B`, `512 B`, `1.5 kB`, `293.0 MB` (powers of 1024, as
 * pg_basebackup and `pg_size_pretty` count).
 *
 * ### Examples
 * ```ts
 * formatBytes(16 * 1024 * 1024) // '16.0 MB'
 * ```
 */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

/** What a phase is called in sentences. */
const PHASE_NAMES: Record<TransitionProgress['phase'], string> = { basebackup: 'base backup' };

/** How much of a progress is done: `42% (123.4 MB of 293.0 MB)`, or `12.0 MB` while the total is not known. */
export function progressAmount(p: TransitionProgress): string {
  const percent = progressPercent(p);
  if (percent === null || p.totalBytes === null) return formatBytes(p.doneBytes);
  return `${percent}% (${formatBytes(p.doneBytes)} of ${formatBytes(p.totalBytes)})`;
}

/** One phrase for a progress: `base backup 42% (123.4 MB of 293.0 MB)`. */
export function describeProgress(p: TransitionProgress): string {
  return `${PHASE_NAMES[p.phase] ?? p.phase} ${progressAmount(p)}`;
}
