/**
 * Every (from → goal) edge the monitor can assign, where `from` is the node's reported
 * state or its previous goal (a keeper may still be on its way to the previous goal when
 * the next is assigned). The keeper's transition table must have a row for each: a test
 * cross-checks them, as pg_auto_failover learned to after issue #1168.
 */
import { NODE_STATES, OUTGOING_PRIMARY_STATES, PRIMARY_STATES, STANDBY_STATES, type NodeState } from '../states.js';

type Edge = readonly [NodeState, NodeState];

function all(from: Iterable<NodeState>, to: Iterable<NodeState>): Edge[] {
  const goals = [...to];
  return [...from].flatMap((f) => goals.filter((t) => t !== f).map((t) => [f, t] as const));
}

const PRIMARY = [...PRIMARY_STATES];
const STANDBY = [...STANDBY_STATES];
const OUTGOING = [...OUTGOING_PRIMARY_STATES];

/** `[from, goal]` pairs. */
export const MONITOR_EDGES: ReadonlyArray<Edge> = [
  // Bootstrap and standbys joining (first-node-single, register-standby, standby-start-catchingup).
  ['init', 'single'],
  ['init', 'wait_standby'],
  ['init', 'catchingup'],
  ['wait_standby', 'catchingup'],
  // A primary changing its replication settings (register-standby, enable-sync, standby-failed,
  // sync-standby-gone, lone-primary-single, standby-start-catchingup, promotion-done).
  ...all(PRIMARY, PRIMARY),
  ['stop_replication', 'wait_primary'],
  ['prepare_promotion', 'wait_primary'],
  // Standbys following, catching up, electing, fast-forwarding and joining a new primary.
  ...all(STANDBY, STANDBY),
  ...all(STANDBY, ['stop_replication']),
  // A primary leaving: failover (demote_timeout), switchover (draining), maintenance.
  ...all([...PRIMARY, 'stop_replication'], OUTGOING),
  ...all([...PRIMARY, ...OUTGOING], ['demoted', 'maintenance']),
  // Rejoining as a standby (demoted-rejoin, disable-maintenance).
  ...all(['demoted', 'demote_timeout', 'draining', 'maintenance', 'prepare_maintenance', 'wait_maintenance', ...PRIMARY], ['catchingup']),
  // Standby maintenance.
  ...all(['secondary', 'catchingup'], ['wait_maintenance']),
  ...all(['wait_maintenance', 'secondary', 'catchingup'], ['maintenance']),
  // Dropping a node, from whatever state it is in.
  ...all(NODE_STATES.filter((s) => s !== 'dropped'), ['dropped']),
];
