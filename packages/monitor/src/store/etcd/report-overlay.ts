/**
 * Keepers' liveness in the monitor's memory, so that etcd carries state changes, not
 * heartbeats. A keeper reports every ~500 ms; most reports change nothing but the time and the
 * LSN. The etcd adapter writes a node's key only when a report changes a **persisted fact**
 * ({@link PERSISTED_REPORT_FACTS}: its reported state, whether Postgres runs, recovery,
 * timeline, streaming, transition, `synchronous_standby_names`, the shutdown checkpoint's LSN,
 * problem, self-fence, parameters, restart done), when the
 * node never reported before, or when its LSN moved and was last written
 * {@link LSN_WRITE_INTERVAL_MS} ago or more; every report updates this overlay: when it came
 * (`reportedAt`), its LSN, when its WAL receiver last streamed, its transition's progress.
 * A read of a node merges its record with the overlay ({@link mergeLiveness}), so a decision
 * sees every report.
 *
 * **Grace period.** A record's `reportedAt` is the time of its last write, which may be long
 * ago for a quiet keeper. A monitor that starts, or becomes a formation's leader, has no
 * overlay yet: it counts every node that has reported before as heard from at that moment
 * (`graceFromMs`), so that a keeper gets a full `nodeUnhealthyTimeoutMs` to report to it
 * before it counts as silent. Source: pg_auto_failover's `startup_grace_period`.
 *
 * Pure functions, and {@link ReportOverlay} which only keeps them in maps.
 */
import { isDeepStrictEqual } from 'node:util';
import { formatLsn, parseLsn, type NodeReport, type TransitionProgress } from '@pgha/shared';
import { reportedShutdownCheckpointLsn, type NodeRecord } from '../records.js';

/**
 * Longest time (ms) a node's moving LSN goes unwritten to etcd while nothing else changes, by
 * default (`EtcdStoreOptions.lsnWriteIntervalMs`). Only the formation's leader hears its
 * keepers, and it keeps their LSNs in memory; the stored LSN is what a new leader starts from
 * (and its keepers' next reports, within `keeperReportIntervalMs`, replace it), and what the
 * other monitors' metrics show. A formation's state is the leader's, from any monitor
 * (`ha/forward-to-leader.ts`). At 3,000 keepers with moving LSNs, writing them every 10 s was
 * 300 node writes a second, which took etcd about a third of the benchmark machine's two cores
 * (docs/monitor-capacity.md).
 */
export const LSN_WRITE_INTERVAL_MS = 60_000;

/** The facts of a report that are written to etcd as soon as they change. */
export const PERSISTED_REPORT_FACTS = [
  'reportedState',
  'postgresRunning',
  'isInRecovery',
  'reportedTimeline',
  'upstreamStreaming',
  'transitionInProgress',
  'reportedSyncStandbyNames',
  'shutdownCheckpointLsn',
  'reportedProblem',
  'lastSelfFenceAt',
  'reportedParameters',
  'restartDone',
] as const satisfies readonly (keyof NodeRecord)[];

/** What the overlay knows of a node from the reports this monitor received. */
export interface NodeLiveness {
  /** When its last report came (ms, this monitor's clock). */
  reportedAtMs: number;
  /** `X/Y` of its last report. */
  reportedLsn: string;
  /** The last report in which its WAL receiver streamed (ms); null: none seen here. */
  lastStreamingAtMs: number | null;
  transitionProgress: TransitionProgress | null;
  /** When its LSN was last written to etcd by this monitor (ms). */
  lsnWrittenAtMs: number;
}

function time(d: Date | null): number | null {
  return d === null ? null : d instanceof Date ? d.getTime() : new Date(d).getTime();
}

function latest(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : Math.max(a, b);
}

/**
 * A node's record as a read sees it: its stored record with the overlay's newer facts, and the
 * grace period applied. The overlay counts when its last report is newer than the record's
 * (another monitor may have written the node since).
 *
 * @param graceFromMs - the start of the grace period of the node's formation (see the module);
 *   undefined: none.
 *
 * ### Examples
 * ```ts
 * mergeLiveness(record, { reportedAtMs: now, reportedLsn: '0/3000148', … }) // reportedAt: new Date(now), reportedLsn: '0/3000148'
 * ```
 */
