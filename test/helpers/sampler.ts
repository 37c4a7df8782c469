/**
 * Sampling something every few ms during a fault, to see afterwards what happened when: the
 * base of {@link StateWatcher} (history.ts, the monitor's view) and {@link VipWatcher} (vip.ts,
 * who holds a virtual IP).
 */

/**
 * Calls {@link read} every `intervalMs` (one call at a time: a tick that finds the previous
 * read still running is skipped) and keeps what it returns, in order, in `samples`. A read
 * that returns undefined or throws (the thing is out of reach for now) adds nothing.
 */
export abstract class Sampler<S> {
  readonly samples: S[] = [];
  private timer: NodeJS.Timeout | undefined;
  private inFlight = false;

  constructor(private readonly intervalMs: number) {}

  /** One sample; undefined (or an error) when there is none now. */
  protected abstract read(): Promise<S | undefined>;

  start(): this {
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    return this;
  }

  private async tick(): Promise<void> {
    if (this.inFlight) return;
    this.inFlight = true;
    try {
      const s = await this.read();
      if (s !== undefined) this.samples.push(s);
    } catch {
      // out of reach for now
    } finally {
      this.inFlight = false;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
