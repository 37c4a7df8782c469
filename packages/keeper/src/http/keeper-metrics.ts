/**
 * The keeper's Prometheus metrics (`GET /metrics`), on a registry of its own (never
 * prom-client's global one, so that nothing else in the process adds to it). Gauges are read
 * from the keeper's memory at scrape time ({@link KeeperView}); the report histogram and the
 * failure counter are fed by the keeper loop ({@link KeeperObserver}).
 *
 * prom-client (with its default process metrics) is loaded at the first scrape, not when the
 * keeper starts: a keeper nobody scrapes does not carry its 12 MB of modules, nor the event
 * loop monitor of its default metrics, which wakes the process every 10 ms (issue 17: idle
 * cost). Until then the reports are counted in a `HistogramTally`, which the histogram takes
 * over exactly at the first scrape (same count, sum and buckets).
 * Source: Patroni's `GET /metrics` (`patroni_primary`, `patroni_xlog_replayed_location`, …).
 */
import type { Counter, Histogram, Registry } from 'prom-client';
import { HistogramTally, NODE_STATES, PROCESS_METRICS_WARMUP_MS, PROMETHEUS_TEXT_CONTENT_TYPE } from '@pgha/shared/base';
import { delay } from '@pgha/postgres';
import type { KeeperObserver } from '../loop.js';
import type { KeeperView } from '../keeper-view.js';
import { replayLagBytes } from './health-checks.js';

/** Upper bounds of `pgha_monitor_report_duration_seconds`' buckets, seconds. */
export const REPORT_BUCKETS_SECONDS = [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] as const;

/** The prom-client objects of {@link KeeperMetrics}, made at the first scrape. */
interface Loaded {
  registry: Registry;
  reportSeconds: Histogram;
  reportFailures: Counter;
}

/** Metrics of one keeper. */
export class KeeperMetrics implements KeeperObserver {
  /** Reports before the first scrape. */
  private readonly pendingReports = new HistogramTally(REPORT_BUCKETS_SECONDS);
  private pendingFailures = 0;
  private loaded: Loaded | undefined;
  private loading: Promise<Loaded> | undefined;

  /**
   * @param view - the keeper's view, read at each scrape.
   * @param labels - labels on every series: the node's formation, name and id.
   */
  constructor(
    private readonly view: () => KeeperView,
    private readonly labels: { formation: string; node: string; nodeId: number },
  ) {}

  reportFinished(durationMs: number, ok: boolean): void {
    if (this.loaded) {
      this.loaded.reportSeconds.observe(durationMs / 1000);
      if (!ok) this.loaded.reportFailures.inc();
      return;
    }
    this.pendingReports.observe(durationMs / 1000);
    if (!ok) this.pendingFailures++;
  }

  /** The text exposition (`Content-Type` {@link contentType}); loads prom-client at the first call. */
  async metrics(): Promise<string> {
    this.loading ??= this.load().catch((err: unknown) => {
      this.loading = undefined;
      throw err;
    });
    return (await this.loading).registry.metrics();
  }

  /** The exposition's content type (prom-client's; its text format's before the first scrape). */
  get contentType(): string {
    return this.loaded?.registry.contentType ?? PROMETHEUS_TEXT_CONTENT_TYPE;
  }

  /** Makes the registry, its metrics and the default process metrics, and takes over what was counted before. */
  private async load(): Promise<Loaded> {
    // CommonJS: its exports are the default export (what a bundle of it gives too; scripts/bundle-cli.ts).
    const { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } = (await import('prom-client')).default;
    const view = this.view;
    const registry = new Registry();
    const registers = [registry];
    registry.setDefaultLabels({ formation: this.labels.formation, node: this.labels.node, node_id: String(this.labels.nodeId) });
    collectDefaultMetrics({ register: registry });
    await delay(PROCESS_METRICS_WARMUP_MS);
    new Gauge({
      name: 'pgha_node_state',
      help: 'The state the keeper has reached (its reported state): 1 for that state, 0 for every other',
      labelNames: ['state'],
      registers,
      collect() {
        const current = view().reportedState;
        for (const state of NODE_STATES) this.set({ state }, state === current ? 1 : 0);
      },
    });
    new Gauge({
      name: 'pgha_replication_lag_bytes',
      help: "Standby: replay lag behind the end of WAL its upstream last reported in the stream (latest_end_lsn - pg_last_wal_replay_lsn()); 0 on a primary; NaN when unknown",
      registers,
      collect() {
        this.set(replayLagBytes(view()) ?? Number.NaN);
      },
    });
    new Gauge({
      name: 'pgha_postgres_running',
      help: '1 while the node\'s Postgres runs, as the keeper last read it',
      registers,
      collect() {
        this.set(view().postgresRunning ? 1 : 0);
      },
    });
    new Gauge({
      name: 'pgha_last_transition_timestamp_seconds',
      help: 'When the keeper last reached a new state (unix time, seconds)',
      registers,
      collect() {
        this.set(view().lastTransitionAtMs / 1000);
      },
    });
    const reportSeconds = new Histogram({
      name: 'pgha_monitor_report_duration_seconds',
      help: 'Time from sending a report to the monitor to its answer (or failure), seconds',
      buckets: [...REPORT_BUCKETS_SECONDS],
      registers,
    });
    const reportFailures = new Counter({
      name: 'pgha_monitor_report_failures_total',
      help: 'Reports to the monitor that failed (unreachable, timed out, refused)',
      registers,
    });
    this.pendingReports.replayInto(reportSeconds);
    reportFailures.inc(this.pendingFailures);
    this.pendingFailures = 0;
    this.loaded = { registry, reportSeconds, reportFailures };
    return this.loaded;
  }
}
