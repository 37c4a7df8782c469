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

/**
 * Goal states in which Postgres accepts writes. The group invariant is that at most one node
 * of a group holds one of these goals at any time. `stop_replication` is included: a node in
 * it is being promoted and may accept writes as soon as promotion ends.
 */
export const WRITABLE_STATES: ReadonlySet<NodeState> = new Set<NodeState>([
  'single',
  'wait_primary',
  'primary',
  'join_primary',
  'apply_settings',
  'stop_replication',
]);

/** Goal states of a primary that is being fenced or has been fenced. */
export const DEMOTING_STATES: ReadonlySet<NodeState> = new Set<NodeState>([
  'draining',
  'demote_timeout',
  'demoted',
]);

/** Goal states in which Postgres runs as a hot standby following the primary. */
export const STANDBY_STATES: ReadonlySet<NodeState> = new Set<NodeState>([
  'catchingup',
  'secondary',
  'prepare_promotion',
  'report_lsn',
  'fast_forward',
  'join_secondary',
]);

/** True when `state` is one of {@link NODE_STATES}. */
export function isNodeState(state: string): state is NodeState {
  return (NODE_STATES as readonly string[]).includes(state);
}
