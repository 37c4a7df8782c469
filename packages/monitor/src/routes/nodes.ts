/**
 * Keeper-facing routes.
 *
 * - `POST /v1/formations/:formation/nodes` body `RegisterNodeRequest` → 201
 *   `RegisterNodeResponse` (200 when the same node registers again) with a new node token
 *   (and, given `tlsPublicKey` and a monitor CA, a certificate); its `clientNetworks` join the
 *   formation's; 400 wrong shape or an invalid client network, 404 unknown formation, 409 name
 *   or host:port taken.
 * - `POST /v1/nodes/:nodeId/report` body `NodeReport` → 200 `NodeGoal`; 400, 404.
 * - `GET /v1/nodes/:nodeId/goal?known=STATE&wait_ms=N` → 200 `NodeGoal` as soon as the
 *   goal differs from `known`, or after `wait_ms` (at most 30 000; then the goal as read when
 *   the request came, since none was committed meanwhile), or at once when the loud-death
 *   watch wants the keeper's report now (`LoudDeathWatch.nudgeWaiter`); 400, 404.
 * - `POST /v1/nodes/:nodeId/token` body `RotateNodeTokenRequest` → 200
 *   `RotateNodeTokenResponse`: the node's token is the one in the body from the commit on (the
 *   old one is refused), with a `node-token-rotated` event; 400, 404. Only the node's own
 *   token opens it (`auth.ts`).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FORWARDED_BY_HEADER } from '../ha/forward-to-leader.js';
import { z } from 'zod';
import { FormationName, NodeIdText, NodeReport, NodeStateSchema, RegisterNodeRequest, RotateNodeTokenRequest, type RegisterNodeResponse, type RotateNodeTokenResponse } from '@pgha/shared';
import type { AppDeps } from '../app-deps.js';
import { tokenSha256 } from '../auth.js';
import { NODE_TOKEN_ROTATED_RULE, nodeEvent } from '../store/event-records.js';
import { parseClientNetworks } from '@pgha/postgres';
import { registerNode } from '../formation/register-node.js';
import { changeClientNetworks } from '../formation/settings-changes.js';
import { removeNode } from '../formation/remove-node.js';
import { generateSecret } from '../secrets.js';
import { issueServerCertificate } from '../tls/certificates.js';
import { goalView, nodeGoal } from './views.js';
import { validate } from './validate.js';

const NodeIdParams = z.object({ nodeId: NodeIdText });
const FormationParams = z.object({ formation: FormationName });
const GoalQuery = z
  .object({ known: NodeStateSchema.optional(), wait_ms: z.coerce.number().int().min(0).max(30_000).default(0) })
  .strict();

/** Registers the keeper-facing routes. */
export async function nodeRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.post('/v1/formations/:formation/nodes', async (req, reply) => {
    const { formation } = validate(FormationParams, req.params, 'params');
    const body = validate(RegisterNodeRequest, req.body, 'body');
    const clientNetworks = parseClientNetworks(body.clientNetworks ?? [], 'body.clientNetworks');
    const result = await deps.store.transaction(async (tx) => {
      // The formation's lock before the group's (settings-changes.ts): the node's client networks join the formation's.
      let f = clientNetworks.length > 0 ? await tx.lockFormation(formation) : await tx.formations.get(formation);
      let out!: { nodeId: number; groupId: number; created: boolean };
      await deps.driver.evaluateIn(tx, formation, 0, 'register', async () => {
        // Re-read under the group lock: a concurrent drop formation answers 404, not 500.
        f = await tx.formations.get(formation);
        const { node, created } = await registerNode(tx, formation, {
          name: body.name,
          host: body.host,
          port: body.port,
          candidatePriority: body.candidatePriority,
          replicationQuorum: body.replicationQuorum,
          postgresSsl: body.postgresSsl,
          ...(body.httpAddress ? { httpAddress: body.httpAddress } : {}),
        });
        out = { nodeId: node.nodeId, groupId: node.groupId, created };
      });
      const node = await tx.nodes.get(out.nodeId);
      const clients = await changeClientNetworks(tx, await tx.formations.get(formation), clientNetworks, { add: true });
      // A new token on every registration: the one before stops working at commit.
      const nodeToken = generateSecret();
      const digest = tokenSha256(nodeToken);
      await tx.credentials.issue(node.nodeId, digest);
      const ca = deps.certificateAuthority;
      const tls = ca && body.tlsPublicKey ? { caCertificate: ca.certificatePem, certificate: issueServerCertificate(ca, body.tlsPublicKey, [node.host]) } : undefined;
      const response: RegisterNodeResponse = {
        nodeId: node.nodeId,
        groupId: node.groupId,
        formation,
        goalState: node.goalState,
        replicationPassword: f.replicationPassword,
        monitorProbePassword: f.monitorProbePassword,
        nodeToken,
        ...(tls ? { tls } : {}),
      };
      return { response, created: out.created, digest, clientChanges: clients.changes };
    });
    deps.auth.nodeCredentials.remember(result.response.nodeId, result.digest);
    req.log.info({ nodeId: result.response.nodeId, formation }, result.created ? 'node registered' : 'node registered again');
    for (const c of result.clientChanges) req.log.info({ formation }, c);
    return reply.code(result.created ? 201 : 200).send(result.response);
  });

  app.post('/v1/nodes/:nodeId/report', async (req) => {
    const { nodeId } = validate(NodeIdParams, req.params, 'params');
    const report = validate(NodeReport, req.body, 'body');
    keeperHeard(deps, nodeId, req);
    // Record the report and decide under the group lock (one transaction, shared with other
    // reports under load), and answer from the rows the decision read, with its new goals, as
    // a read after commit would.
    const { node, group } = await deps.reports.report(nodeId, report);
    if (!group) {
      // The keeper has stopped its Postgres: the node leaves the formation.
      const goal = await nodeGoal(deps.store, nodeId);
      await deps.store.transaction((tx) => removeNode(tx, node, `node ${node.nodeId} "${node.name}" removed: its keeper reports it dropped`));
      return goal;
    }
    const self = group.nodes.find((n) => n.nodeId === nodeId);
    // Not in the group's nodes: its goal is dropped; answer as before, after commit.
    return self ? goalView(self, group.formation, group.nodes) : nodeGoal(deps.store, nodeId);
  });

  app.get('/v1/nodes/:nodeId/goal', async (req) => {
    const { nodeId } = validate(NodeIdParams, req.params, 'params');
    const query = validate(GoalQuery, req.query, 'query');
    keeperHeard(deps, nodeId, req);
    const waiter = query.known && query.wait_ms > 0 ? deps.notifier.waiter(nodeId, query.wait_ms) : undefined;
    // The loud-death watch may want this keeper's report now (a peer of its node died loudly).
    const nudge = waiter ? deps.loudDeaths?.nudgeWaiter(nodeId, query.wait_ms) : undefined;
    // A long-poll may be answered from a leading monitor's copy of the store (`readNodeGroup`):
    // it is woken by that copy's changes, and what it answers counts for no contact with the
    // monitor (the keeper's self-fence counts from its reports' answers, read from the store).
    const read = { mirrored: true };
    try {
      const goal = await nodeGoal(deps.store, nodeId, read);
      if (!waiter || goal.goalState !== query.known) return goal;
      const woken = await (nudge ? Promise.race([waiter.promise, nudge.promise]) : waiter.promise);
      // No goal of the node committed since the waiter was registered, before the read: the
      // goal read is current (issue 17: an idle long-poll costs one read, not two). Its other
      // figures (the group's LSNs, lag) are as old as the wait; the keeper's next report, sent
      // at once, gets them fresh.
      if (!woken) return goal;
      return await nodeGoal(deps.store, nodeId, read);
    } finally {
      waiter?.cancel();
      nudge?.cancel();
    }
  });

  app.post('/v1/nodes/:nodeId/token', async (req) => {
    const { nodeId } = validate(NodeIdParams, req.params, 'params');
    const body = validate(RotateNodeTokenRequest, req.body, 'body');
    const digest = tokenSha256(body.nodeToken);
    const answer = await deps.store.transaction(async (tx): Promise<RotateNodeTokenResponse> => {
      const node = await tx.nodes.get(nodeId);
      await tx.credentials.issue(nodeId, digest);
      // The reason names no token: events are read with the viewer token.
      await tx.events.append([nodeEvent(node, NODE_TOKEN_ROTATED_RULE, `node ${nodeId} "${node.name}": its keeper replaced its node token (pgha keeper rotate-token); the old token is refused from now on`)]);
      return { nodeId, name: node.name, formation: node.formationId, rotatedAt: new Date(await tx.nowMs()).toISOString() };
    });
    deps.auth.nodeCredentials.remember(nodeId, digest);
    req.log.info({ nodeId, formation: answer.formation, security: true }, `node ${nodeId} "${answer.name}": node token replaced; the old one is refused from now on`);
    return answer;
  });
}

/**
 * Tells the loud-death watch that node `nodeId`'s keeper made a request on its connection; a
 * request another monitor forwarded (monitors on etcd) comes on that monitor's connection, not
 * the keeper's, and is left out.
 */
function keeperHeard(deps: AppDeps, nodeId: number, req: FastifyRequest): void {
  if (req.headers[FORWARDED_BY_HEADER] === undefined) deps.loudDeaths?.keeperRequest(nodeId, req.raw.socket);
}
