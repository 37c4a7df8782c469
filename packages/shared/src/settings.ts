import { formatDurationMs } from './duration.js';

/**
 * Timeouts and thresholds of a formation, with their defaults. Every duration is in
 * milliseconds and every size in bytes, as the names say.
 */
export interface FormationSettings {
  /**
   * How many standbys must acknowledge a commit on the primary (`ANY n` with
   * n = max(1, numberSyncStandbys)). Source: pg_auto_failover's `number_sync_standbys`.
   */
  numberSyncStandbys: number;
  /**
   * A keeper that has not reported for this long is silent. Combined with a failed health
   * probe and no standby streaming from it, a silent primary is failed. Source:
   * pg_auto_failover's `pgautofailover.node_considered_unhealthy_timeout` (20 s there).
   */
  nodeUnhealthyTimeoutMs: number;
  /**
   * A standby whose keeper reports that its WAL receiver has not streamed for this long no
   * longer counts toward synchronous replication: the primary goes to `wait_primary`.
   */
  standbyStreamingTimeoutMs: number;
  /**
   * A standby within this many bytes of the primary's LSN is caught up and may become
   * `secondary`. Source: pg_auto_failover's `enable_sync_wal_log_threshold` (16 MB).
   */
  catchupLagBytes: number;
  /**
   * How long a failover election waits for the standbys in `report_lsn` to report before it
   * decides with those that did (as long as no acknowledged commit can be lost).
   */
  electionTimeoutMs: number;
  /** How often the monitor probes each node's Postgres. */
  healthProbeIntervalMs: number;
  /** How long one probe may take before it counts as failed. */
  healthProbeTimeoutMs: number;
  /** Consecutive failed probes after which a node's health is `bad`. */
  healthProbeRetries: number;
  /** How often a keeper reports to the monitor when nothing changes. */
  keeperReportIntervalMs: number;
  /**
   * A keeper whose node is a writable primary and that has heard neither from the monitor (an
   * answered report) for this long nor from any standby (a walsender reply) for half of it
   * fences itself: it stops Postgres at once (immediate shutdown), so that clients stop
   * reaching a stale primary. Must stay below `nodeUnhealthyTimeoutMs` by the margin
   * {@link selfFencingMarginMs} computes. Source: pg_auto_failover's
   * `network_partition_timeout` (20 s there, checked against no margin).
   */
  networkPartitionTimeoutMs: number;
}

/**
 * Defaults. They keep the monitor's three witnesses (keeper silence, failed Postgres probe,
 * no standby streaming) all required before a primary counts as failed, so they can be short.
 */
export const DEFAULT_FORMATION_SETTINGS: Readonly<FormationSettings> = Object.freeze({
  numberSyncStandbys: 0,
  nodeUnhealthyTimeoutMs: 2_000,
  standbyStreamingTimeoutMs: 3_000,
  catchupLagBytes: 16 * 1024 * 1024,
  electionTimeoutMs: 5_000,
  healthProbeIntervalMs: 500,
  healthProbeTimeoutMs: 1_000,
  healthProbeRetries: 2,
  keeperReportIntervalMs: 500,
  networkPartitionTimeoutMs: 1_000,
});

/** The formation settings a keeper acts on, sent with every goal (`NodeGoal.settings`). */
export type KeeperSettings = Pick<FormationSettings, 'keeperReportIntervalMs' | 'networkPartitionTimeoutMs'>;

/** The {@link KeeperSettings} of `settings`. */
export function keeperSettingsOf(settings: Readonly<FormationSettings>): KeeperSettings {
  return { keeperReportIntervalMs: settings.keeperReportIntervalMs, networkPartitionTimeoutMs: settings.networkPartitionTimeoutMs };
}

/**
 * How often the keeper's partition watchdog looks at the clock, in ms; once the monitor has
 * been silent for half of `networkPartitionTimeoutMs` it also asks Postgres for the standbys'
 * replies at this pace.
 */
export const FENCE_CHECK_INTERVAL_MS = 100;
/** Longest the watchdog waits for its Postgres query (standby replies) before it counts as no answer, in ms. */
export const FENCE_QUERY_TIMEOUT_MS = 200;
/**
 * Slack added to `keeperReportIntervalMs` for the longest time between the sending of two
 * answered reports of a healthy keeper (one tick's local work and a report's round trip), in ms.
 */
export const REPORT_SLACK_MS = 100;

