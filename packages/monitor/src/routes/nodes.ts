/**
 * Keeper-facing routes.
 *
 * - `POST /v1/formations/:formation/nodes` body `RegisterNodeRequest` → 201
 *   `RegisterNodeResponse` (200 when the same node registers again) with a new node token
 *   (and, given `tlsPublicKey` and a monitor CA, a certificate); its `clientNetworks` join the
 *   formation's; 400 wrong shape or an invalid client network, 404 unknown formation, 409 name
 *   or host:port taken.
 * - `POST /v1/nodes/:nodeId/report[?known=STATE&wait_ms=N[&ack=1]]` body `NodeReport` → 200
 *   `NodeGoal`, with the header `x-pgha-report-holds: 1`; 400, 404. With `known` and `wait_ms`,
 *   and the node's goal still `known` once the report is recorded, the goal is answered when it
 *   changes, when the loud-death watch wants a report, or after `wait_ms` (the goal long-poll
 *   below, in the same request: one request per report cycle); with `ack=1` the status line
 *   goes out as soon as the report is recorded (`@pgha/shared`'s `report-hold.ts`).
 * - `GET /v1/nodes/:nodeId/goal?known=STATE&wait_ms=N` → 200 `NodeGoal` as soon as the
 *   goal differs from `known`, or after `wait_ms` (at most 30 000; then the goal as read when
 *   the request came, since none was committed meanwhile), or at once when the monitor wants
 *   the keeper's report now (`ReportNudges`); 400, 404.
 * - `POST /v1/nodes/:nodeId/token` body `RotateNodeTokenRequest` → 200
 *   `RotateNodeTokenResponse`: the node's token is the one in the body from the commit on (the
 *   old one is refused), with a `node-token-rotated` event; 400, 404. Only the node's own
 *   token opens it (`auth.ts`).
 */
import { Readable } from 'node:stream';
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import { FORWARDED_BY_HEADER } from '../ha/forward-to-leader.js';
import { z } from 'zod';
import { FormationName, GOAL_REVISION_HEADER, NodeIdText, parseNodeIdText, NodeReport, NodeStateSchema, REPORT_HELD_HEADER, REPORT_HOLDS_HEADER, RegisterNodeRequest, RotateNodeTokenRequest, type NodeGoal, type ReportedParameters, type RegisterNodeResponse, type RotateNodeTokenResponse } from '@pgha/shared';
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
/** A report's query: the goal long-poll's, and `ack=1` for the status line as soon as the report is recorded (`report-hold.ts`). */
const ReportQuery = GoalQuery.extend({ ack: z.literal('1').optional() }).strict();

/** A report's query when it has no parameter (a keeper that does not hold its report): what {@link ReportQuery} makes of `{}`. */
const NO_REPORT_QUERY: z.output<typeof ReportQuery> = Object.freeze({ wait_ms: 0 });

/**
 * The node id of a report's path, as `validate(NodeIdParams, …)` gives it; the validation (and
 * its error) only for one that {@link parseNodeIdText} does not read. A report comes from every
 * keeper every second: this and {@link reportQuery} keep zod to the body.
 *
 * @throws ValidationError as {@link validate}.
 */
function reportNodeId(params: unknown): number {
  return parseNodeIdText((params as { nodeId?: unknown } | undefined)?.nodeId) ?? validate(NodeIdParams, params, 'params').nodeId;
}

/**
 * A report's query, as `validate(ReportQuery, …)` gives it (see {@link reportNodeId}).
 *
 * @throws ValidationError as {@link validate}.
 */
function reportQuery(query: unknown): z.output<typeof ReportQuery> {
  if (typeof query === 'object' && query !== null) {
    let empty = true;
    for (const _ in query) {
      empty = false;
      break;
    }
    if (empty) return NO_REPORT_QUERY;
  }
  return validate(ReportQuery, query, 'query');
}

