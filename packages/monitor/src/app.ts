/**
 * `buildApp(deps)`: the monitor's HTTP API as a Fastify instance that never listens by itself
 * (tests use `app.inject()`; `server.ts` listens). Errors map to statuses in one place:
 * validation 400, unknown 404, conflict 409, store down 503, anything else 500 without a
 * stack trace. Every request but `GET /health` and the dashboard's files (`GET /ui…`) needs
 * credentials (`auth.ts`): 401, 403.
 * With `https` (PEM key and certificate) it serves TLS only.
 */
export type { AppDeps } from './app-deps.js';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { PghaError, ValidationError, type ErrorCode } from '@pgha/shared';
import { installAuth } from './auth.js';
import type { AppDeps } from './app-deps.js';
import { formationRoutes } from './routes/formations.js';
import { nodeRoutes } from './routes/nodes.js';
import { settingsRoutes } from './routes/settings.js';
import { operationRoutes } from './routes/operations.js';
import { MonitorMetrics } from './metrics/monitor-metrics.js';
import { eventStreamRoutes } from './routes/events-stream.js';
import { formationListRoutes } from './routes/formation-list.js';
import { metricsRoutes, timeReports } from './routes/metrics.js';
import { uiRoutes } from './routes/ui.js';
import { currentFormationState, nodeGoal } from './routes/views.js';
import { monitorRoutes } from './routes/monitors.js';
import { forwardToLeader, refuseWithoutLease } from './ha/forward-to-leader.js';
import { NotFoundError } from '@pgha/shared';

const STATUS: Partial<Record<ErrorCode, number>> = {
  PGHA_ERR_VALIDATION: 400,
  PGHA_ERR_NOT_FOUND: 404,
  PGHA_ERR_CONFLICT: 409,
  PGHA_ERR_STORE_UNAVAILABLE: 503,
  PGHA_ERR_NOT_LEADER: 503,
  PGHA_ERR_TIMEOUT: 504,
};

/** Body size limit of every route, in bytes. */
export const BODY_LIMIT_BYTES = 64 * 1024;

/**
 * The answer to a request Fastify itself refused before a route ran (a 4xx with a
 * `statusCode`: malformed JSON, unsupported content type, body over {@link BODY_LIMIT_BYTES},
 * a URL that does not decode, a path parameter over the router's length limit), in the shape
 * of every other error: `{code, message}` with a catalogued code. Fastify's own code
 * (`FST_ERR_…`) is not one, and its message for a body too large did not name the limit.
 */
function frameworkRefusal(err: Error & { statusCode?: number }): { status: number; body: { code: ErrorCode; message: string; hint?: string } } {
  const status = err.statusCode!;
  if (status === 413) {
    return {
      status,
      body: {
        code: 'PGHA_ERR_VALIDATION',
        message: `request body is larger than the limit of ${BODY_LIMIT_BYTES} bytes (${BODY_LIMIT_BYTES / 1024} KiB)`,
        hint: 'no request of the API needs a bigger body: check what is sent',
      },
    };
  }
  return { status, body: { code: 'PGHA_ERR_VALIDATION', message: err.message } };
}

