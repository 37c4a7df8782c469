/**
 * The monitor's Prometheus metrics (`GET /metrics`, prom-client, a registry of its own).
 *
 * | metric | type | labels | what |
 * |---|---|---|---|
 * | `pgha_node_reported_state` | gauge | formation, group, node, name, state | 1 for the state the node's keeper last reported |
 * | `pgha_node_goal_state` | gauge | formation, group, node, name, state | 1 for the goal state the monitor assigned |
 * | `pgha_node_replication_lag_bytes` | gauge | formation, group, node, name | WAL bytes between the group primary's reported LSN and this standby's |
 * | `pgha_node_last_transition_timestamp_seconds` | gauge | formation, group, node, name | when the node's goal state last changed (unix seconds) |
 * | `pgha_node_pending_restart_parameters` | gauge | formation, group, node, name | Postgres parameters changed on the node that wait for its restart (`pg_settings.pending_restart`) |
 * | `pgha_health_probe_failures_total` | counter | formation, group, node, name | failed health probes of the node's Postgres since the monitor started |
 * | `pgha_report_duration_seconds` | histogram | — | how long the monitor took to answer a keeper's report (a held one: until its status line) |
 * | `pgha_keeper_requests_total` | counter | route (`report`, `goal`) | keepers' reports and goal long-polls this monitor answered since it started |
 * | `pgha_failovers_total` | counter | formation | failovers in the events table |
 * | `pgha_switchovers_total` | counter | formation | switchovers in the events table |
 *
 * A scrape costs three statements whatever the number of nodes (every node row, every
 * formation, the events since the last scrape), not one per node. The state gauges carry one
 * series per node (its current state), not one per possible state.
 *
 * The failover and switchover counters are counted from the events
 * (`EventStream.countOperationsAfter`): each scrape adds the operations among the events
 * written since the last one. A restarted monitor counts them all again at its first scrape, so they go on
 * from where they were rather than dropping to 0 (and a second monitor on the same store
 * counts the same). The probe failure counter and the report histogram are the process's own:
 * they start again from 0 when the monitor restarts, which Prometheus's `rate()` and
 * `increase()` treat as a counter reset.
 *
 * prom-client (and its default process metrics, whose event loop monitor wakes the process
 * every 10 ms) is loaded at the first scrape, not when the monitor starts: a monitor nobody
 * scrapes does not pay for it (issue 17: idle cost). Until then the report durations are
 * counted in a `HistogramTally` and the probe failures per node, and the first scrape hands
 * them over whole.
 *
 * Source: Patroni's `/metrics` (`patroni_postgres_running`, `patroni_xlog_*`,
 * `patroni_postgres_timeline`), per node; pg_auto_failover has none.
 */
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { HistogramTally, PROCESS_METRICS_WARMUP_MS, PROMETHEUS_TEXT_CONTENT_TYPE, parseLsn } from '@pgha/shared';
import { delay } from '@pgha/postgres';
import { primaryOf } from '../routes/views.js';
import { STREAM_START, groupKey, type EventCursor, type NodeRecord } from '../store/records.js';
import type { StoreSession } from '../store/store-port.js';

const NODE_LABELS = ['formation', 'group', 'node', 'name'] as const;
/** How many nodes a scrape sets gauges for between two turns of the event loop. */
const YIELD_EVERY_NODES = 250;

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
type NodeLabel = (typeof NODE_LABELS)[number];
type NodeLabels = Record<NodeLabel, string>;

/** The keeper routes `pgha_keeper_requests_total` counts. */
export type KeeperRoute = 'report' | 'goal';

/** A node as the metrics name it. */
export interface MetricNode {
  formationId: string;
  groupId: number;
  nodeId: number;
  name: string;
}

function nodeLabels(n: MetricNode): NodeLabels {
  return { formation: n.formationId, group: String(n.groupId), node: String(n.nodeId), name: n.name };
}

/**
 * Replication lag of a standby in bytes: how far its reported LSN is behind the primary's
 * (`X/Y` strings), 0 when it is at or past it. Both come from the keepers' last reports, so the
 * lag is as old as the older of the two (at most about `keeperReportIntervalMs`).
 */
export function replicationLagBytes(primaryLsn: string, standbyLsn: string): number {
  const lag = parseLsn(primaryLsn) - parseLsn(standbyLsn);
  return lag > 0n ? Number(lag) : 0;
}

