/**
 * Monitors on etcd: any monitor serves every request, but only a formation's leader decides for
 * it. A request that writes for a formation (a keeper's report or token rotation, a registration, an operator
 * command, a settings change, a drop) that reaches another monitor is forwarded to the leader
 * over HTTPS, with the caller's credentials, and the leader's answer is returned as it is
 * (`@fastify/reply-from`). Reads (events and their stream, goal long-polls, metrics, the
 * dashboard's files) are answered by every monitor from the store.
 *
 * **A formation's state** (`GET /v1/formations/:formation/state`: `pgha show state`, `watch`,
 * the dashboard) is the leader's, when another monitor leads: only the leader hears the
 * keepers, and it keeps their liveness (when each last reported, its LSN) in memory
 * (`store/etcd/report-overlay.ts`); the store has it as of the last write of each node, which
 * a quiet keeper's reports do not make. So it is forwarded to the leader as a write is, and
 * answered from the store (`localState`, with the header {@link STALE_HEADER}) only when the
 * leader does not answer.
 *
 * A forwarded request carries `x-pgha-forwarded-by`; a monitor never forwards it again (the
 * leadership moved meanwhile): it answers 503 `PGHA_ERR_NOT_LEADER`, and the caller tries its
 * next monitor. So does a monitor when no monitor leads the formation yet.
 *
 * **A keeper's report while no leader takes it** (the leader died and its lease has not
 * expired yet, or no monitor leads the formation yet: up to the lease TTL plus a campaign) is
 * answered by this monitor with the node's current goal, read from etcd after the report
 * arrived (`answerUnrecorded`), and the header {@link UNRECORDED_HEADER}; the report itself
 * is not recorded. Without it a primary whose standbys do not stream (`wait_primary`) would
 * count a leader change as the monitor lost and fence itself (`networkPartitionTimeoutMs`,
 * 1 s, is shorter than the TTL). It is as safe as the leader's own answer: the goal is read
 * from the store after the keeper sent its report, which is the moment the keeper counts its
 * contact from (`docs/timeouts.md`, "Self-fencing"), so a demotion written before that read is
 * in the answer, and one written after it finds the keeper's fence deadline already running.
 * A report carrying a self-fence is not answered so (its event must be recorded).
 *
 * Source: Patroni's REST API, which any member answers while only the leader runs the HA cycle;
 * Stolon's proxies, which follow the leader through the store.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { PghaError } from '@pgha/shared';
import type { FormationLeader } from './leadership.js';

/** The header that marks a request forwarded by another monitor (its id). */
export const FORWARDED_BY_HEADER = 'x-pgha-forwarded-by';

/**
 * The header of a forwarded answer that names the leader's URL: a client that has it in its
 * list sends its next requests there directly (`@pgha/client`), saving the extra hop.
 */
export const LEADER_HEADER = 'x-pgha-leader';

/** The header of a report's answer given while no leader took the report (see the module): why. */
export const UNRECORDED_HEADER = 'x-pgha-report-unrecorded';

/**
 * The header of a formation's state answered by a monitor that does not lead it, because the
 * leader did not answer (see the module): why. Its report times and LSNs are the store's, as of
 * each node's last write.
 */
export const STALE_HEADER = 'x-pgha-state-from-store';

/** What forwarding needs to know of the leadership. */
export interface LeadershipView {
  readonly monitorId: string;
  isLeader(formation: string): boolean;
  leaderOf(formation: string): FormationLeader | undefined;
}

/** Options of {@link forwardToLeader}. */
export interface ForwardOptions {
  leadership: LeadershipView;
  /** The CA (PEM) the other monitors' HTTPS certificates chain to (the store's CA); none over plain HTTP. */
  ca?: string;
  /**
   * The formation a keeper's node belongs to (for `POST /v1/nodes/:nodeId/report`); undefined
   * when the node does not exist (the route then answers 404 itself).
   */
  formationOfNode(nodeId: number): Promise<string | undefined>;
  /**
   * The formation of a node when it is known without a read (a node never changes formation);
   * undefined: ask {@link formationOfNode}. Lets a keeper's report to its formation's leader go
   * on to the route in the same turn of the event loop.
   */
  knownFormationOfNode?(nodeId: number): string | undefined;
  /** How long to wait for the leader's answer, ms (a goal long-poll is never forwarded). */
  timeoutMs?: number;
  /**
   * The answer to a keeper's report that no leader takes (see the module): the node's current
   * goal (`NodeGoal`), read from etcd now. Undefined: such a report is answered 503.
   */
  answerUnrecorded?(nodeId: number): Promise<unknown>;
  /**
   * A formation's state as this monitor's store has it (the answer of its own
   * `GET /v1/formations/:formation/state`), given when the leader does not answer. Undefined:
   * the state is never forwarded (every monitor answers it from its store).
   */
  localState?(formation: string): Promise<unknown>;
}

