/**
 * How far behind the monitor has lately been in answering keepers' reports: the
 * `GroupFacts.monitorLagMs` of every decision. A keeper waits for the answer to one report
 * before it sends the next, so the monitor's own backlog ages every keeper's last report;
 * decisions judge keeper silence with this much more time, so that an overloaded (or cut off)
 * monitor does not take its own lateness for dead keepers and fail their nodes.
 */

/** How long a slow answer to a report counts in {@link MonitorLag.lagMs} (ms). */
const LAG_WINDOW_MS = 10_000;

/**
 * A pause this long (ms) in the reports of all keepers together counts as the monitor's own
 * lag: with keepers reporting every 500 ms, no report from any of them for 1 s means the
 * monitor could not hear them.
 */
const ALL_SILENT_GAP_MS = 1_000;

/** The largest value recorded within the last `windowMs` (one slot per second). */
class RecentMax {
  private readonly slots = new Map<number, number>();

  constructor(private readonly windowMs: number) {}

  record(value: number): void {
    const second = Math.floor(performance.now() / 1000);
    this.slots.set(second, Math.max(this.slots.get(second) ?? 0, value));
    for (const s of this.slots.keys()) if (s <= second - this.windowMs / 1000) this.slots.delete(s);
  }

  max(): number {
    const oldest = Math.floor(performance.now() / 1000) - this.windowMs / 1000;
    let max = 0;
    for (const [s, v] of this.slots) if (s > oldest) max = Math.max(max, v);
    return max;
  }
}

/** The measurement: each report from its arrival to its answer. Times are `performance.now()` ms. */
export class MonitorLag {
  /** Recent time to answer a report. */
  private readonly recent = new RecentMax(LAG_WINDOW_MS);
  /** When the last report arrived (at first, when the measurement started). */
  private lastArrivalMs = performance.now();
  /** Arrival times of the reports not answered yet. */
  private readonly pending = new Set<{ arrivedMs: number }>();

  /**
   * Records a report's arrival.
   *
   * @returns the function to call once it is answered (or failed).
   */
  arrived(): () => void {
    const arrivedMs = performance.now();
    // No keeper at all reported for a while: the monitor itself was cut off (or stopped).
    // Every keeper's last report is that much older through no fault of its own: count the
    // gap as lag, so that the first reports after it are not taken for the others' silence.
    if (arrivedMs - this.lastArrivalMs > ALL_SILENT_GAP_MS) this.recent.record(arrivedMs - this.lastArrivalMs);
    this.lastArrivalMs = arrivedMs;
    const entry = { arrivedMs };
    this.pending.add(entry);
    return () => {
      if (!this.pending.delete(entry)) return;
      this.recent.record(performance.now() - arrivedMs);
    };
  }

  /**
   * The monitor decides for more keepers from now on (monitors on etcd: it gained a formation,
   * whose keepers reported to the old leader until now): the time before was no pause of its
   * own, so the silence of all keepers counts from now. Without this, a monitor that led no
   * formation would take the whole time since its start for its own lag at the first report,
   * and judge keepers' silence with that much more time for {@link LAG_WINDOW_MS}: a new leader
   * would fail a dead primary ~10 s late.
   */
  decidesFromNow(): void {
    this.lastArrivalMs = performance.now();
  }

  /**
   * The lag (ms): the longest time a report took to be answered, or pause in all keepers'
   * reports (see {@link ALL_SILENT_GAP_MS}), within the last {@link LAG_WINDOW_MS}; or, if
   * longer, the age of the oldest report not answered yet, or the silence of all keepers so far.
   */
  lagMs(): number {
    const now = performance.now();
    let oldest = now;
    for (const p of this.pending) oldest = Math.min(oldest, p.arrivedMs);
    const allSilent = now - this.lastArrivalMs > ALL_SILENT_GAP_MS ? now - this.lastArrivalMs : 0;
    return Math.round(Math.max(this.recent.max(), now - oldest, allSilent));
  }
}
