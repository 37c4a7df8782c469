/**
 * Operator commands. Each runs through the group state machine in one transaction; a command
 * that cannot be done now answers 409 with the reason and changes nothing.
 *
 * - `POST /v1/formations/:formation/switchover` body `{}` → 200 `CommandResponse`; 404, 409.
 * - `POST /v1/formations/:formation/failover` body `{}` → 200; 404, 409. Also when the primary is unhealthy.
 * - `POST /v1/formations/:formation/promotion` body `{name}` → 200 (a `note` when it already is the primary); 404, 409.
 * - `POST /v1/formations/:formation/maintenance` body `{name, enable, allowFailover?}` → 200; 404, 409.
 * - `DELETE /v1/formations/:formation/nodes/:name?destroy=true|false` → 200; 404, 409.
 * - `POST /v1/formations/:formation/restart` body `{name, inPlace?}` → 200 `RestartResponse`; 400, 404,
 *   409 when the group is not healthy or another restart is under way (see `restartNode`).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { EmptyBody, FormationName, MaintenanceRequest, NodeName, PromotionRequest, RestartRequest, type CommandResponse, type OperatorEvent } from '@pgha/shared';
import type { AppDeps } from '../app-deps.js';
import { removeNode } from '../formation/remove-node.js';
import { restartNode } from '../formation/restart-node.js';
import { formationSettings } from '../store/group-facts.js';
import type { NodeRecord } from '../store/records.js';
import { validate } from './validate.js';

const FormationParams = z.object({ formation: FormationName });
const NodeParams = z.object({ formation: FormationName, name: NodeName });
const DropQuery = z.object({ destroy: z.enum(['true', 'false']).default('false') }).strict();

async function nodeByName(deps: AppDeps, formation: string, name: string): Promise<NodeRecord> {
  await deps.store.formations.get(formation);
  return deps.store.nodes.getByName(formation, name);
}

async function run(deps: AppDeps, formation: string, groupId: number, event: OperatorEvent, before?: Parameters<AppDeps['driver']['command']>[3]): Promise<CommandResponse> {
  const { assignments, note } = await deps.driver.command(formation, groupId, event, before);
  return { formation, assignments: assignments.map((a) => ({ node_id: a.nodeId, goal_state: a.goalState, reason: a.reason, rule: a.rule })), ...(note ? { note } : {}) };
}

/** Registers the operator command routes. */
export async function operationRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.post('/v1/formations/:formation/switchover', async (req) => {
    const { formation } = validate(FormationParams, req.params, 'params');
    validate(EmptyBody, req.body ?? {}, 'body');
    await deps.store.formations.get(formation);
    return run(deps, formation, 0, { type: 'perform-switchover' });
  });

  app.post('/v1/formations/:formation/failover', async (req) => {
    const { formation } = validate(FormationParams, req.params, 'params');
    validate(EmptyBody, req.body ?? {}, 'body');
    await deps.store.formations.get(formation);
    return run(deps, formation, 0, { type: 'perform-failover' });
  });

  app.post('/v1/formations/:formation/promotion', async (req) => {
    const { formation } = validate(FormationParams, req.params, 'params');
    const { name } = validate(PromotionRequest, req.body, 'body');
    const node = await nodeByName(deps, formation, name);
    return run(deps, formation, node.groupId, { type: 'perform-promotion', nodeId: node.nodeId });
  });

  app.post('/v1/formations/:formation/maintenance', async (req) => {
    const { formation } = validate(FormationParams, req.params, 'params');
    const body = validate(MaintenanceRequest, req.body, 'body');
    const node = await nodeByName(deps, formation, body.name);
    const event: OperatorEvent = body.enable
      ? { type: 'enable-maintenance', nodeId: node.nodeId, allowFailover: body.allowFailover }
      : { type: 'disable-maintenance', nodeId: node.nodeId };
    return run(deps, formation, node.groupId, event);
  });

  app.post('/v1/formations/:formation/restart', async (req) => {
    const { formation } = validate(FormationParams, req.params, 'params');
    const body = validate(RestartRequest, req.body, 'body');
    const node = await nodeByName(deps, formation, body.name);
    return restartNode(deps, node, body.inPlace ?? false);
  });

  app.delete('/v1/formations/:formation/nodes/:name', async (req) => {
    const { formation, name } = validate(NodeParams, req.params, 'params');
    const { destroy } = validate(DropQuery, req.query, 'query');
    const node = await nodeByName(deps, formation, name);
    const settings = formationSettings(await deps.store.formations.get(formation));
    const nowMs = await deps.store.nowMs();
    const keeperSilent = !node.reportedAt || nowMs - new Date(node.reportedAt).getTime() > settings.nodeUnhealthyTimeoutMs;
    return run(deps, formation, node.groupId, { type: 'drop-node', nodeId: node.nodeId }, async (tx) => {
      if (destroy === 'true') await tx.nodes.update(node.nodeId, { destroyRequested: true });
      // No keeper will report `dropped`: remove the node now (its data stays where it is).
      if (keeperSilent) await removeNode(tx, { ...node, goalState: 'dropped' }, `node ${node.nodeId} "${node.name}" removed: its keeper is not running, its data directory is left as it is`);
    });
  });
}