/** The formation of `GET /v1/formations/:formation/state`; undefined for any other request. */
function stateRead(req: FastifyRequest): string | undefined {
  if (req.method !== 'GET' || req.routeOptions.url !== '/v1/formations/:formation/state') return undefined;
  return (req.params as { formation?: string } | undefined)?.formation;
}

/** The node id of a keeper's report that may be answered unrecorded (see the module); undefined for any other request. */
function unrecordedReport(req: FastifyRequest): number | undefined {
  if (req.method !== 'POST' || !req.url.split('?')[0]!.endsWith('/report')) return undefined;
  const nodeId = (req.params as { nodeId?: string } | undefined)?.nodeId;
  if (nodeId === undefined || !/^\d{1,9}$/.test(nodeId)) return undefined;
  const body = req.body as { selfFence?: unknown } | undefined;
  return body && typeof body === 'object' && body.selfFence === undefined ? Number(nodeId) : undefined;
}

/**
 * The formation a request writes for, or undefined when it writes for none (reads, `POST
 * /v1/formations`, which creates one, and the routes that touch no formation).
 */
export async function formationWrittenBy(req: Pick<FastifyRequest, 'method' | 'url' | 'params'>, formationOfNode: ForwardOptions['formationOfNode']): Promise<string | undefined> {
  if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return undefined;
  const params = (req.params ?? {}) as { formation?: string; nodeId?: string };
  if (params.formation !== undefined) return params.formation;
  // A keeper's report, and its token rotation (the credential is written under the node's formation, fenced).
  if (params.nodeId !== undefined && /^\d{1,9}$/.test(params.nodeId) && /\/(report|token)$/.test(req.url.split('?')[0]!)) return formationOfNode(Number(params.nodeId));
  return undefined;
}

/**
 * Registers the forwarding hook on `app` (before the routes' handlers, after authentication):
 * a write for a formation this monitor does not lead goes to the leader.
 */