export function mergeLiveness(record: NodeRecord, live: NodeLiveness | undefined, graceFromMs?: number): NodeRecord {
  const t = mergedTimes(record, live, graceFromMs);
  if (!t.liveNewer && !t.graceApplies) return record;
  return {
    ...record,
    reportedAt: dateOrNull(t.reportedAtMs),
    ...(t.liveNewer && live ? { reportedLsn: live.reportedLsn, transitionProgress: live.transitionProgress } : {}),
    lastStreamingAt: dateOrNull(t.lastStreamingAtMs),
  };
}

/** The times a read sees of a node (see {@link mergeLiveness}), in ms; null: none. */
interface MergedTimes {
  /** The overlay's last report is newer than the record's: its LSN and transition progress count. */
  liveNewer: boolean;
  /** The grace period moved the last report (and, for a streaming standby, its streaming) to its start. */
  graceApplies: boolean;
  reportedAtMs: number | null;
  lastStreamingAtMs: number | null;
}

/**
 * What {@link mergeLiveness} makes of a node's times, without building the record: for
 * `applyReport`, which builds the node once from its stored record, and for the health prober's
 * reads of every node ({@link mergedReportedAtMs}).
 */
function mergedTimes(record: NodeRecord, live: NodeLiveness | undefined, graceFromMs: number | undefined): MergedTimes {
  let reportedAtMs = time(record.reportedAt);
  let lastStreamingAtMs = time(record.lastStreamingAt);
  const liveNewer = live !== undefined && (reportedAtMs === null || live.reportedAtMs > reportedAtMs);
  if (liveNewer) {
    reportedAtMs = live.reportedAtMs;
    lastStreamingAtMs = latest(lastStreamingAtMs, live.lastStreamingAtMs);
  }
  const graceApplies = graceFromMs !== undefined && reportedAtMs !== null && reportedAtMs < graceFromMs;
  if (graceApplies) {
    reportedAtMs = graceFromMs;
    if (record.upstreamStreaming) lastStreamingAtMs = latest(lastStreamingAtMs, graceFromMs);
  }
  return { liveNewer, graceApplies, reportedAtMs, lastStreamingAtMs };
}

/**
 * When a node's keeper last reported as reads see it (ms; null: never), what
 * `mergeLiveness(record, live, graceFromMs).reportedAt` holds, without building the record (the
 * health prober reads it for every node twice a second).
 */
export function mergedReportedAtMs(record: NodeRecord, live: NodeLiveness | undefined, graceFromMs?: number): number | null {
  return mergedTimes(record, live, graceFromMs).reportedAtMs;
}

function dateOrNull(ms: number | null): Date | null {
  return ms === null ? null : new Date(ms);
}

/** What {@link applyReport} decided. */
export interface AppliedReport {
  /** The node after the report (to write when `write`, and what reads see either way). */
  node: NodeRecord;
  /** Whether the node's key must be written. */
  write: boolean;
  /**
   * True when only its moving LSN is due ({@link LSN_WRITE_INTERVAL_MS}): no persisted fact
   * changed, so the write need not hold up the report (the etcd store writes such LSNs apart,
   * in a batch of its own).
   */
  lsnOnly: boolean;
  /** The overlay's entry after the report. */
  live: NodeLiveness;
  /**
   * Whether the report changed a fact a decision reads beyond the time and the LSN: a persisted
   * fact, a self-fence it carries (answered only once recorded), a transition under way (its
   * progress lives in the overlay only), or the keeper's liveness (this monitor heard no report
   * of it within `freshMs` before).
   */
  factsChanged: boolean;
}

/**
 * A keeper's report applied to its node (the same fields as the Postgres adapter's report
 * statement), and whether etcd must be written (see the module).
 *
 * @param stored - the node as stored in etcd (not merged).
 * @param live - the overlay's entry; undefined when this monitor has none yet.
 * @param nowMs - this monitor's clock.
 * @param lsnJitterMs - 0 to `lsnWriteIntervalMs`, chosen at random by the caller: for a node the
 *   overlay does not know yet, how long before `nowMs` its LSN counts as written, so that after
 *   a monitor starts the LSN writes of a thousand nodes spread over the interval; for a report
 *   that writes the node, half of it is how long before `nowMs` the LSN counts as written, so
 *   that after a change that a whole fleet went through within seconds (its start, a setting of
 *   every formation) the next LSN writes spread over half the interval instead of coming due
 *   in one wave (3,000 nodes' in 2 s in `npm run bench:monitor`), and stay spread.
 * @param graceFromMs - the start of the node's formation's grace period
 *   ({@link ReportOverlay.graceFrom}): a standby that streamed as far as the store knows counts
 *   as streaming at that instant, as reads see it; its first report to a new leader must not
 *   make it unhealthy at once because the old leader kept its streaming time in memory.
 * @param freshMs - how recent the previous report must be for this one to change nothing of
 *   the keeper's liveness (`AppliedReport.factsChanged`; the caller passes
 *   `freshWithinMs` of `store/group-facts.ts`); 0: every report counts as a change.
 * @param lsnWriteIntervalMs - how long a moving LSN goes unwritten (ms, {@link LSN_WRITE_INTERVAL_MS}).
 */
