/** Read models built from the store for the API's answers. */
import { DEFAULT_KEEPER_HTTP_PORT, STANDBY_STATES, WRITABLE_STATES, formatHostPort, groupNote, keeperSettingsOf, parseLsn, progressPercent, synchronousStandbyNames, type EventRow, type GroupMember, type NodeGoal, type NodeState, type NodeStateRow } from '@pgha/shared';
import { formationSettings, groupFacts } from '../store/group-facts.js';
import type { EventRecord, FormationRecord, NodeRecord } from '../store/records.js';
import type { MonitorStore, StoreSession } from '../store/store-port.js';
import { nodeParameters } from '../formation/postgres-parameters.js';

function member(n: NodeRecord): GroupMember {
  return { nodeId: n.nodeId, name: n.name, host: n.host, port: n.port, goalState: n.goalState, reportedState: n.reportedState };
}

/** The node holding the group's writable goal, if exactly one does. */
export function primaryOf<T extends { goalState: string }>(nodes: readonly T[]): T | undefined {
  const writable = nodes.filter((n) => WRITABLE_STATES.has(n.goalState as NodeState));
  return writable.length === 1 ? writable[0] : undefined;
}

/**
 * Bytes of WAL between `primary`'s last reported LSN and `node`'s (at least 0); null for the
 * primary itself, without one, or before the node has reported an LSN.
 */
export function lagBytes(node: NodeRecord, primary: NodeRecord | undefined): number | null {
  if (!primary || primary.nodeId === node.nodeId) return null;
  const own = parseLsn(node.reportedLsn);
  if (own === 0n) return null;
  const lag = parseLsn(primary.reportedLsn) - own;
  return lag > 0n ? Number(lag) : 0;
}

/**
 * What a client connecting to `node` gets (the `Connection` column of `pgha show state`):
 * `read-write`, `read-only`, or `none` (unreachable or stopped). The keeper reads its Postgres
 * every report interval, so its report decides while it is fresh (younger than
 * `nodeUnhealthyTimeoutMs`); the monitor's probe decides otherwise. The probe's own view only
 * is written when it changes and can be a round behind: right after a switchover it still
 * saw the old primary writable while its keeper already reported Postgres stopped.
 *
 * @param nowMs - the store's clock, ms since the epoch.
 * @param nodeUnhealthyTimeoutMs - the formation's setting (ms): an older report is not trusted.
 */
export function connectionOf(
  node: Pick<NodeRecord, 'health' | 'probeInRecovery' | 'postgresRunning' | 'isInRecovery' | 'reportedAt'>,
  nowMs: number,
  nodeUnhealthyTimeoutMs: number,
): NodeStateRow['connection'] {
  if (node.health === 'bad') return 'none';
  const reportFresh = node.reportedAt !== null && nowMs - new Date(node.reportedAt).getTime() <= nodeUnhealthyTimeoutMs;
  const inRecovery = reportFresh ? (node.postgresRunning ? node.isInRecovery : null) : node.health === 'good' ? node.probeInRecovery : null;
  return inRecovery === null ? 'none' : inRecovery ? 'read-only' : 'read-write';
}

/**
 * A node's goal with its group view (`NodeGoal`), read by `MonitorStore.readNodeGroup`
 * (`options.mirrored`: see there).
 *
 * @throws NotFoundError when the node or its formation does not exist.
 */
export async function nodeGoal(store: MonitorStore, nodeId: number, options: { mirrored?: boolean } = {}): Promise<NodeGoal> {
  const { node, formation, nodes } = await store.readNodeGroup(nodeId, options);
  return goalView(node, formation, nodes);
}

/**
 * {@link nodeGoal} from rows already read: `node`, its formation and its group's nodes that
 * are not dropped.
 */
export function goalView(node: NodeRecord, formation: FormationRecord, nodes: readonly NodeRecord[]): NodeGoal {
  const primary = primaryOf(nodes);
  const facts = groupFacts(formation, node.groupId, nodes, Date.now());
  let upstream = primary && primary.nodeId !== node.nodeId ? member(primary) : null;
  if (node.goalState === 'fast_forward') {
    // The most advanced other standby holds the WAL this node lacks.
    const ahead = nodes
      .filter((n) => n.nodeId !== node.nodeId && STANDBY_STATES.has(n.goalState as NodeState))
      .sort((a, b) => (parseLsn(b.reportedLsn) > parseLsn(a.reportedLsn) ? 1 : -1))[0];
    if (ahead && parseLsn(ahead.reportedLsn) > parseLsn(node.reportedLsn)) upstream = member(ahead);
  }
  return {
    nodeId: node.nodeId,
    name: node.name,
    formation: node.formationId,
    groupId: node.groupId,
    goalState: node.goalState,
    goalRevision: node.goalRevision,
    reportedState: node.reportedState,
    primary: primary ? member(primary) : null,
    upstream,
    nodes: nodes.map(member),
    synchronousStandbyNames: primary ? synchronousStandbyNames(facts, primary.nodeId) : '',
    destroy: node.destroyRequested,
    settings: keeperSettingsOf(formationSettings(formation)),
    clientNetworks: [...formation.clientNetworks],
    lagBytes: lagBytes(node, primary),
    postgresParameters: nodeParameters(node, formation, nodes),
    restartRequest: node.restartRequest,
  };
}