export async function forwardToLeader(app: FastifyInstance, options: ForwardOptions): Promise<void> {
  // Loaded here: only monitors on etcd forward (a monitor on its own Postgres never loads it).
  const { default: replyFrom } = await import('@fastify/reply-from');
  await app.register(replyFrom, {
    undici: { connect: options.ca ? { ca: options.ca } : {}, headersTimeout: options.timeoutMs ?? 10_000, bodyTimeout: options.timeoutMs ?? 10_000 },
  });
  /**
   * True when the request surely goes to this monitor's own route without a read: a keeper's
   * report for a node whose formation is known and led here (every report in steady state).
   * False: {@link route} decides.
   */
  const leadsReport = (req: FastifyRequest): boolean => {
    if (req.method !== 'POST' || req.routeOptions.url !== '/v1/nodes/:nodeId/report') return false;
    const nodeId = (req.params as { nodeId?: string }).nodeId;
    if (nodeId === undefined || !/^\d{1,9}$/.test(nodeId)) return false;
    const formation = options.knownFormationOfNode?.(Number(nodeId));
    return formation !== undefined && options.leadership.isLeader(formation);
  };
  // A callback hook: a report to its leader goes on in the same turn of the event loop.
  app.addHook('preHandler', (req, reply, done) => {
    if (leadsReport(req)) {
      done();
      return;
    }
    route(req, reply).then((answered) => {
      if (!answered) done();
    }, done);
  });

  /** Forwards the request, or answers it, and says so (true); false: the route answers it. */
  const route = async (req: FastifyRequest, reply: FastifyReply): Promise<boolean> => {
    const read = options.localState ? stateRead(req) : undefined;
    if (read !== undefined) {
      const leader = options.leadership.leaderOf(read);
      // This monitor leads it, none does, or it was forwarded here: the route answers.
      if (!leader || leader.monitorId === options.leadership.monitorId || req.headers[FORWARDED_BY_HEADER] !== undefined) return false;
      await reply.from(`${leader.url}${req.url}`, {
        rewriteRequestHeaders: (_req, headers) => ({ ...headers, [FORWARDED_BY_HEADER]: options.leadership.monitorId }),
        rewriteHeaders: (headers) => ({ ...headers, [LEADER_HEADER]: leader.url }),
        onError: (r, { error }) => {
          options.localState!(read).then(
            (state) => void r.header(STALE_HEADER, `the leader of formation "${read}", ${leader.monitorId}, does not answer (${error.message})`).send(state),
            (err: Error) => void r.send(err),
          );
        },
      });
      return true;
    }
    const formation = await formationWrittenBy(req, options.formationOfNode);
    if (formation === undefined || options.leadership.isLeader(formation)) return false;
    const leader = options.leadership.leaderOf(formation);
    const forwardedBy = req.headers[FORWARDED_BY_HEADER];
    const unrecorded = options.answerUnrecorded && forwardedBy === undefined ? unrecordedReport(req) : undefined;
    const answerUnrecorded = async (why: string): Promise<void> => {
      const goal = await options.answerUnrecorded!(unrecorded!);
      await reply.header(UNRECORDED_HEADER, why).send(goal);
    };
    if ((!leader || leader.monitorId === options.leadership.monitorId) && unrecorded !== undefined) {
      await answerUnrecorded(`no monitor leads formation "${formation}" right now`);
      return true;
    }
    if (!leader || leader.monitorId === options.leadership.monitorId || forwardedBy !== undefined) {
      throw new PghaError('PGHA_ERR_NOT_LEADER', `monitor ${options.leadership.monitorId} does not lead formation "${formation}"${forwardedBy !== undefined ? ` (a request forwarded by ${String(forwardedBy)} is not forwarded again)` : ''}`, {
        hint: leader && leader.monitorId !== options.leadership.monitorId ? `its leader is ${leader.monitorId} at ${leader.url}; retry` : 'no monitor leads it right now (a leader change takes at most the lease TTL); retry',
      });
    }
    await reply.from(`${leader.url}${req.url}`, {
      rewriteRequestHeaders: (_req, headers) => ({ ...headers, [FORWARDED_BY_HEADER]: options.leadership.monitorId }),
      rewriteHeaders: (headers) => ({ ...headers, [LEADER_HEADER]: leader.url }),
      onError: (r, { error }) => {
        if (unrecorded !== undefined) {
          answerUnrecorded(`the leader of formation "${formation}", ${leader.monitorId}, does not answer (${error.message})`).catch((err: Error) => void r.code(503).send({ code: 'PGHA_ERR_NOT_LEADER', message: `monitor ${options.leadership.monitorId} could not forward to ${leader.monitorId}, the leader of formation "${formation}" (${error.message}), nor read the node's goal (${err.message})`, hint: 'retry' }));
          return;
        }
        void r.code(503).send({ code: 'PGHA_ERR_NOT_LEADER', message: `monitor ${options.leadership.monitorId} could not forward to ${leader.monitorId}, the leader of formation "${formation}" (${error.message})`, hint: 'retry: another monitor takes over within the lease TTL if the leader is gone' });
      },
    });
    return true;
  };
}

/**
 * Makes a monitor that may have lost its etcd lease (cut off from etcd, or paused past its
 * TTL) answer every request, `/health` included, with 503 `PGHA_ERR_STORE_UNAVAILABLE` until
 * its lease is valid again: keepers and clients move on to another monitor of their list
 * within the lease TTL, and a load balancer's health check takes it out.
 */
export function refuseWithoutLease(app: FastifyInstance, leadership: { readonly monitorId: string; leaseValid(): boolean }, log: Logger): void {
  let refusing = false;
  // A callback hook: a request on a valid lease goes on in the same turn of the event loop.
  app.addHook('onRequest', (_req, reply, done) => {
    if (leadership.leaseValid()) {
      if (refusing) log.info('has a valid etcd lease again: serves requests');
      refusing = false;
      done();
      return;
    }
    // Said once per episode, not once per request (keepers report twice a second).
    if (!refusing) log.warn('has no valid etcd lease: answers 503 to every request until it has one');
    refusing = true;
    const err = new PghaError('PGHA_ERR_STORE_UNAVAILABLE', `monitor ${leadership.monitorId} has no valid etcd lease (it cannot reach etcd, or it was paused past its lease)`, {
      hint: 'use another monitor of the list; this one answers again once it reaches etcd',
    });
    // Answered here, so not passed on (fastify: no done() after a reply).
    void reply.code(503).send({ code: err.code, message: err.message, hint: err.hint });
  });
}
