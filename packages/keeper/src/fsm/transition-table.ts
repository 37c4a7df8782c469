/**
 * The keeper's transition table: for a (current, goal) pair, the one local action that takes
 * the node there, and, for current === goal, the one that keeps it there (run on every tick in
 * a reached state). It is the only place that says what the keeper does for a pair: the
 * runners (`fsm/reach-goal.ts`) look it up, and `docs/state-machine.md` is generated from it
 * (`npm run docs:state-machine`). Pure data, so tests can cross-check it against the monitor's
 * edges (`MONITOR_EDGES`) without Postgres. Source: pg_auto_failover's `KeeperFSM[]` in
 * `fsm.c`, whose keep rows live apart, in `keeper_ensure_current_state`.
 */
import { DEMOTING_STATES, FENCED_STATES, FOLLOWING_STATES, NODE_STATES, PRIMARY_STATES, type NodeState } from '@pgha/shared/base';

/** Names of the transition functions in `transitions.ts`. */
export type TransitionName =
  | 'initPrimary'
  | 'configurePrimary'
  | 'waitForPrimary'
  | 'initStandby'
  | 'followPrimary'
  | 'prepareForPromotion'
  | 'promoteStandby'
  | 'startPostgres'
  | 'stopPostgres'
  | 'rewindOrBaseBackup'
  | 'leavePostgresAlone'
  | 'dropNode';

/**
 * One row: from `current` to `goal`, run `run`; `reason` is logged with the transition. A row
 * with `current === goal` keeps the reached state instead (see `ensureState`).
 */
export interface KeeperTransition {
  readonly current: NodeState;
  readonly goal: NodeState;
  readonly run: TransitionName;
  readonly reason: string;
}

const PRIMARY = [...PRIMARY_STATES];
const FOLLOWING = [...FOLLOWING_STATES];
const FENCED = [...FENCED_STATES];
const DEMOTING = [...DEMOTING_STATES];
const ALL: NodeState[] = NODE_STATES.filter((s) => s !== 'dropped');

/** A row from each of `from` to each of `to`, but never from a state to itself (see {@link keep}). */
function rows(from: NodeState[], to: NodeState[], run: TransitionName, reason: string): KeeperTransition[] {
  return from.flatMap((current) => to.filter((goal) => goal !== current).map((goal) => ({ current, goal, run, reason })));
}

/** A keep row (current === goal) for each of `states`. */
function keep(states: NodeState[], run: TransitionName, reason: string): KeeperTransition[] {
  return states.map((state) => ({ current: state, goal: state, run, reason }));
}

/**
 * Every (current, goal) pair the keeper knows, first match wins (see `findTransition`): one
 * keep row per state, then the transitions.
 */
export const KEEPER_TRANSITIONS: readonly KeeperTransition[] = [
  // Keeping a reached state (current === goal), on every tick.
  ...keep(['init'], 'leavePostgresAlone', 'registered: nothing to set up until the monitor assigns a first goal'),
  ...keep(['wait_standby'], 'waitForPrimary', 'wait for the primary to accept this standby'),
  ...keep(PRIMARY, 'configurePrimary', 'keep Postgres running as the primary with the goal\'s pg_hba, slots and synchronous_standby_names (nothing to do while they are applied)'),
  ...keep([...FOLLOWING, 'wait_maintenance'], 'followPrimary', 'keep following the upstream as a hot standby; rewind a standby whose WAL diverged from the primary\'s timeline'),
  ...keep(['prepare_promotion'], 'prepareForPromotion', 'chosen for promotion: keep Postgres running so that its LSN is reported'),
  ...keep(['stop_replication'], 'startPostgres', 'promoted: keep Postgres running until the monitor confirms the new primary'),
  ...keep(FENCED, 'stopPostgres', 'fenced: keep Postgres stopped so that it takes no writes'),
  ...keep(['maintenance'], 'leavePostgresAlone', 'maintenance: the keeper leaves Postgres to the operator'),
  ...keep(['dropped'], 'leavePostgresAlone', 'dropped from the formation: nothing left to keep'),
  // Transitions (current !== goal).
  { current: 'init', goal: 'single', run: 'initPrimary', reason: 'start as the first node: initdb (or adopt), start Postgres, create roles' },
  { current: 'init', goal: 'wait_standby', run: 'waitForPrimary', reason: 'wait for the primary to accept this standby' },
  ...rows(['init', 'wait_standby'], ['catchingup'], 'initStandby', 'base backup from the primary, then stream from it'),
  ...rows(PRIMARY, PRIMARY, 'configurePrimary', 'apply pg_hba, replication slots and synchronous_standby_names for the goal'),
  ...rows(FOLLOWING, FOLLOWING, 'followPrimary', 'follow the current primary as a hot standby'),
  ...rows(FOLLOWING, ['prepare_promotion'], 'prepareForPromotion', 'chosen for promotion: make sure Postgres runs and report the LSN'),
  ...rows(['prepare_promotion'], FOLLOWING, 'followPrimary', 'promotion called off: follow the current primary again'),
  ...rows([...FOLLOWING, 'prepare_promotion'], ['stop_replication'], 'promoteStandby', 'promote Postgres: stop replaying WAL and take writes'),
  ...rows(['stop_replication', 'prepare_promotion'], PRIMARY, 'promoteStandby', 'finish promotion and apply the primary settings'),
  ...rows(['demote_timeout'], PRIMARY, 'configurePrimary', 'the node fenced itself in a network partition and the monitor kept it primary: start Postgres again as the primary'),
  ...rows(['demote_timeout'], ['stop_replication'], 'promoteStandby', 'the node fenced itself while being promoted (no monitor answered for a while, as during a change of leading monitor) and the monitor still promotes it: start Postgres and finish the promotion'),
  ...rows([...PRIMARY, 'stop_replication', 'prepare_promotion', ...FENCED], FENCED, 'stopPostgres', 'fence: stop Postgres so that it takes no more writes'),
  ...rows([...FENCED, ...PRIMARY, 'stop_replication', 'maintenance', 'wait_maintenance'], ['catchingup'], 'rewindOrBaseBackup', 'rejoin as a standby: pg_rewind when the data was a primary (none after a crash whose WAL ends before the new timeline forked), or a fresh base backup when rewinding fails'),
  ...rows(['secondary', 'catchingup'], ['wait_maintenance'], 'followPrimary', 'keep streaming while the primary stops counting on this standby'),
  ...rows(['wait_maintenance', 'secondary', 'catchingup', 'prepare_maintenance', ...PRIMARY, ...DEMOTING], ['maintenance'], 'leavePostgresAlone', 'maintenance: the keeper leaves Postgres to the operator'),
  ...rows(ALL, ['dropped'], 'dropNode', 'dropped from the formation: stop Postgres (and remove its data when asked)'),
];

/**
 * The row for (current, goal), if the keeper knows one; for current === goal, the row that
 * keeps the state.
 *
 * ### Examples
 * ```ts
 * findTransition('secondary', 'prepare_promotion')?.run // 'prepareForPromotion'
 * ```
 */
export function findTransition(current: NodeState, goal: NodeState): KeeperTransition | undefined {
  return KEEPER_TRANSITIONS.find((t) => t.current === current && t.goal === goal);
}
