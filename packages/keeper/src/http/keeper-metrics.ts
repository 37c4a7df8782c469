/**
 * The keeper's Prometheus metrics (`GET /metrics`), on a registry of its own (never
 * prom-client's global one, so that nothing else in the process adds to it). Gauges are read
 * from the keeper's memory at scrape time ({@link KeeperView}); the report histogram and the
 * failure counter are fed by the keeper loop ({@link KeeperObserver}).
 * Source: Patroni's `GET /metrics` (`patroni_primary`, `patroni_xlog_replayed_location`, …).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { NODE_STATES } from '@pgha/shared/base';
import type { KeeperObserver } from '../loop.js';
import type { KeeperView } from '../keeper-view.js';
import { replayLagBytes } from './health-checks.js';

/** Metrics of one keeper. */
export class KeeperMetrics implements KeeperObserver {
  readonly registry = new Registry();
  private readonly reportSeconds: Histogram;
  private readonly reportFailures: Counter;

  /**
   * @param view - the keeper's view, read at each scrape.
   * @param labels - labels on every series: the node's formation, name and id.
   */
  constructor(view: () => KeeperView, labels: { formation: string; node: string; nodeId: number }) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ formation: labels.formation, node: labels.node, node_id: String(labels.nodeId) });
    collectDefaultMetrics({ register: this.registry });
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
    this.reportSeconds = new Histogram({
      name: 'pgha_monitor_report_duration_seconds',
      help: 'Time from sending a report to the monitor to its answer (or failure), seconds',
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.reportFailures = new Counter({
      name: 'pgha_monitor_report_failures_total',
      help: 'Reports to the monitor that failed (unreachable, timed out, refused)',
      registers,
    });
  }

  reportFinished(durationMs: number, ok: boolean): void {
    this.reportSeconds.observe(durationMs / 1000);
    if (!ok) this.reportFailures.inc();
  }

  /** The text exposition (`Content-Type` {@link contentType}). */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