/**
 * The least time, in ms, between the moment a primary cut off from the monitor and its
 * standbys at once sends its Postgres the immediate-shutdown signal and the earliest moment
 * the monitor may count its keeper as silent (and so promote a standby).
 *
 * Derivation (docs/timeouts.md, "Self-fencing"): let M be the send time of the last report
 * the monitor answered and C the cut. The monitor recorded a report at or after M, so it
 * cannot see the keeper silent before M + `nodeUnhealthyTimeoutMs`. The keeper fences once
 * the monitor has been silent `networkPartitionTimeoutMs` and the standbys half of that; the
 * last standby reply is at or before C ≤ M + `keeperReportIntervalMs` + {@link REPORT_SLACK_MS};
 * the watchdog notices within {@link FENCE_CHECK_INTERVAL_MS} + {@link FENCE_QUERY_TIMEOUT_MS}.
 * Promotion also needs the standby's WAL receiver to stop, which only adds to the margin.
 *
 * ### Examples
 * ```ts
 * selfFencingMarginMs(DEFAULT_FORMATION_SETTINGS) // 600
 * ```
 */
export function selfFencingMarginMs(settings: Readonly<FormationSettings>): number {
  const latestFence = Math.max(
    settings.networkPartitionTimeoutMs,
    settings.keeperReportIntervalMs + REPORT_SLACK_MS + settings.networkPartitionTimeoutMs / 2,
  ) + FENCE_CHECK_INTERVAL_MS + FENCE_QUERY_TIMEOUT_MS;
  return settings.nodeUnhealthyTimeoutMs - latestFence;
}

/** Name of the default formation, as in pg_auto_failover. */
export const DEFAULT_FORMATION = 'default';

/** Replication role created on the first node; standbys stream and pg_rewind connects as it. */
export const REPLICATION_ROLE = 'pgha_replication';
/** Role the monitor's health probe connects as. */
export const MONITOR_PROBE_ROLE = 'pgha_monitor';

/** `application_name` a standby uses, and that `synchronous_standby_names` refers to. */
export function nodeApplicationName(nodeId: number): string {
  return `pgha_node_${nodeId}`;
}

/** Name of the replication slot that the primary keeps for a standby. */
export function nodeSlotName(nodeId: number): string {
  return `pgha_node_${nodeId}`;
}

/**
 * The node id a replication slot is named for, when its name is exactly one
 * {@link nodeSlotName} makes; undefined for any other name (an operator's slot).
 *
 * ### Examples
 * ```ts
 * nodeIdOfSlotName('pgha_node_3') // 3
 * nodeIdOfSlotName('pgha_node_03') // undefined
 * nodeIdOfSlotName('operator_archive') // undefined
 * ```
 */
export function nodeIdOfSlotName(slot: string): number | undefined {
  const match = /^pgha_node_(\d{1,15})$/.exec(slot);
  if (!match) return undefined;
  const nodeId = Number(match[1]);
  return nodeSlotName(nodeId) === slot ? nodeId : undefined;
}

/** The timing settings an operator may change per formation (`pgha set formation NAME VALUE`). */
export type TimingSettingKey = Exclude<keyof FormationSettings, 'numberSyncStandbys' | 'catchupLagBytes'>;

/** One timing setting: its command-line name, unit and accepted range. */
export interface TimingSetting {
  key: TimingSettingKey;
  /** `ms`: a duration (given as `2s`, `500ms`); `count`: a whole number. */
  unit: 'ms' | 'count';
  min: number;
  max: number;
}

/**
 * Every timing setting by its command-line name (kebab case, as `pgha set formation` takes
 * it), with the range a value must be in. The bounds keep a value from being absurd (a report
 * every millisecond, a timeout of a week); whether values fit together is
 * {@link timingProblems}'s. What each one does and why its default is safe: docs/timeouts.md.
 */
export const TIMING_SETTINGS: Readonly<Record<string, TimingSetting>> = Object.freeze({
  'keeper-report-interval': { key: 'keeperReportIntervalMs', unit: 'ms', min: 100, max: 60_000 },
  'node-unhealthy-timeout': { key: 'nodeUnhealthyTimeoutMs', unit: 'ms', min: 500, max: 600_000 },
  'standby-streaming-timeout': { key: 'standbyStreamingTimeoutMs', unit: 'ms', min: 500, max: 600_000 },
  'election-timeout': { key: 'electionTimeoutMs', unit: 'ms', min: 500, max: 600_000 },
  'health-probe-interval': { key: 'healthProbeIntervalMs', unit: 'ms', min: 100, max: 60_000 },
  'health-probe-timeout': { key: 'healthProbeTimeoutMs', unit: 'ms', min: 100, max: 60_000 },
  'health-probe-retries': { key: 'healthProbeRetries', unit: 'count', min: 1, max: 20 },
  'network-partition-timeout': { key: 'networkPartitionTimeoutMs', unit: 'ms', min: 200, max: 600_000 },
} satisfies Record<string, TimingSetting>);

