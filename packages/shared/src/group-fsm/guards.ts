/**
 * Named predicates over group facts. Each is pure and small; the names follow
 * pg_auto_failover's monitor predicates (`IsHealthy`, `IsCurrentState`, `WalDifferenceWithin`)
 * where there is one.
 */
import { WRITABLE_STATES, type NodeState } from '../states.js';
import type { GroupFacts, NodeFacts } from './facts.js';

/** Keeper reported `state` and was assigned `state`: it has reached its goal. */
export function isCurrentState(node: NodeFacts, state: NodeState): boolean {
  return node.reportedState === state && node.goalState === state;
}

/**
 * The node died loudly: the monitor saw every connection of its keeper closed by the keeper's
 * side, then its keeper's HTTP port and its Postgres port both refuse connections (twice in a
 * row), and its keeper has not reported since (`diedLoudlyMs` at or after `lastReportMs`).
 * Together they prove both processes gone on a host that is up; each alone proves nothing
 * (docs/timeouts.md, "A loud death").
 */
export function diedLoudly(node: NodeFacts): boolean {
  const at = node.diedLoudlyMs;
  return at !== undefined && at !== null && (node.lastReportMs === null || at >= node.lastReportMs);
}

/**
 * The keeper reported within `nodeUnhealthyTimeoutMs` (plus `monitorLagMs`, the time the
 * monitor itself has lately taken to answer reports: its own backlog is not the keeper's
 * silence), and has not died loudly since ({@link diedLoudly}).
 */
export function keeperIsAlive(facts: GroupFacts, node: NodeFacts): boolean {
  return node.lastReportMs !== null && facts.nowMs - node.lastReportMs <= facts.settings.nodeUnhealthyTimeoutMs + (facts.monitorLagMs ?? 0) && !diedLoudly(node);
}

/**
 * How long a restart the operator asked for (`pgha perform restart`) excuses its node's
 * Postgres being down or its standbys not streaming, in ms: the keeper restarts Postgres
 * (`pg_ctl restart -m fast`) and waits for its replication to stream again before it reports
 * the restart done. A restart that takes longer is a failure like any other, and the usual
 * rules (`standby-failed`, `failover-start`) apply. Source: Patroni, whose leader keeps its
 * leader key while it restarts Postgres (`primary_start_timeout`, default 300 s); shorter here
 * because a standby's restart blocks synchronous commits of a two-node group while it lasts.
 */
export const RESTART_ON_REQUEST_GRACE_MS = 30_000;

/**
 * The node's Postgres is being restarted on the operator's request: the keeper has not
 * reported the restart done, and it was asked for at most {@link RESTART_ON_REQUEST_GRACE_MS}
 * ago.
 */
export function restartingOnRequest(facts: GroupFacts, node: NodeFacts): boolean {
  const at = node.restartRequestedMs;
  return at !== undefined && at !== null && facts.nowMs - at <= RESTART_ON_REQUEST_GRACE_MS;
}

/**
 * Postgres on the node is down as far as anyone can tell: the monitor's probe fails and
 * either the keeper is silent or it says the postmaster is not running; or the node died
 * loudly ({@link diedLoudly}: its keeper gone and its Postgres port refusing, which the
 * monitor knows before `healthProbeRetries` probes have failed and before
 * `nodeUnhealthyTimeoutMs` of silence).
 */
export function postgresIsDown(facts: GroupFacts, node: NodeFacts): boolean {
  return diedLoudly(node) || (node.health === 'bad' && (!keeperIsAlive(facts, node) || !node.postgresRunning));
}

/** The node's keeper is alive and says its WAL receiver is streaming now. */
export function isStreaming(facts: GroupFacts, node: NodeFacts): boolean {
  return keeperIsAlive(facts, node) && node.upstreamStreaming;
}

/**
 * The node's keeper reported a streaming WAL receiver within `standbyStreamingTimeoutMs`
 * (plus `monitorLagMs`, as in {@link keeperIsAlive}).
 */
export function streamedRecently(facts: GroupFacts, node: NodeFacts): boolean {
  return node.lastStreamingMs !== null && facts.nowMs - node.lastStreamingMs <= facts.settings.standbyStreamingTimeoutMs + (facts.monitorLagMs ?? 0);
}

/**
 * A standby is healthy when its Postgres is up and, if its keeper is alive, it has streamed
 * within `standbyStreamingTimeoutMs` (a reconnecting WAL receiver is not a failure). A
 * standby whose keeper is dead but whose Postgres answers the probe stays healthy: the
 * keeper crashing alone must not change anything. A standby that restarts on the operator's
 * request ({@link restartingOnRequest}) is healthy while it does.
 */
export function standbyIsHealthy(facts: GroupFacts, node: NodeFacts): boolean {
  if (restartingOnRequest(facts, node)) return true;
  if (postgresIsDown(facts, node)) return false;
  if (!keeperIsAlive(facts, node)) return node.health === 'good';
  return streamedRecently(facts, node);
}

/** The node holds a writable goal state (see {@link WRITABLE_STATES}). */
export function hasWritableGoal(node: NodeFacts): boolean {
  return WRITABLE_STATES.has(node.goalState);
}

/** The node that holds a writable goal, if exactly one does. */
export function writableNode(facts: GroupFacts): NodeFacts | undefined {
  const writable = facts.nodes.filter(hasWritableGoal);
  return writable.length === 1 ? writable[0] : undefined;
}

/**
 * The primary has failed, by three witnesses: its Postgres is down (probe fails, and the
 * keeper is silent or says Postgres is not running; or the node died loudly, see
 * {@link postgresIsDown}) and no standby still streams from it. Never while it restarts on the
 * operator's request ({@link restartingOnRequest}).
 */
export function primaryHasFailed(facts: GroupFacts, primary: NodeFacts): boolean {
  if (restartingOnRequest(facts, primary)) return false;
  if (!postgresIsDown(facts, primary)) return false;
  return !facts.nodes.some((n) => n.nodeId !== primary.nodeId && isStreaming(facts, n));
}

/** `primary.reportedLsn - standby.reportedLsn` is at most `catchupLagBytes`. */
export function walDifferenceWithin(facts: GroupFacts, primary: NodeFacts, standby: NodeFacts): boolean {
  return primary.reportedLsn - standby.reportedLsn <= BigInt(facts.settings.catchupLagBytes);
}

/** A node that may be promoted: a healthy `secondary` with a non-zero candidate priority. */
export function isPromotable(facts: GroupFacts, node: NodeFacts): boolean {
  return (
    isCurrentState(node, 'secondary') &&
    node.candidatePriority > 0 &&
    keeperIsAlive(facts, node) &&
    node.postgresRunning
  );
}

/**
 * Standbys that count toward synchronous replication: goal `secondary` with replication
 * quorum. Source: pg_auto_failover's `synchronous_standby_names` computation.
 */
export function quorumStandbys(facts: GroupFacts, primaryId: number): NodeFacts[] {
  return facts.nodes.filter(
    (n) => n.nodeId !== primaryId && n.replicationQuorum && n.goalState === 'secondary',
  );
}
