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
});

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