/** The command-line name of a timing setting (`nodeUnhealthyTimeoutMs` → `node-unhealthy-timeout`). */
export function timingSettingName(key: TimingSettingKey): string {
  return Object.entries(TIMING_SETTINGS).find(([, s]) => s.key === key)![0];
}

/** A timing setting's value as an operator reads it: `2000 ms`, `12 s`; a count as is. */
export function formatTimingValue(key: TimingSettingKey, value: number): string {
  return key === 'healthProbeRetries' ? String(value) : formatDurationMs(value);
}

/**
 * Why a formation's timing settings do not fit together, one sentence each with the numbers
 * and what to change; empty when they do. A change that leaves any is refused
 * (`PATCH /v1/formations/:formation/settings`).
 *
 * - {@link selfFencingMarginMs} must be above 0: a primary cut off from the monitor and its
 *   standbys must stop its Postgres before the monitor may count its keeper silent and promote
 *   a standby (docs/timeouts.md, "Self-fencing").
 * - `standbyStreamingTimeoutMs` must be above `nodeUnhealthyTimeoutMs`: a standby that stops
 *   streaming because its primary died must not be blamed before the primary is.
 *
 * ### Examples
 * ```ts
 * timingProblems(DEFAULT_FORMATION_SETTINGS) // []
 * timingProblems({ ...DEFAULT_FORMATION_SETTINGS, networkPartitionTimeoutMs: 2000 }) // ['a primary cut off … fences itself as late as 2300 ms …']
 * ```
 */
export function timingProblems(settings: Readonly<FormationSettings>): string[] {
  const problems: string[] = [];
  const margin = selfFencingMarginMs(settings);
  if (margin <= 0) {
    const latestFence = settings.nodeUnhealthyTimeoutMs - margin;
    problems.push(
      `a primary cut off from the monitor and its standbys fences itself as late as ${formatDurationMs(latestFence)} after its last answered report ` +
        `(network-partition-timeout ${formatDurationMs(settings.networkPartitionTimeoutMs)}, keeper-report-interval ${formatDurationMs(settings.keeperReportIntervalMs)}, ` +
        `and ${formatDurationMs(REPORT_SLACK_MS + FENCE_CHECK_INTERVAL_MS + FENCE_QUERY_TIMEOUT_MS)} for a report's round trip and the watchdog), but the monitor may count its keeper silent ` +
        `and promote a standby after node-unhealthy-timeout ${formatDurationMs(settings.nodeUnhealthyTimeoutMs)}: two primaries could take writes for up to ${formatDurationMs(-margin)}. ` +
        `Raise node-unhealthy-timeout above ${formatDurationMs(latestFence)}, or lower network-partition-timeout or keeper-report-interval (docs/timeouts.md, "Self-fencing")`,
    );
  }
  if (settings.standbyStreamingTimeoutMs <= settings.nodeUnhealthyTimeoutMs) {
    problems.push(
      `standby-streaming-timeout ${formatDurationMs(settings.standbyStreamingTimeoutMs)} is not above node-unhealthy-timeout ${formatDurationMs(settings.nodeUnhealthyTimeoutMs)}: ` +
        'a standby that stops streaming because its primary died would be blamed (the primary goes to wait_primary) before the primary is found dead. ' +
        `Raise standby-streaming-timeout above ${formatDurationMs(settings.nodeUnhealthyTimeoutMs)}`,
    );
  }
  return problems;
}

/**
 * Bounds of a keeper's role-change hook timeout (`onRoleChangeTimeoutMs` in keeper.json,
 * `--on-role-change-timeout-ms`), in ms: 1 ms to 1 hour.
 */
export const ROLE_CHANGE_TIMEOUT_MIN_MS = 1;
/** See {@link ROLE_CHANGE_TIMEOUT_MIN_MS}. */
export const ROLE_CHANGE_TIMEOUT_MAX_MS = 3_600_000;
/** Default limit of one run of a keeper's role-change hook, in ms (docs/hooks.md). */
export const DEFAULT_ROLE_CHANGE_TIMEOUT_MS = 10_000;
