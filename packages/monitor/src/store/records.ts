/**
 * The records of the monitor's store, as every store adapter gives and takes them: plain
 * TypeScript objects in the domain's terms (`@pgha/shared` states, LSNs as `X/Y` text, times as
 * `Date`), never a database row type. The Postgres adapter's rows have exactly these shapes
 * (Kysely's `CamelCasePlugin` names the columns), so it hands them over as they are read.
 */
import { formatLsn, parseLsn } from '@pgha/shared/base';
import type { FormationSettings, NodeHealth, NodeReport, NodeState, PostgresParameter, ReportedParameters, TransitionProgress } from '@pgha/shared';

/** A formation. */
export interface FormationRecord {
  formationId: string;
  /** `pgsql`. */
  kind: string;
  dbname: string;
  numberSyncStandbys: number;
  /** Settings stored for this formation; a missing one has its default (see `formationSettings`). */
  settings: Partial<Record<keyof FormationSettings, number>>;
  /**
   * The networks clients may connect from to every node (`ADDRESS/PREFIX` each, checked by
   * `parseClientNetworks`); empty: only the formation's own hosts.
   */
  clientNetworks: string[];
  /** The `pgha_replication` role's password, given to every node at registration. */
  replicationPassword: string;
  /** The `pgha_monitor` probe role's password. */
  monitorProbePassword: string;
  /** Its Postgres parameters (`pgha set postgresql`), by name. */
  postgresParameters: PostgresParameter[];
}

/** A node: what it registered with, its keeper's last report, its goal and its health. */
export interface NodeRecord {
  nodeId: number;
  formationId: string;
  groupId: number;
  name: string;
  host: string;
  port: number;
  /** 0..100; 0: never promoted. */
  candidatePriority: number;
  replicationQuorum: boolean;
  reportedState: NodeState;
  goalState: NodeState;
  /** When its keeper last reported (the store's clock); null: never. */
  reportedAt: Date | null;
  postgresRunning: boolean;
  isInRecovery: boolean | null;
  /** `X/Y`. */
  reportedLsn: string;
  reportedTimeline: number;
  upstreamStreaming: boolean;
  /** The last report in which its WAL receiver streamed; null: never. */
  lastStreamingAt: Date | null;
  transitionInProgress: string | null;
  transitionProgress: TransitionProgress | null;
  /** The monitor's probe of its Postgres (see `health-rule.ts`). */
  health: NodeHealth;
  /** Consecutive failed probes, counted up to `healthProbeRetries`. */
  healthFailures: number;
  /** When a probe result was last written; null: never. */
  healthCheckedAt: Date | null;
  /** What the last successful probe saw: `pg_is_in_recovery()`; null: no probe succeeded yet. */
  probeInRecovery: boolean | null;
  /** When the monitor last changed its goal. */
  goalChangedAt: Date;
  /**
   * The store revision of its goal (decimal text of a non-negative 64-bit integer): larger
   * after each goal write than after every earlier one of the node, registration included
   * (see `GoalRepository.assign`). Keepers never act on a goal of a lower revision than one
   * they applied (`NodeGoal.goalRevision`).
   */
  goalRevision: string;
  createdAt: Date;
  /**
   * Its keeper's view on a primary: the `synchronous_standby_names` Postgres runs with; null on
   * a running standby. Kept from the last report in which Postgres ran while its keeper reports
   * it down: a failover after the primary's Postgres died counts the standbys it last waited
   * for, a dropped one included (`synchronousSet` of `@pgha/shared`).
   */
  reportedSyncStandbyNames: string | null;
  /**
   * `X/Y`: where its shutdown checkpoint starts, as its keeper last reported it once its control
   * file said `shut down` (a primary stopped cleanly; see `NodeFacts.shutdownCheckpointLsn`);
   * null while Postgres runs, after a crash, on a standby, and from an older keeper.
   */
  shutdownCheckpointLsn: string | null;
  /** `pgha drop node --destroy`: its keeper removes the data directory once dropped. */
  destroyRequested: boolean;
  /** The problem its keeper last reported (a state that cannot progress); null: none. */
  reportedProblem: string | null;
  /** Whether its Postgres accepts TLS (false: created with `--no-ssl`). */
  postgresSsl: boolean;
  /** Where its keeper serves HTTP (`HOST:PORT`); null: registered by an older keeper. */
  httpAddress: string | null;
  /** Its last self-fence recorded as an event (its keeper's clock); null: none. */
  lastSelfFenceAt: Date | null;
  /** Its own Postgres parameters, over its formation's (`pgha set postgresql … --name`), by name. */
  postgresParameters: PostgresParameter[];
  /** What its keeper last reported of its Postgres parameters; null: not reported. */
  reportedParameters: ReportedParameters | null;
  /** How many restarts of its Postgres the operator asked for (`pgha perform restart`); 0: none. */
  restartRequest: number;
  /** When the last restart was asked for (the store's clock); null: never. */
  restartRequestedAt: Date | null;
  /** The last restart request its keeper reported carried out; a restart is under way while below `restartRequest`. */
  restartDone: number;
}

