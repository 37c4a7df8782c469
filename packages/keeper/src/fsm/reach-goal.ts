/**
 * Runs one transition of the keeper's table and logs it in fixed, greppable phrases, as
 * pg_auto_failover's `fsm.c` does: "FSM transition from X to Y: reason" then
 * "Transition complete: current state is now Y".
 */
import type { Logger } from 'pino';
import { PghaError, type NodeState } from '@pgha/shared';
import { findTransition } from './transition-table.js';
import { TRANSITION_FUNCTIONS, type TransitionContext } from './transitions.js';

/**
 * Runs the transition from `current` to `ctx.goalState`.
 *
 * @throws PghaError `PGHA_ERR_INTERNAL` when the table has no such row (a monitor/keeper drift
 * that the edge cross-check test exists to prevent), or whatever the transition throws.
 */
export async function reachGoal(current: NodeState, ctx: TransitionContext, log: Logger): Promise<void> {
  const row = findTransition(current, ctx.goalState);
  if (!row) {
    throw new PghaError('PGHA_ERR_INTERNAL', `no transition from ${current} to ${ctx.goalState} in the keeper's table`);
  }
  log.info(`FSM transition from "${current}" to "${ctx.goalState}": ${row.reason}`);
  await TRANSITION_FUNCTIONS[row.run](ctx);
  log.info(`Transition complete: current state is now "${ctx.goalState}"`);
}