/** Distinct parameter lists {@link reportBody} keeps checked (cleared when full). */
const CHECKED_PARAMETERS_MAX = 256;
/** Parameter lists checked before, by their JSON text: zod's output for each, frozen. */
const checkedParameters = new Map<string, ReportedParameters>();

/**
 * A keeper's report, as `validate(NodeReport, …)` gives it, with its `parameters` checked once
 * per distinct list. A keeper sends the parameters its Postgres runs with in every report,
 * mostly the same list (every node of a fleet at the defaults sends the same one), and zod's
 * check of them was two thirds of the report's: 10 of 16 µs for five parameters, and most of
 * its 18 KB of garbage (issue 15). A list whose JSON text was checked before is taken as it was
 * checked then (frozen, shared); the rest of the body is checked as always. A body whose list
 * is new goes through zod whole, so a wrong one gets the same error as without this.
 *
 * @throws ValidationError as {@link validate}.
 */
function reportBody(body: unknown): z.output<typeof NodeReport> {
  const parameters = typeof body === 'object' && body !== null ? (body as { parameters?: unknown }).parameters : undefined;
  if (typeof parameters !== 'object' || parameters === null) return validate(NodeReport, body, 'body');
  const text = JSON.stringify(parameters);
  const checked = checkedParameters.get(text);
  if (checked) {
    const { parameters: _, ...rest } = body as Record<string, unknown>;
    const report = validate(NodeReport, rest, 'body');
    report.parameters = checked;
    return report;
  }
  const report = validate(NodeReport, body, 'body');
  if (report.parameters) {
    if (checkedParameters.size >= CHECKED_PARAMETERS_MAX) checkedParameters.clear();
    checkedParameters.set(text, frozenParameters(report.parameters));
  }
  return report;
}

