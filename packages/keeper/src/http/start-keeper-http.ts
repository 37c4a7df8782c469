/**
 * Wires the keeper's HTTP server and metrics to a running keeper (`pgha keeper run`).
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { keeperHttpListen, postgresTlsDir } from '../keeper-config.js';
import type { Keeper } from '../loop.js';
import { KeeperHttpServer } from './keeper-http-server.js';
import { KeeperMetrics } from './keeper-metrics.js';

/**
 * Starts the HTTP server of `keeper` on its `httpListen` (HTTPS with the node's Postgres
 * certificate unless the node was created with `--no-ssl`), feeding its metrics from the
 * keeper. A failure to listen is logged, reported as the node's problem and retried; it never
 * stops the keeper.
 *
 * @returns the server (close it when the keeper stops).
 */
export async function startKeeperHttp(keeper: Keeper, log: Logger): Promise<KeeperHttpServer> {
  const config = keeper.config;
  const metrics = new KeeperMetrics(() => keeper.view(), { formation: config.formation, node: config.name, nodeId: config.nodeId });
  const tlsDir = postgresTlsDir(config.pgdata);
  const server = new KeeperHttpServer({
    listen: keeperHttpListen(config),
    ...(config.ssl.mode !== 'disable' ? { tls: { certFile: join(tlsDir, 'server.crt'), keyFile: join(tlsDir, 'server.key') } } : {}),
    view: () => keeper.view(),
    metrics,
    log,
  });
  keeper.observer = metrics;
  keeper.extraProblem = () => server.problem();
  await server.start();
  return server;
}
