/**
 * Node states, spelled as pg_auto_failover spells them (`src/bin/pg_autoctl/state.h`).
 * A node has a reported state (what its keeper last reported) and a goal state (what the
 * monitor assigned); both take values from this list.
 */
export const NODE_STATES = [
  'init',
  'single',
  'wait_primary',
  'primary',
  'draining',
  'demote_timeout',
  'demoted',
  'catchingup',
  'secondary',
  'prepare_promotion',
  'stop_replication',
  'wait_standby',
  'maintenance',
  'join_primary',
  'apply_settings',
  'prepare_maintenance',
  'wait_maintenance',
  'report_lsn',
  'fast_forward',
  'join_secondary',
  'dropped',
] as const;

/** One of {@link NODE_STATES}. */
export type NodeState = (typeof NODE_STATES)[number];

/*
 * State sets. Each is defined once, here, named by what it means; code in every package uses
 * these instead of listing states (a hand-kept list drifts: `prepare_promotion` was in one
 * `FOLLOWING` and not in another). A set's TSDoc says what it means and who reads it. The
 * sets are goal states unless their TSDoc says otherwise; the keeper reads some of them for
 * the states it has reached, with the same meaning.
 */

/**
 * States of a primary that runs: writable, settled or changing its replication settings
 * (`single`, `wait_primary`, `primary`, `join_primary`, `apply_settings`). Used by the
 * monitor's edges (`MONITOR_EDGES`), the CLI (a new primary after a switchover) and the
 * keeper's transition table (its rows `PRIMARY × PRIMARY → configurePrimary`).
 */
export const PRIMARY_STATES: ReadonlySet<NodeState> = new Set<NodeState>([
  'single',
  'wait_primary',
  'primary',
  'join_primary',
  'apply_settings',
]);

/**
 * Goal states in which Postgres accepts writes: {@link PRIMARY_STATES} and `stop_replication`
 * (a node in it is being promoted and may accept writes as soon as promotion ends). The group
 * invariant is that at most one node of a group holds one of these goals at any time. Used by
 * the monitor's guards (`writableNode`), its views (`primaryOf`) and settings checks, the CLI's
 * `pgha watch`, and the keeper's health routes and partition rule.
 */
export const WRITABLE_STATES: ReadonlySet<NodeState> = new Set<NodeState>([...PRIMARY_STATES, 'stop_replication']);

/**
 * Goal states of a hot standby (Postgres in recovery, following a primary or, during
 * `fast_forward`, the most advanced standby), including the candidate chosen for promotion
 * (`prepare_promotion`). Used by the monitor's edges (standbys move freely among these), the
 * goal view (the upstream of a `fast_forward` node) and the election ({@link ELECTORATE_STATES}).
 */
export const STANDBY_STATES: ReadonlySet<NodeState> = new Set<NodeState>([
  'catchingup',
  'secondary',
  'prepare_promotion',
  'report_lsn',
  'fast_forward',
  'join_secondary',
]);

/**
 * {@link STANDBY_STATES} but `prepare_promotion`: a standby that follows an upstream and is not
 * the candidate being promoted. Used by `synchronousStandbyNames` (with number_sync_standbys ≥
 * 1, quorum standbys in these stay in the list) and by the keeper's transition table (its rows
 * `FOLLOWING × FOLLOWING → followPrimary`; `prepare_promotion` has rows of its own).
 */
export const FOLLOWING_STATES: ReadonlySet<NodeState> = new Set<NodeState>(
  [...STANDBY_STATES].filter((s) => s !== 'prepare_promotion'),
);

/**
 * States in which a standby's WAL receiver must stream from its upstream: the
 * {@link FOLLOWING_STATES} but `report_lsn` (an election runs because the primary is gone),
 * and `wait_maintenance` (the standby keeps streaming while the primary stops counting on it).
 * Used by the keeper for the state it has reached: not streaming in one of these for a while
 * is a problem it reports.
 */
export const STREAMING_STATES: ReadonlySet<NodeState> = new Set<NodeState>([
  ...[...FOLLOWING_STATES].filter((s) => s !== 'report_lsn'),
  'wait_maintenance',
]);

/**
 * Goal states of the promotion pipeline of a failover or switchover: standbys reporting their
 * LSN (`report_lsn`), the candidate fetching missing WAL (`fast_forward`), preparing
 * (`prepare_promotion`) and promoting (`stop_replication`). While a node holds one, no new
 * election starts (rules `election-restart`, `election`) and `pgha show state` explains no
 * stalled failover.
 */
export const PROMOTION_STATES: ReadonlySet<NodeState> = new Set<NodeState>([
  'report_lsn',
  'fast_forward',
  'prepare_promotion',
  'stop_replication',
]);