export function applyReport(stored: NodeRecord, live: NodeLiveness | undefined, report: NodeReport, nowMs: number, lsnJitterMs = 0, graceFromMs?: number, freshMs = 0, lsnWriteIntervalMs = LSN_WRITE_INTERVAL_MS): AppliedReport {
  const lsn = formatLsn(parseLsn(report.lsn));
  const fence = report.selfFence?.fencedAtMs;
  const node: NodeRecord = {
    // The stored record: the report replaces every fact a read merges in (mergeLiveness) but the
    // streaming time of a standby that stopped streaming.
    ...stored,
    reportedState: report.reportedState,
    reportedAt: new Date(nowMs),
    postgresRunning: report.postgresRunning,
    isInRecovery: report.isInRecovery,
    reportedLsn: lsn,
    reportedTimeline: report.timeline,
    upstreamStreaming: report.upstreamStreaming,
    transitionInProgress: report.transitionInProgress ?? null,
    transitionProgress: report.transitionProgress ?? null,
    // Kept while Postgres is down: what it last ran with is what the election counts (NodeRecord).
    reportedSyncStandbyNames: report.postgresRunning ? (report.synchronousStandbyNames ?? null) : stored.reportedSyncStandbyNames,
    shutdownCheckpointLsn: reportedShutdownCheckpointLsn(report),
    reportedProblem: report.problem ?? null,
    reportedParameters: report.parameters ?? null,
    lastSelfFenceAt: fence === undefined ? stored.lastSelfFenceAt : dateOrNull(latest(time(stored.lastSelfFenceAt), fence)),
    lastStreamingAt: report.upstreamStreaming ? new Date(nowMs) : dateOrNull(mergedTimes(stored, live, graceFromMs).lastStreamingAtMs),
    restartDone: Math.max(stored.restartDone, report.restartDone ?? 0),
  };
  const lsnWrittenAtMs = live?.lsnWrittenAtMs ?? nowMs - lsnJitterMs;
  const factChanged = stored.reportedAt === null || PERSISTED_REPORT_FACTS.some((f) => !sameFact(stored[f], node[f]));
  const lsnDue = lsn !== stored.reportedLsn && nowMs - lsnWrittenAtMs >= lsnWriteIntervalMs;
  const write = factChanged || lsnDue;
  const heardRecently = live !== undefined && nowMs - live.reportedAtMs <= freshMs;
  return {
    node,
    write,
    factsChanged: factChanged || !heardRecently || fence !== undefined || node.transitionInProgress !== null || node.transitionProgress !== null || (live?.transitionProgress ?? null) !== null,
    lsnOnly: lsnDue && !factChanged,
    live: {
      reportedAtMs: nowMs,
      reportedLsn: lsn,
      lastStreamingAtMs: time(node.lastStreamingAt),
      transitionProgress: node.transitionProgress,
      lsnWrittenAtMs: write ? nowMs - lsnJitterMs / 2 : lsnWrittenAtMs,
    },
  };
}

function sameFact(a: unknown, b: unknown): boolean {
  if (a instanceof Date || b instanceof Date) return time(a as Date | null) === time(b as Date | null);
  // Reported parameters: compared by value, and remembered (see sameObjects).
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null) return sameObjects(a, b);
  return a === b;
}

/**
 * The object each object was last found equal to by value ({@link sameObjects}). Both sides are
 * usually the same objects report after report: the stored record's parameters (decoded once
 * per change of its key) and the report's (one frozen object per distinct list, `reportBody`).
 */
const equalTo = new WeakMap<object, object>();

/**
 * `isDeepStrictEqual(a, b)`, remembered for the last object found equal to `a`: a fleet's
 * keepers send the same parameters with every report, and comparing them again cost ~2 % of a
 * monitor's CPU at 1,000 reports a second. Only for objects that do not change (the records'
 * and the reports' parameters are frozen or never written again).
 */
