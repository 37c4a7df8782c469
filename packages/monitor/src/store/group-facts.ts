/**
 * The group state machine's input (`GroupFacts`, `@pgha/shared`) from the store's records.
 * Pure: every time is a fact given to it.
 */
import { DEFAULT_FORMATION_SETTINGS, parseLsn, type FormationSettings, type GroupFacts, type NodeFacts } from '@pgha/shared';
import type { FormationRecord, NodeRecord } from './records.js';

/** The formation's settings: defaults overlaid with its stored values. */
export function formationSettings(f: Pick<FormationRecord, 'settings' | 'numberSyncStandbys'>): FormationSettings {
  return { ...DEFAULT_FORMATION_SETTINGS, ...f.settings, numberSyncStandbys: f.numberSyncStandbys };
}

function toFacts(n: NodeRecord, diedLoudlyMs: number | null): NodeFacts {
  return {
    nodeId: n.nodeId,
    name: n.name,
    candidatePriority: n.candidatePriority,
    replicationQuorum: n.replicationQuorum,
    reportedState: n.reportedState,
    goalState: n.goalState,
    lastReportMs: n.reportedAt ? new Date(n.reportedAt).getTime() : null,
    postgresRunning: n.postgresRunning,
    reportedLsn: parseLsn(n.reportedLsn),
    reportedTimeline: n.reportedTimeline,
    upstreamStreaming: n.upstreamStreaming,
    lastStreamingMs: n.lastStreamingAt ? new Date(n.lastStreamingAt).getTime() : null,
    health: n.health,
    goalChangedMs: new Date(n.goalChangedAt).getTime(),
    synchronousStandbyNames: n.reportedSyncStandbyNames,
    shutdownCheckpointLsn: n.shutdownCheckpointLsn === null ? null : parseLsn(n.shutdownCheckpointLsn),
    restartRequestedMs: n.restartDone < n.restartRequest && n.restartRequestedAt ? new Date(n.restartRequestedAt).getTime() : null,
    ...(diedLoudlyMs !== null ? { diedLoudlyMs } : {}),
  };
}

/**
 * The group's facts from its records.
 *
 * @param nodes - the group's nodes that are not dropped, by node id.
 * @param nowMs - the store's clock (ms since the epoch).
 * @param monitorLagMs - how far behind the monitor has lately been in answering reports (see
 *   `GroupFacts.monitorLagMs` and `MonitorLag`).
 * @param diedLoudlyMs - when a node died loudly, as this monitor saw it (`NodeFacts.diedLoudlyMs`,
 *   `LoudDeathWatch`); null for none.
 */
export function groupFacts(formation: FormationRecord, groupId: number, nodes: readonly NodeRecord[], nowMs: number, monitorLagMs = 0, diedLoudlyMs: (nodeId: number) => number | null = () => null): GroupFacts {
  return { formation: formation.formationId, groupId, nowMs, settings: formationSettings(formation), nodes: nodes.map((n) => toFacts(n, diedLoudlyMs(n.nodeId))), ...(monitorLagMs > 0 ? { monitorLagMs } : {}) };
}

/**
 * How recently every keeper of a group must have been heard for its reports to skip the
 * decision (`driver/steady-group.ts`), in ms: three quarters of the shorter of
 * `nodeUnhealthyTimeoutMs` and `standbyStreamingTimeoutMs` (1.5 s by default). A keeper that
 * falls silent (or a standby whose last streaming report ages) passes this a quarter of the
 * timeout before the timeout comes due, so from then on every report of its group decides
 * again, and the timeout is acted on at the first report (or timer tick) after it, as without
 * this rule.
 */
export function freshWithinMs(settings: Pick<FormationSettings, 'nodeUnhealthyTimeoutMs' | 'standbyStreamingTimeoutMs'>): number {
  return (Math.min(settings.nodeUnhealthyTimeoutMs, settings.standbyStreamingTimeoutMs) * 3) / 4;
}