/** Upper bounds of `pgha_report_duration_seconds`' buckets, seconds. */
const REPORT_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** The prom-client registry and metrics of {@link MonitorMetrics}, made at the first scrape. */
interface Loaded {
  registry: Registry;
  reportedState: Gauge<string>;
  goalState: Gauge<string>;
  lagBytes: Gauge<string>;
  pendingRestart: Gauge<string>;
  lastTransition: Gauge<string>;
  probeFailures: Counter<string>;
  reportDuration: Histogram<string>;
  keeperRequests: Counter<string>;
  failovers: Counter<string>;
  switchovers: Counter<string>;
}

/** Makes the registry and the metrics of the table above (and prom-client's default ones with `processMetrics`). */
async function loadMetrics(processMetrics: boolean): Promise<Loaded> {
  // CommonJS: its exports are the default export (what a bundle of it gives too; scripts/bundle-cli.ts).
  const { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } = (await import('prom-client')).default;
  const registry = new Registry();
  const registers = [registry];
  if (processMetrics) {
    collectDefaultMetrics({ register: registry });
    await delay(PROCESS_METRICS_WARMUP_MS);
  }
  return {
    registry,
    reportedState: new Gauge({ name: 'pgha_node_reported_state', help: 'The state the node\'s keeper last reported (1 on the current state)', labelNames: [...NODE_LABELS, 'state'], registers }),
    goalState: new Gauge({ name: 'pgha_node_goal_state', help: 'The goal state the monitor assigned to the node (1 on the current state)', labelNames: [...NODE_LABELS, 'state'], registers }),
    lagBytes: new Gauge({ name: 'pgha_node_replication_lag_bytes', help: "WAL bytes between the group primary's reported LSN and this standby's", labelNames: NODE_LABELS, registers }),
    pendingRestart: new Gauge({ name: 'pgha_node_pending_restart_parameters', help: "Postgres parameters changed on the node that wait for a restart of its Postgres (pg_settings.pending_restart, as its keeper last reported)", labelNames: NODE_LABELS, registers }),
    lastTransition: new Gauge({ name: 'pgha_node_last_transition_timestamp_seconds', help: "When the node's goal state last changed (unix time, seconds)", labelNames: NODE_LABELS, registers }),
    probeFailures: new Counter({ name: 'pgha_health_probe_failures_total', help: "Failed health probes of the node's Postgres since the monitor started", labelNames: NODE_LABELS, registers }),
    reportDuration: new Histogram({
      name: 'pgha_report_duration_seconds',
      help: "How long the monitor took to answer a keeper's report (request received to answer sent)",
      buckets: REPORT_BUCKETS_SECONDS,
      registers,
    }),
    keeperRequests: new Counter({ name: 'pgha_keeper_requests_total', help: "Keepers' reports (route report) and goal long-polls (route goal) this monitor answered since it started", labelNames: ['route'], registers }),
    failovers: new Counter({ name: 'pgha_failovers_total', help: 'Failovers (automatic, or pgha perform failover) recorded in the events', labelNames: ['formation'], registers }),
    switchovers: new Counter({ name: 'pgha_switchovers_total', help: 'Switchovers (perform switchover or promotion, maintenance of the primary) recorded in the events', labelNames: ['formation'], registers }),
  };
}

/** The monitor's metrics and their registry. */
export class MonitorMetrics {
  private loaded: Loaded | undefined;
  private loading: Promise<Loaded> | undefined;
  /** Report durations (seconds) before the first scrape. */
  private readonly pendingReports = new HistogramTally(REPORT_BUCKETS_SECONDS);
  /** Keepers' requests answered before the first scrape, per route. */
  private readonly pendingKeeperRequests = new Map<KeeperRoute, number>();
  /** Probe failures before the first scrape, per node. */
  private readonly pendingProbeFailures = new Map<number, { labels: NodeLabels; failures: number }>();

  /** Where the counting of failovers and switchovers has reached in the events. */
  private eventCursor: EventCursor = STREAM_START;
  /** Labels of the nodes with a probe failure series, to remove them once the node is gone. */
  private readonly probedNodes = new Map<number, NodeLabels>();
  /** Scrapes run one after the other (each resets and refills the gauges). */
  private scraping: Promise<unknown> = Promise.resolve();
  private readonly processMetrics: boolean;

  /**
   * @param options.processMetrics - also prom-client's default metrics of the process (CPU,
   *   memory, event loop lag, …), from the first scrape on; the running monitor turns them on.
   */
  constructor(options: { processMetrics?: boolean } = {}) {
    this.processMetrics = options.processMetrics ?? false;
  }

  /** Records how long answering one keeper report took, in ms. */
  observeReport(durationMs: number): void {
    if (this.loaded) this.loaded.reportDuration.observe(durationMs / 1000);
    else this.pendingReports.observe(durationMs / 1000);
  }

