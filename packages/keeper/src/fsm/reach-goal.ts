/**
 * Runs the keeper's table (`transition-table.ts`): one transition, logged in fixed, greppable
 * phrases, as pg_auto_failover's `fsm.c` does: "FSM transition from X to Y: reason" then
 * "Transition complete: current state is now Y"; or, in a reached state, the row that keeps it.
 */
import type { Logger } from 'pino';
import { PghaError, type NodeState } from '@pgha/shared/base';
import { findTransition, type KeeperTransition } from './transition-table.js';
import { TRANSITION_FUNCTIONS, type TransitionContext } from './transitions.js';

/**
 * The table's row for (current, goal).
 *
 * @throws PghaError `PGHA_ERR_INTERNAL` when the table has none (a monitor/keeper drift that
 *   the edge cross-check test exists to prevent).
 */
function rowFor(current: NodeState, goal: NodeState): KeeperTransition {
  const row = findTransition(current, goal);
  if (!row) {
    throw new PghaError('PGHA_ERR_INTERNAL', current === goal ? `no row keeping ${current} in the keeper's table` : `no transition from ${current} to ${goal} in the keeper's table`);
  }
  return row;
}

/**
 * Runs the transition from `current` to `ctx.goalState`.
 *
 * @throws PghaError `PGHA_ERR_INTERNAL` when the table has no such row (a monitor/keeper drift
 * that the edge cross-check test exists to prevent), or whatever the transition throws.
 */
export async function reachGoal(current: NodeState, ctx: TransitionContext, log: Logger): Promise<void> {
  const row = rowFor(current, ctx.goalState);
  log.info(`FSM transition from "${current}" to "${ctx.goalState}": ${row.reason}`);
  await TRANSITION_FUNCTIONS[row.run](ctx);
  log.info(`Transition complete: current state is now "${ctx.goalState}"`);
}

/**
 * Keeps the node in the state it has reached (current === goal), with the table's keep row: a
 * primary keeps running with the right settings, a standby keeps following, a fenced node
 * stays stopped. Logs nothing itself (it runs every tick; the loop logs the outcome).
 * Source: pg_auto_failover's `keeper_ensure_current_state`.
 *
 * @throws PghaError `PGHA_ERR_INTERNAL` when the table has no keep row for the state, or
 *   whatever the row's function throws.
 */
export async function ensureState(ctx: TransitionContext): Promise<void> {
  await TRANSITION_FUNCTIONS[rowFor(ctx.goalState, ctx.goalState).run](ctx);
}
