/**
 * What the keeper and the monitor need to load prom-client at their first scrape rather than
 * at start (issue 17: idle cost): a histogram's observations counted before the histogram
 * exists, and how long the default process metrics need before their first exposition. Pure.
 */

/**
 * How long after prom-client's default metrics are turned on the first scrape waits, in ms: the
 * event loop lag figures come from a monitor that samples every 10 ms, and print as `Nan` (not
 * Prometheus text) until it has samples. Paid once, at the first scrape.
 */
export const PROCESS_METRICS_WARMUP_MS = 50;

/**
 * The `Content-Type` of Prometheus's text exposition format 0.0.4 (prom-client's
 * `Registry.contentType`), for a `/metrics` answered before prom-client is loaded.
 */
export const PROMETHEUS_TEXT_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/**
 * Observations of a histogram kept in constant memory until the histogram exists (a Prometheus
 * histogram of prom-client, which the keeper and the monitor load at their first scrape only:
 * issue 17, idle cost): per bucket (the given upper bounds, then +Inf) how many fell in it and
 * their sum. {@link replayInto} hands them to the histogram with the same count, sum and bucket
 * counts: each bucket's observations as that many observations of their mean, which lies in
 * the same bucket.
 *
 * ### Examples
 * ```ts
 * const tally = new HistogramTally([0.1, 1]);
 * tally.observe(0.05); tally.observe(0.07); tally.observe(3);
 * tally.replayInto(histogram); // count 3, sum 3.12, le=0.1 → 2, le=1 → 2, +Inf → 3
 * ```
 */
export class HistogramTally {
  private readonly counts: number[];
  private readonly sums: number[];

  /** @param bounds - the buckets' upper bounds, ascending (seconds, or whatever unit is observed). */
  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
    this.sums = new Array<number>(bounds.length + 1).fill(0);
  }

  /** Records one observation. */
  observe(value: number): void {
    let i = this.bounds.findIndex((b) => value <= b);
    if (i < 0) i = this.bounds.length;
    this.counts[i]!++;
    this.sums[i]! += value;
  }

  /** Observations so far. */
  get count(): number {
    return this.counts.reduce((a, b) => a + b, 0);
  }

  /** Observes everything recorded into `histogram` (see the class), then forgets it. */
  replayInto(histogram: { observe(value: number): void }): void {
    for (const [i, n] of this.counts.entries()) {
      if (n === 0) continue;
      // The mean lies in the bucket; rounding of the sum may put it a hair outside.
      let mean = Math.min(this.sums[i]! / n, this.bounds[i] ?? Infinity);
      const below = this.bounds[i - 1];
      if (below !== undefined && mean <= below) mean = below + Math.abs(below) * Number.EPSILON;
      for (let k = 0; k < n; k++) histogram.observe(mean);
      this.counts[i] = 0;
      this.sums[i] = 0;
    }
  }
}