  /** Counts one keeper request answered: a report, or a goal long-poll. */
  keeperRequest(route: KeeperRoute): void {
    if (this.loaded) this.loaded.keeperRequests.inc({ route });
    else this.pendingKeeperRequests.set(route, (this.pendingKeeperRequests.get(route) ?? 0) + 1);
  }

  /** Counts one failed health probe of `node`. */
  probeFailed(node: MetricNode): void {
    const labels = nodeLabels(node);
    this.probedNodes.set(node.nodeId, labels);
    if (this.loaded) {
      this.loaded.probeFailures.inc(labels);
      return;
    }
    const pending = this.pendingProbeFailures.get(node.nodeId);
    this.pendingProbeFailures.set(node.nodeId, { labels, failures: (pending?.failures ?? 0) + 1 });
  }

  /** The content type of {@link scrape}'s text (Prometheus's text format). */
  get contentType(): string {
    return this.loaded?.registry.contentType ?? PROMETHEUS_TEXT_CONTENT_TYPE;
  }

  /** The metrics, made at the first call, with what was counted before handed over. */
  private load(): Promise<Loaded> {
    this.loading ??= loadMetrics(this.processMetrics).then(
      (m) => {
        this.pendingReports.replayInto(m.reportDuration);
        for (const [route, count] of this.pendingKeeperRequests) m.keeperRequests.inc({ route }, count);
        this.pendingKeeperRequests.clear();
        for (const { labels, failures } of this.pendingProbeFailures.values()) m.probeFailures.inc(labels, failures);
        this.pendingProbeFailures.clear();
        this.loaded = m;
        return m;
      },
      (err: unknown) => {
        this.loading = undefined;
        throw err;
      },
    );
    return this.loading;
  }

  /**
   * Reads the store and renders every metric in Prometheus's text format.
   *
   * @throws the store's error when it cannot be read (the route answers 503).
   */
  scrape(store: StoreSession): Promise<string> {
    const next = this.scraping.catch(() => undefined).then(async () => {
      const m = await this.load();
      await this.refresh(m, store);
      // One metric at a time, with a turn of the event loop between: a scrape of a thousand
      // nodes is about 20 ms of work, which keepers' reports must not wait behind.
      const parts: string[] = [];
      for (const metric of m.registry.getMetricsAsArray()) {
        parts.push(await m.registry.getSingleMetricAsString(metric.name));
        await nextTurn();
      }
      return `${parts.join('\n\n')}\n`;
    });
    this.scraping = next;
    return next;
  }

  private async refresh(m: Loaded, store: StoreSession): Promise<void> {
    const nodes = await store.nodes.listAll();
    const formations = await store.formations.list();
    const operations = await store.stream.countOperationsAfter(this.eventCursor);
    this.eventCursor = operations.cursor;
    for (const f of formations) {
      // Present at 0, so that a first failover shows as an increase.
      m.failovers.inc({ formation: f.formationId }, 0);
      m.switchovers.inc({ formation: f.formationId }, 0);
    }
    for (const c of operations.counts) (c.kind === 'failover' ? m.failovers : m.switchovers).inc({ formation: c.formationId }, c.n);

    for (const g of [m.reportedState, m.goalState, m.lagBytes, m.lastTransition, m.pendingRestart]) g.reset();
    const groups = new Map<string, NodeRecord[]>();
    for (const [i, n] of nodes.entries()) {
      if (i > 0 && i % YIELD_EVERY_NODES === 0) await nextTurn();
      const labels = nodeLabels(n);
      m.reportedState.set({ ...labels, state: n.reportedState }, 1);
      m.goalState.set({ ...labels, state: n.goalState }, 1);
      m.lastTransition.set(labels, new Date(n.goalChangedAt).getTime() / 1000);
      m.pendingRestart.set(labels, n.reportedParameters?.pendingRestart.length ?? 0);
      if (n.goalState === 'dropped') continue;
      const key = groupKey(n.formationId, n.groupId);
      const members = groups.get(key);
      if (members) members.push(n);
      else groups.set(key, [n]);
    }
    for (const members of groups.values()) {
      const primary = primaryOf(members);
      if (!primary) continue;
      for (const n of members) if (n !== primary) m.lagBytes.set(nodeLabels(n), replicationLagBytes(primary.reportedLsn, n.reportedLsn));
    }
    const present = new Set(nodes.map((n) => n.nodeId));
    for (const [nodeId, labels] of this.probedNodes) {
      if (present.has(nodeId)) continue;
      m.probeFailures.remove(labels);
      this.probedNodes.delete(nodeId);
    }
  }
}
