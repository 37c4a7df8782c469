/** Summaries of a benchmark's per-run figures. */

/** The median of `xs` (the mean of the two middle values for an even count); NaN for none. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** `median [min–max]` of `xs`, rounded to whole units (e.g. ms): `2505 [2177–3440]`; `-` for none. */
export function medianRange(xs: readonly number[]): string {
  if (xs.length === 0) return '-';
  return `${median(xs).toFixed(0)} [${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}]`;
}