function sameObjects(a: object, b: object): boolean {
  if (a === b || equalTo.get(a) === b) return true;
  if (!isDeepStrictEqual(a, b)) return false;
  equalTo.set(a, b);
  return true;
}

/**
 * The overlay of one monitor: each node's {@link NodeLiveness}, the time of its last probe
 * result (written to etcd only when its health changes), and the grace periods.
 */
export class ReportOverlay {
  private readonly live = new Map<number, NodeLiveness>();
  private readonly checked = new Map<number, number>();
  private readonly graces = new Map<string, number>();
  /**
   * The last {@link merge} of each stored record (as decoded, frozen), with what it was merged from: the other
   * nodes of a group are merged again at every report of the group, mostly from the same
   * record and overlay entry (both replaced, never changed in place, when they change).
   */
  private readonly merged = new WeakMap<NodeRecord, { live: NodeLiveness | undefined; graceFromMs: number; checked: number | undefined; node: NodeRecord }>();

  /** @param graceFromMs - the start of every formation's grace period: when the monitor started. */
  constructor(private readonly graceFromMs: number) {}

  get(nodeId: number): NodeLiveness | undefined {
    return this.live.get(nodeId);
  }

  set(nodeId: number, live: NodeLiveness): void {
    this.live.set(nodeId, live);
  }

  /** The node's LSN, and what else the overlay holds, was just written to etcd (`nowMs`). */
  written(nodeId: number, nowMs: number): void {
    const l = this.live.get(nodeId);
    if (l) this.live.set(nodeId, { ...l, lsnWrittenAtMs: nowMs });
  }

  /** A probe result of the node that changed nothing came at `nowMs`. */
  probed(nodeId: number, nowMs: number): void {
    this.checked.set(nodeId, nowMs);
  }

  /** Forgets a node (removed). */
  forget(nodeId: number): void {
    this.live.delete(nodeId);
    this.checked.delete(nodeId);
  }

  /**
   * Starts a new grace period for a formation at `nowMs` (its leadership module calls this when
   * the monitor becomes the formation's leader).
   */
  startGrace(formationId: string, nowMs: number): void {
    this.graces.set(formationId, nowMs);
  }

  /** The start of a formation's grace period: when the monitor started, or when it last became its leader. */
  graceFrom(formationId: string): number {
    return Math.max(this.graceFromMs, this.graces.get(formationId) ?? 0);
  }

  /** When a stored node's keeper last reported, as {@link merge} would give it (see {@link mergedReportedAtMs}). */
  reportedAtMs(record: NodeRecord): number | null {
    return mergedReportedAtMs(record, this.live.get(record.nodeId), this.graceFrom(record.formationId));
  }

  /** When a stored node's probe state was last written or refreshed, as {@link merge} gives its `healthCheckedAt` (ms); null: never. */
  checkedAtMs(record: NodeRecord): number | null {
    const stored = record.healthCheckedAt === null ? null : record.healthCheckedAt.getTime();
    const checked = this.checked.get(record.nodeId);
    return checked === undefined || (stored !== null && stored >= checked) ? stored : checked;
  }

  /** A stored node as reads see it (see {@link mergeLiveness}), with this monitor's last probe time. */
  merge(record: NodeRecord): NodeRecord {
    const live = this.live.get(record.nodeId);
    const graceFromMs = this.graceFrom(record.formationId);
    const checked = this.checked.get(record.nodeId);
    const last = this.merged.get(record);
    if (last && last.live === live && last.graceFromMs === graceFromMs && last.checked === checked) return last.node;
    const merged = mergeLiveness(record, live, graceFromMs);
    const checkedAtMs = this.checkedAtMs(record);
    const node = checkedAtMs === null || checkedAtMs === merged.healthCheckedAt?.getTime() ? merged : { ...merged, healthCheckedAt: new Date(checkedAtMs) };
    // Kept only for a stored record as decoded (frozen): a record written in a transaction may
    // still change (its goal revision, at commit). A merge of its own is frozen, since it is
    // handed to every read until its record or overlay entry changes (`writeNode` copies a
    // frozen record).
    if (!Object.isFrozen(record)) return node;
    if (node !== record) Object.freeze(node);
    this.merged.set(record, { live, graceFromMs, checked, node });
    return node;
  }
}