/**
 * Goal states of the one node chosen for promotion: {@link PROMOTION_STATES} but `report_lsn`
 * (every standby votes; only the winner goes on). Only a node with candidate priority > 0 may
 * hold one, and at most one node at a time (the shared package's safety tests check both).
 */
export const CANDIDATE_STATES: ReadonlySet<NodeState> = new Set<NodeState>(
  [...PROMOTION_STATES].filter((s) => s !== 'report_lsn'),
);

/**
 * Goal states of a primary being replaced by a failover (`demote_timeout`), a switchover
 * (`draining`) or a switchover for its maintenance (`prepare_maintenance`), until the new
 * primary is promoted. Used by the monitor's plans (`outgoingPrimary`) and edges.
 */
export const OUTGOING_PRIMARY_STATES: ReadonlySet<NodeState> = new Set<NodeState>([
  'draining',
  'demote_timeout',
  'prepare_maintenance',
]);

/**
 * Goal states of a primary leaving in a planned switchover ({@link OUTGOING_PRIMARY_STATES}
 * but `demote_timeout`): its keeper stops Postgres cleanly, with a checkpoint first, and
 * reports its shutdown checkpoint (`NodeFacts.shutdownCheckpointLsn`), which the candidate's
 * promotion waits for (`switchoverProof`).
 */
export const PLANNED_STOP_STATES: ReadonlySet<NodeState> = new Set<NodeState>(['draining', 'prepare_maintenance']);

/**
 * Goal states of a primary that is being fenced or has been fenced (`draining`,
 * `demote_timeout`, `demoted`). Used by the keeper's transition table.
 */
export const DEMOTING_STATES: ReadonlySet<NodeState> = new Set<NodeState>([
  'draining',
  'demote_timeout',
  'demoted',
]);

/**
 * States of a former primary whose Postgres must not take writes: {@link DEMOTING_STATES} and
 * `prepare_maintenance` (the same as {@link OUTGOING_PRIMARY_STATES} and `demoted`). The keeper
 * stops Postgres to reach one (its transition table's `FENCED` rows, `stopPostgres`).
 */
export const FENCED_STATES: ReadonlySet<NodeState> = new Set<NodeState>([...DEMOTING_STATES, 'prepare_maintenance']);

/**
 * Goal states that put the group in its `failover` phase (`groupPhase`): the
 * {@link PROMOTION_STATES}, and a primary stopping for a switchover (`draining`,
 * `prepare_maintenance`). Not `demote_timeout`: a failed primary whose election could not
 * start leaves the group `steady`, where the steady rules (and `election-restart`) apply.
 */
export const FAILOVER_PHASE_STATES: ReadonlySet<NodeState> = new Set<NodeState>([
  ...PROMOTION_STATES,
  'draining',
  'prepare_maintenance',
]);

/**
 * Goal states of a node that may hold acknowledged WAL of the old primary: the
 * {@link STANDBY_STATES}, the one promoting (`stop_replication`) and a standby leaving for
 * maintenance (`wait_maintenance`, still streaming). The election counts these toward the
 * synchronous set and compares their LSNs (`synchronousSet`, `reportingStandbys`).
 */
export const ELECTORATE_STATES: ReadonlySet<NodeState> = new Set<NodeState>([
  ...STANDBY_STATES,
  'stop_replication',
  'wait_maintenance',
]);

/**
 * Goal states of a group-level transition under way: a failover or switchover
 * ({@link OUTGOING_PRIMARY_STATES}, {@link PROMOTION_STATES}) or a standby being added
 * (`wait_standby`, the primary's `join_primary`). Operator commands are refused while a node
 * holds one (`planCommand`).
 */
export const TRANSITION_IN_PROGRESS_STATES: ReadonlySet<NodeState> = new Set<NodeState>([
  ...OUTGOING_PRIMARY_STATES,
  ...PROMOTION_STATES,
  'join_primary',
  'wait_standby',
]);

/**
 * Goal states of a node in or on its way into operator maintenance (`prepare_maintenance`
 * for a primary, `wait_maintenance` for a standby, then `maintenance`). Used by `planCommand`
 * (`pgha maintenance enable` refuses a node already in one).
 */
export const MAINTENANCE_STATES: ReadonlySet<NodeState> = new Set<NodeState>([
  'prepare_maintenance',
  'wait_maintenance',
  'maintenance',
]);

/**
 * Goal states of a node of a healthy group, settled and serving: the writable primary
 * (`primary`, or `single` alone) and the caught-up standbys (`secondary`). `pgha perform
 * restart` restarts a node only while every node of its group has reached one of these
 * (`restartRefusal`).
 */
export const SERVING_STATES: ReadonlySet<NodeState> = new Set<NodeState>(['primary', 'single', 'secondary']);

/** True when `state` is one of {@link NODE_STATES}. */
export function isNodeState(state: string): state is NodeState {
  return (NODE_STATES as readonly string[]).includes(state);
}