/** Builds the API. */
export function buildApp(deps: AppDeps, https?: { key: string; cert: string }): FastifyInstance {
  const app: FastifyInstance = Fastify({
    loggerInstance: deps.log.child({ component: 'http' }) as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    // No line per request: a report every 500 ms per keeper would flood the log.
    logController: new LogController({ disableRequestLogging: true }),
    // No child logger per request either (a tenth of a report's CPU at 3,000 keepers,
    // bench/README.md): a request's log lines go to the API's logger without a request id.
    childLoggerFactory: (logger: FastifyBaseLogger) => logger,
    ...(https ? { https } : {}),
    // The router's refusals (a URL that does not decode, a parameter too long) skip the error
    // handler: answer them in the same shape.
    frameworkErrors: (err: Error & { statusCode?: number }, _req: unknown, reply: FastifyReply) => {
      const { status, body } = frameworkRefusal(err);
      void reply.code(status).send(body);
    },
  }) as unknown as FastifyInstance;
  if (deps.ha) refuseWithoutLease(app, deps.ha.leadership, deps.log.child({ component: 'leadership' }));
  installAuth(app, deps.auth, deps.store, deps.log.child({ component: 'auth' }));

  app.setErrorHandler((err: Error, req, reply) => {
    if (err instanceof PghaError) {
      const status = STATUS[err.code] ?? 500;
      const field = err instanceof ValidationError ? err.field : undefined;
      // A monitor that does not lead answers 503 to each write of a formation until one leads
      // (at most the lease TTL): the leadership module says so once, not each request.
      if (status >= 500 && err.code !== 'PGHA_ERR_NOT_LEADER') req.log.error({ code: err.code }, err.message);
      return reply.code(status).send({ code: err.code, message: err.message, hint: err.hint, ...(field ? { field } : {}) });
    }
    const fastifyStatus = (err as { statusCode?: number }).statusCode;
    if (fastifyStatus && fastifyStatus >= 400 && fastifyStatus < 500) {
      const { status, body } = frameworkRefusal(err);
      return reply.code(status).send(body);
    }
    if (deps.store.isUnavailable(err)) {
      req.log.warn({ err: err.message }, 'store unavailable');
      const message = deps.ha
        ? `the monitor's etcd store is unavailable (${err.message.split('\n')[0]})`
        : "the monitor's Postgres is unavailable";
      const hint = deps.ha ? 'retry, or use another monitor; check that a quorum of etcd members runs (pgha show monitors)' : 'retry; the monitor restarts its Postgres';
      return reply.code(503).send({ code: 'PGHA_ERR_STORE_UNAVAILABLE', message, hint });
    }
    req.log.error({ err }, 'internal error');
    return reply.code(500).send({ code: 'PGHA_ERR_INTERNAL', message: 'internal error in the monitor; see its log' });
  });

  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ code: 'PGHA_ERR_NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` });
  });

  const metrics = deps.metrics ?? new MonitorMetrics();
  timeReports(app, metrics);
  void app.register(async (scope) => {
    if (deps.ha) {
      await forwardToLeader(scope, {
        leadership: deps.ha.leadership,
        ...(deps.ha.ca ? { ca: deps.ha.ca } : {}),
        ...formationOfNodeCached(deps),
        // Read from etcd itself (not the mirror): after the report arrived.
        answerUnrecorded: (nodeId) => nodeGoal(deps.store, nodeId),
        localState: (formation) => currentFormationState(deps.store, formation),
      });
    }
    await formationRoutes(scope, deps);
    await nodeRoutes(scope, deps);
    await settingsRoutes(scope, deps);
    await operationRoutes(scope, deps);
    await formationListRoutes(scope, deps);
    await eventStreamRoutes(scope, deps);
    await metricsRoutes(scope, { ...deps, metrics });
    await uiRoutes(scope);
    if (deps.monitors) await monitorRoutes(scope, deps.monitors);
  });
  return app;
}

/**
 * The formation of a node, for forwarding a keeper's report: read once per node (a node never
 * changes formation), undefined for a node that does not exist; and the ones read so far.
 */
function formationOfNodeCached(deps: AppDeps): { formationOfNode(nodeId: number): Promise<string | undefined>; knownFormationOfNode(nodeId: number): string | undefined } {
  const known = new Map<number, string>();
  return {
    knownFormationOfNode: (nodeId) => known.get(nodeId),
    formationOfNode: async (nodeId) => {
      const cached = known.get(nodeId);
      if (cached !== undefined) return cached;
      try {
        const { formationId } = await deps.store.nodes.get(nodeId);
        known.set(nodeId, formationId);
        return formationId;
      } catch (err) {
        if (err instanceof NotFoundError) return undefined;
        throw err;
      }
    },
  };
}