/** What a node registers with (`pgha keeper create`). */
export interface NewNode {
  name: string;
  host: string;
  port: number;
  candidatePriority: number;
  replicationQuorum: boolean;
  postgresSsl: boolean;
  httpAddress: string | null;
}

/**
 * A position in the event stream, opaque outside the adapter that made it: the events after it
 * are those not read yet. {@link STREAM_START} is before every event in every adapter.
 */
export type EventCursor = string & { readonly __eventCursor: unique symbol };

/** Before every event. */
export const STREAM_START = '' as EventCursor;

/** An event: a goal assignment with its reason, or a note about a node or a formation. */
export interface EventRecord {
  /** Decimal text (a 64-bit id); the `id:` of the event stream, resumable with `cursorAfterEvent`. */
  eventId: string;
  eventTime: Date;
  formationId: string;
  groupId: number;
  /** 0 for an event about the whole formation (see `FORMATION_EVENT_NODE`). */
  nodeId: number;
  nodeName: string;
  /** The node's states when the event was written; `''` for an event about a formation. */
  reportedState: string;
  oldGoalState: string;
  newGoalState: string;
  /** `X/Y`. */
  reportedLsn: string;
  /** The stable id of the rule or command that wrote it (`first-node-single`, `settings-changed`…). */
  rule: string;
  reason: string;
}

/** An event to write (see `EventWriter.append`): its id and time are the store's. */
export type NewEvent = Omit<EventRecord, 'eventId' | 'eventTime'>;

/** What one read of the event stream returned. */
export interface EventBatch {
  /** Events after the cursor, in stream order. */
  events: EventRecord[];
  /** The cursor after `events` (the one given when there are none). */
  cursor: EventCursor;
  /** Events after the cursor exist that cannot be read yet (a transaction before them still runs): read again soon. */
  heldBack: boolean;
}

/** What `EventStream.countOperationsAfter` counted. */
export interface OperationCounts {
  /** New failovers and switchovers per formation since the cursor. */
  counts: { formationId: string; kind: 'failover' | 'switchover'; n: number }[];
  cursor: EventCursor;
}

/** A group as read under its lock: its formation and its nodes that are not dropped, by node id. */
export interface GroupRead {
  formationId: string;
  groupId: number;
  formation: FormationRecord;
  nodes: NodeRecord[];
}

/** A node with its formation and its group's nodes that are not dropped, by node id (`MonitorStore.readNodeGroup`). */
export interface NodeGroupRead {
  node: NodeRecord;
  formation: FormationRecord;
  nodes: NodeRecord[];
}