/**
 * Rows of `pgha show state` at the store's clock now: the answer of
 * `GET /v1/formations/:formation/state`, and of a monitor that does not lead the formation when
 * the leader does not answer (`ha/forward-to-leader.ts`).
 */
export async function currentFormationState(store: StoreSession, formationId: string): Promise<NodeStateRow[]> {
  return formationState(store, formationId, await store.nowMs());
}

/** Rows of `pgha show state`. */
export async function formationState(store: StoreSession, formationId: string, nowMs: number): Promise<NodeStateRow[]> {
  const formation = await store.formations.get(formationId);
  // Dropped nodes stay visible until their keeper confirms (then the record goes).
  const nodes = await store.nodes.list(formationId, { includeDropped: true });
  const notes = new Map<number, string>();
  const primaries = new Map<number, NodeRecord | undefined>();
  for (const groupId of new Set(nodes.map((n) => n.groupId))) {
    const members = nodes.filter((n) => n.groupId === groupId && n.goalState !== 'dropped');
    primaries.set(groupId, primaryOf(members));
    const note = groupNote(groupFacts(formation, groupId, members, nowMs));
    if (note) notes.set(note.nodeId, note.message);
  }
  const { nodeUnhealthyTimeoutMs } = formationSettings(formation);
  return nodes.map((n) => {
    return {
      name: n.name,
      node_id: n.nodeId,
      group_id: n.groupId,
      host: n.host,
      port: n.port,
      timeline: n.reportedTimeline,
      lsn: n.reportedLsn,
      connection: connectionOf(n, nowMs, nodeUnhealthyTimeoutMs),
      reported_state: n.reportedState,
      goal_state: n.goalState,
      health: n.health,
      last_report_ago_ms: n.reportedAt ? Math.max(0, Math.round(nowMs - new Date(n.reportedAt).getTime())) : null,
      note: notes.get(n.nodeId) ?? null,
      problem: n.reportedProblem,
      // A node registered before its keeper had an HTTP server runs it at the default address.
      keeper_http_url: `${n.postgresSsl ? 'https' : 'http'}://${n.httpAddress ?? formatHostPort(n.host, DEFAULT_KEEPER_HTTP_PORT)}`,
      lag_bytes: lagBytes(n, primaries.get(n.groupId)),
      transition_progress: n.transitionProgress
        ? { phase: n.transitionProgress.phase, transition: n.transitionInProgress, done_bytes: n.transitionProgress.doneBytes, total_bytes: n.transitionProgress.totalBytes, percent: progressPercent(n.transitionProgress) }
        : null,
      pending_restart: n.reportedParameters?.pendingRestart ?? [],
      restart: {
        requested: n.restartRequest,
        done: n.restartDone,
        requested_ago_ms: n.restartRequestedAt ? Math.max(0, Math.round(nowMs - new Date(n.restartRequestedAt).getTime())) : null,
      },
    };
  });
}

/**
 * The formation's multi-host URI: `target_session_attrs=read-write` (the primary), or
 * `prefer-standby` with `readOnly` (a standby, the primary when none answers); with
 * `sslmode=verify-full` when the formation's nodes use TLS (the client adds `sslrootcert`, the
 * CA it trusts: the monitor does not know the client's path to it).
 * Source: pg_auto_failover's `pgautofailover.formation_uri()`.
 */
export async function formationUri(store: StoreSession, formationId: string, readOnly = false): Promise<string> {
  const formation = await store.formations.get(formationId);
  const nodes = await store.nodes.list(formationId);
  const hosts = nodes.map((n) => formatHostPort(n.host, n.port)).join(',');
  const tls = nodes.length > 0 && nodes.every((n) => n.postgresSsl);
  return `postgres://${hosts}/${encodeURIComponent(formation.dbname)}?target_session_attrs=${readOnly ? 'prefer-standby' : 'read-write'}${tls ? '&sslmode=verify-full' : ''}`;
}

/** An event as the API answers it (`pgha show events`, the event stream). */
export function eventRow(e: EventRecord): EventRow {
  return {
    event_id: Number(e.eventId),
    event_time: new Date(e.eventTime).toISOString(),
    formation: e.formationId,
    group_id: e.groupId,
    node_id: e.nodeId,
    node_name: e.nodeName,
    reported_state: e.reportedState,
    old_goal_state: e.oldGoalState,
    new_goal_state: e.newGoalState,
    reason: e.reason,
    rule: e.rule,
  };
}