/** `p`, its lists and their entries frozen: one object shared by the reports that send the same list. */
function frozenParameters(p: ReportedParameters): ReportedParameters {
  for (const entry of p.running) Object.freeze(entry);
  Object.freeze(p.running);
  Object.freeze(p.pendingRestart);
  return Object.freeze(p);
}

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

  app.post('/v1/nodes/:nodeId/report', async (req, reply) => {
    const nodeId = reportNodeId(req.params);
    const query = reportQuery(req.query);
    const report = reportBody(req.body);
    keeperHeard(deps, nodeId, req);
    // Registered before the report is recorded: a goal committed from then on wakes the hold.
    const hold = query.known && query.wait_ms > 0 ? goalWait(deps, nodeId, query.wait_ms) : undefined;
    let goal: NodeGoal;
    try {
      goal = await recordReport(deps, nodeId, report);
    } catch (err) {
      hold?.cancel();
      throw err;
    }
    void reply.header(REPORT_HOLDS_HEADER, '1');
    if (goal.goalRevision !== undefined) void reply.header(GOAL_REVISION_HEADER, goal.goalRevision);
    if (!hold || goal.goalState !== query.known) {
      hold?.cancel();
      return goal;
    }
    // Recorded, and the goal is the one the keeper knows: hold it until it changes or the wait ends.
    const recordedAtMs = reply.elapsedTime;
    reportAnsweredAtMs.set(req, recordedAtMs);
    const reread = (): Promise<NodeGoal> => nodeGoal(deps.store, nodeId, { mirrored: true });
    // Asked for: the status line now (it counts as the monitor's answer to the report).
    if (query.ack) return reply.header('content-type', 'application/json; charset=utf-8').send(heldGoal(hold, goal, reread, req.log));
    try {
      const answer = await goalAfter(hold, goal, reread, req.log);
      return await reply.header(REPORT_HELD_HEADER, String(Math.round(reply.elapsedTime - recordedAtMs))).send(answer);
    } finally {
      hold.cancel();
    }
  });

  app.get('/v1/nodes/:nodeId/goal', async (req) => {
    const { nodeId } = validate(NodeIdParams, req.params, 'params');
    const query = validate(GoalQuery, req.query, 'query');
    keeperHeard(deps, nodeId, req);
    const wait = query.known && query.wait_ms > 0 ? goalWait(deps, nodeId, query.wait_ms) : undefined;
    // A long-poll may be answered from a leading monitor's copy of the store (`readNodeGroup`):
    // it is woken by that copy's changes, and what it answers counts for no contact with the
    // monitor (the keeper's self-fence counts from its reports' answers, read from the store).
    const read = { mirrored: true };
    try {
      const goal = await nodeGoal(deps.store, nodeId, read);
      if (!wait || goal.goalState !== query.known) return goal;
      // No goal of the node committed since the waiter was registered, before the read: the
      // goal read is current (issue 17: an idle long-poll costs one read, not two). Its other
      // figures (the group's LSNs, lag) are as old as the wait; the keeper's next report, sent
      // at once, gets them fresh.
      if (!(await wait.promise)) return goal;
      return await nodeGoal(deps.store, nodeId, read);
    } finally {
      wait?.cancel();
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

/**
 * When each held report was answered, as `reply.elapsedTime` (ms) at the moment its status line
 * went out: the report's time for `pgha_report_duration_seconds` (`routes/metrics.ts`), which
 * leaves out the wait for a goal change.
 */
export const reportAnsweredAtMs = new WeakMap<FastifyRequest, number>();

/**
 * Records a keeper's report and decides under the group lock (one transaction, shared with
 * other reports under load, `ReportBatcher`); the node's goal from the rows the decision read,
 * with its new goals, as a read after commit would.
 *
 * @throws NotFoundError for an unknown node; the store's errors.
 */
async function recordReport(deps: AppDeps, nodeId: number, report: NodeReport): Promise<NodeGoal> {
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
}

/** A wait for node `nodeId`'s goal: true when a goal of the node was committed, false after `waitMs` or `cancel`. */
interface GoalWait {
  promise: Promise<boolean>;
  cancel(): void;
}

/**
 * Waits for a commit of node `nodeId`'s goal (the store's notifier), at most `waitMs`; the
 * monitor may end it early when it wants this keeper's report now (`ReportNudges`: a peer of
 * the node died loudly, or a switchover waits for its LSN), which also answers true.
 */
function goalWait(deps: AppDeps, nodeId: number, waitMs: number): GoalWait {
  const waiter = deps.notifier.waiter(nodeId, waitMs);
  const nudge = deps.nudges?.waiter(nodeId, waitMs);
  return {
    promise: nudge ? Promise.race([waiter.promise, nudge.promise]) : waiter.promise,
    cancel: () => {
      waiter.cancel();
      nudge?.cancel();
    },
  };
}

/**
 * The goal to answer once `wait` ends: `goal` when nothing was committed meanwhile, else the goal
 * read again (`read`; `goal` if that read fails, which the keeper's next report, sent at once,
 * makes up for).
 */
function goalAfter(wait: GoalWait, goal: NodeGoal, read: () => Promise<NodeGoal>, log: FastifyBaseLogger): Promise<NodeGoal> {
  return wait.promise
    .then((woken) => (woken ? read() : goal))
    .catch((err: Error) => {
      log.warn(`a held report's goal could not be read again (${err.message}): answered with the goal its report left`);
      return goal;
    });
}

/**
 * The body of a held report answer with `ack=1`: a space at once (so that the status line and
 * headers go out now, through a forwarding monitor too), then the goal as JSON when `wait` ends
 * ({@link goalAfter}). A keeper that goes away ends the wait.
 */
function heldGoal(wait: GoalWait, goal: NodeGoal, read: () => Promise<NodeGoal>, log: FastifyBaseLogger): Readable {
  let started = false;
  return new Readable({
    read() {
      if (started) return;
      started = true;
      this.push(' ');
      void goalAfter(wait, goal, read, log).then((answer) => {
        this.push(JSON.stringify(answer));
        this.push(null);
      });
    },
    destroy(err, callback) {
      wait.cancel();
      callback(err);
    },
  });
}
