/**
 * Every (from → goal) edge the monitor can assign, where `from` is the node's reported
 * state or its previous goal (a keeper may still be on its way to the previous goal when
 * the next is assigned). The keeper's transition table must have a row for each: a test
 * cross-checks them, as pg_auto_failover learned to after issue #1168.
 */
import type { NodeState } from '../states.js';

/** `[from, goal]` pairs. */
export const MONITOR_EDGES: ReadonlyArray<readonly [NodeState, NodeState]> = [
  // first-node-single
  ['init', 'single'],
  // register-standby
  ['init', 'wait_standby'],
  ['single', 'wait_primary'],
  ['wait_primary', 'join_primary'],
  ['primary', 'join_primary'],
  // standby-start-catchingup
  ['wait_standby', 'catchingup'],
  ['init', 'catchingup'],
  ['join_primary', 'primary'],
  ['join_primary', 'wait_primary'],
  ['single', 'join_primary'],
  ['wait_primary', 'primary'],
  ['primary', 'wait_primary'],
  // standby-caught-up / standby-failed
  ['catchingup', 'secondary'],
  ['secondary', 'catchingup'],
  // failover-start
  ['primary', 'demote_timeout'],
  ['join_primary', 'demote_timeout'],
  ['wait_primary', 'demote_timeout'],
  ['secondary', 'prepare_promotion'],
  ['catchingup', 'prepare_promotion'],
  // promote-candidate
  ['prepare_promotion', 'stop_replication'],
  ['secondary', 'stop_replication'],
  // candidate-changed
  ['prepare_promotion', 'secondary'],
  // promotion-done
  ['stop_replication', 'wait_primary'],
  ['prepare_promotion', 'wait_primary'],
  ['demote_timeout', 'demoted'],
  ['primary', 'demoted'],
  ['wait_primary', 'demoted'],
  // demoted-rejoin
  ['demoted', 'catchingup'],
  ['demote_timeout', 'catchingup'],
  ['primary', 'catchingup'],
];