/** One keeper's report as `StoreTransaction.recordReports` recorded it. */
export interface RecordedReport {
  /** The node after the report (as it was when the report was not recorded). */
  node: NodeRecord;
  /** False when its goal is `dropped` and its keeper reports `dropped`: nothing was written. */
  recorded: boolean;
  /** What the report replaced: the node's reported problem and last recorded self-fence before it. */
  before: Pick<NodeRecord, 'reportedProblem' | 'lastSelfFenceAt'>;
  /**
   * False when the report changed no fact a decision reads but the time and the LSN: the same
   * persisted facts, no transition under way, its previous report heard by this monitor within
   * `freshWithinMs` (`driver/steady-group.ts`). Undefined when the store does
   * not tell (the Postgres adapter): the group is decided.
   */
  factsChanged?: boolean;
}

/** What `StoreTransaction.recordReports` recorded and read. */
export interface ReportsRead {
  /** Every reporting node that exists, by id. */
  inputs: Map<number, RecordedReport>;
  /** The groups of the nodes whose reports were recorded, keyed by {@link groupKey}. */
  groups: Map<string, GroupRead>;
  /** The store's clock (ms since the epoch) when the groups were read. */
  nowMs: number;
}

/**
 * Probe results of one node since they were last written, merged in order: `reset` when one
 * succeeded (then `failures` counts the failures after the last success, and `inRecovery` is
 * what that success saw), otherwise `failures` failed probes in a row.
 */
export interface MergedProbes {
  nodeId: number;
  reset: boolean;
  failures: number;
  inRecovery: boolean | null;
  /** `healthProbeRetries` of the node's formation. */
  retries: number;
}

/** A node whose health changed when probe results were written. */
export interface HealthChange {
  nodeId: number;
  formationId: string;
  groupId: number;
  name: string;
  health: NodeHealth;
}

/** A node the prober probes, with what it needs to decide how often and as whom. */
export interface ProbeTargetRecord extends Pick<NodeRecord, 'nodeId' | 'formationId' | 'groupId' | 'name' | 'host' | 'port' | 'health' | 'healthFailures' | 'probeInRecovery' | 'reportedState' | 'postgresSsl'> {
  /** The formation's probe password. */
  monitorProbePassword: string;
  /** The formation's stored settings. */
  settings: FormationRecord['settings'];
  /** How long ago its keeper last reported (ms, the store's clock); null: never. */
  sinceReportMs: number | null;
  /**
   * How long ago its probe state (`health`, `healthFailures`, `probeInRecovery`) was last
   * written or refreshed (`healthCheckedAt`, ms, the store's clock); null: never. With the probe
   * state, what the prober needs to tell a result that the health rule would not write
   * (`mustWriteHealth`) without asking the store again.
   */
  checkedAgoMs: number | null;
}

/** Every formation and every node that is not dropped, read at once, with the store's clock. */
export interface StoreSnapshot {
  formations: FormationRecord[];
  /** By formation, group and node id. */
  nodes: NodeRecord[];
  nowMs: number;
}

/** Key of a group in maps: formation and group id. */
export function groupKey(formationId: string, groupId: number): string {
  return `${formationId}\u0000${groupId}`;
}

/** A report's `shutdownCheckpointLsn` as the stores keep it (`NodeRecord.shutdownCheckpointLsn`): `X/Y` in capitals, or null. */
export function reportedShutdownCheckpointLsn(report: NodeReport): string | null {
  return report.shutdownCheckpointLsn == null ? null : formatLsn(parseLsn(report.shutdownCheckpointLsn));
}

/**
 * Whether a keeper's report may be recorded as a heartbeat (`MonitorStore.recordHeartbeats`):
 * it carries no self-fence (recorded with its event, durably) and no transition (whose start,
 * progress and end a decision reads). Whether it changes a persisted fact only the store knows.
 */
export function isHeartbeatReport(report: NodeReport): boolean {
  return !report.selfFence && (report.transitionInProgress ?? null) === null && (report.transitionProgress ?? null) === null;
}
