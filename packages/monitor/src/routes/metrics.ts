/**
 * `GET /metrics` → 200 Prometheus text format (`text/plain; version=0.0.4`): the monitor's
 * metrics (`metrics/monitor-metrics.ts`); 401/403 without the operator token, as every route
 * but `/health`; 503 when its store is down. Prometheus scrapes it over HTTPS with the token
 * in a file (`authorization: {credentials_file: …}`, see `docs/metrics.md`).
 */
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app-deps.js';
import type { MonitorMetrics } from '../metrics/monitor-metrics.js';
import { reportAnsweredAtMs } from './nodes.js';

/** The keeper's report route, whose answer time {@link MonitorMetrics.observeReport} records. */
const REPORT_ROUTE = '/v1/nodes/:nodeId/report';
/** The keeper's goal long-poll. */
const GOAL_ROUTE = '/v1/nodes/:nodeId/goal';

/** Registers `GET /metrics`, and the hook that times keepers' reports (on `app`, every route). */
export async function metricsRoutes(app: FastifyInstance, deps: AppDeps & { metrics: MonitorMetrics }): Promise<void> {
  app.get('/metrics', async (_req, reply) => {
    const text = await deps.metrics.scrape(deps.store);
    return reply.header('content-type', deps.metrics.contentType).send(text);
  });
}

/**
 * Times every answered keeper report (`pgha_report_duration_seconds`): a held one (one that also
 * waits for a goal change) until its status line went out, not until its goal did; counts
 * reports and goal long-polls (`pgha_keeper_requests_total`).
 */
export function timeReports(app: FastifyInstance, metrics: MonitorMetrics): void {
  app.addHook('onResponse', (req, reply, done) => {
    if (req.method === 'POST' && req.routeOptions.url === REPORT_ROUTE) {
      metrics.observeReport(reportAnsweredAtMs.get(req) ?? reply.elapsedTime);
      metrics.keeperRequest('report');
    } else if (req.method === 'GET' && req.routeOptions.url === GOAL_ROUTE) metrics.keeperRequest('goal');
    done();
  });
}
