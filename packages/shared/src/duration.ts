/**
 * How a duration reads for an operator: every event reason, log line, problem, CLI line and
 * error that prints one goes through {@link formatDurationMs}, so that none prints a clock
 * difference raw ("keeper silent for 2384.531005859375 ms" was printed: the store's clock is a
 * `float8` of milliseconds).
 */

/** Below this (ms, after rounding), a duration is printed in whole milliseconds. */
const MS_BELOW = 10_000;

/**
 * A duration given in milliseconds, in whole units: whole milliseconds below 10 s (`2385 ms`,
 * where timeouts of a few hundred ms matter), whole seconds up to 10 min (`12 s`), then
 * minutes and seconds (`12 min 5 s`), then hours and minutes (`3 h 7 min`). Rounded to the
 * nearest unit shown; a negative duration (clocks that disagree) keeps its sign; a value that
 * is not a finite number (an unknown duration) prints as `an unknown time`.
 *
 * ### Examples
 * ```ts
 * formatDurationMs(2384.531005859375) // '2385 ms'
 * formatDurationMs(1000)              // '1000 ms'
 * formatDurationMs(12_400)            // '12 s'
 * formatDurationMs(725_000)           // '12 min 5 s'
 * formatDurationMs(11_220_000)        // '3 h 7 min'
 * ```
 */
export function formatDurationMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'an unknown time';
  const sign = ms < 0 ? '-' : '';
  const wholeMs = Math.round(Math.abs(ms));
  if (wholeMs < MS_BELOW) return `${sign}${wholeMs} ms`;
  const s = Math.round(wholeMs / 1000);
  if (s < 600) return `${sign}${s} s`;
  if (s < 3600) return `${sign}${Math.floor(s / 60)} min ${s % 60} s`;
  const min = Math.round(s / 60);
  return `${sign}${Math.floor(min / 60)} h ${min % 60} min`;
}
