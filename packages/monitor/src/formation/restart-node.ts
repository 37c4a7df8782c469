/**
 * `POST /v1/formations/:formation/restart` (`pgha perform restart`): the restart of one node's
 * Postgres, accepted only while its group is healthy (`restartRefusal`), so that the monitor
 * itself, not only the CLI's order, keeps two nodes from being down at once.
 * Source: Patroni's `POST /restart` (refused while the member is not running); CloudNativePG's
 * rolling update (the primary last, by switchover).
 */
import { ConflictError, WRITABLE_STATES, restartRefusal, type NodeState, type RestartResponse } from '@pgha/shared';
import type { AppDeps } from '../app-deps.js';
import { nodeEvent } from '../store/event-records.js';
import { groupFacts } from '../store/group-facts.js';
import type { NodeRecord } from '../store/records.js';
import type { StoreTransaction } from '../store/store-port.js';

/** Rule id of the event written when the operator asks for a node's restart. */
export const RESTART_REQUESTED_RULE = 'restart-requested';

/**
 * Under the group's lock (held by `tx`): refuses when the group is not healthy
 * (`restartRefusal`). @throws ConflictError with the reason.
 */
async function assertHealthy(deps: AppDeps, tx: StoreTransaction, node: NodeRecord): Promise<void> {
  const read = await tx.readGroup(node.formationId, node.groupId);
  const refusal = restartRefusal(groupFacts(read.formation, node.groupId, read.nodes, read.nowMs, deps.driver.lag.lagMs(), deps.driver.diedLoudlyMs), node.nodeId);
  if (refusal) throw new ConflictError(refusal, { hint: 'nothing was changed; pgha show state shows every node' });
}

/**
 * Restarts `node`'s Postgres: a standby (or `inPlace`, the primary) by a restart request its
 * keeper carries out (`NodeGoal.restartRequest`, `pg_ctl restart -m fast`); the primary
 * otherwise by a switchover (the `perform-switchover` command), after which it rejoins as a
 * standby with a restarted Postgres. Either way in one transaction under the group's lock,
 * with a `restart-requested` event.
 *
 * @throws ConflictError (409) when the group is not healthy, when another restart is under
 *   way, or when the primary has no standby to hand over to; nothing is changed then.
 */
export async function restartNode(deps: AppDeps, node: NodeRecord, inPlace: boolean): Promise<RestartResponse> {
  const formation = node.formationId;
  const isPrimary = WRITABLE_STATES.has(node.goalState as NodeState);
  if (isPrimary && !inPlace) {
    // Said before the switchover's own refusal, which would not name --in-place.
    if ((await deps.store.nodes.list(formation, { groupId: node.groupId })).length < 2) {
      throw new ConflictError(`node ${node.nodeId} "${node.name}" is the only node of its group: no standby to hand over to`, { hint: `restart it in place: pgha perform restart --name ${node.name} --in-place (writes stop while it restarts)` });
    }
    const { assignments } = await deps.driver.command(formation, node.groupId, { type: 'perform-switchover' }, async (tx) => {
      await assertHealthy(deps, tx, node);
      await tx.events.append([nodeEvent(node, RESTART_REQUESTED_RULE, `node ${node.nodeId} "${node.name}": restart asked for by the operator, by a switchover (its Postgres restarts as it rejoins as a standby)`)]);
    });
    return { formation, node_id: node.nodeId, name: node.name, method: 'switchover', restart_request: node.restartRequest, assignments: assignments.map((a) => ({ node_id: a.nodeId, goal_state: a.goalState, reason: a.reason, rule: a.rule })) };
  }
  const request = await deps.store.transaction(async (tx) => {
    await tx.lockGroup(formation, node.groupId);
    await assertHealthy(deps, tx, node);
    const current = await tx.nodes.get(node.nodeId);
    const next = current.restartRequest + 1;
    await tx.nodes.update(node.nodeId, { restartRequest: next, restartRequestedAt: new Date(await tx.nowMs()) });
    await tx.events.append([nodeEvent(current, RESTART_REQUESTED_RULE, `node ${node.nodeId} "${node.name}": restart ${next} of its Postgres asked for by the operator, in place (its keeper restarts Postgres and reports it done once it streams again)`)]);
    await tx.goals.notify([node.nodeId]);
    return next;
  });
  return { formation, node_id: node.nodeId, name: node.name, method: 'in-place', restart_request: request, assignments: [] };
}
