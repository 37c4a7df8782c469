/**
 * Wires the keeper's HTTP server and metrics to a running keeper (`pgha keeper run`).
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { keeperHttpListen, postgresTlsDir } from '../keeper-config.js';
import type { Keeper } from '../loop.js';
import { keeperView } from '../keeper-view.js';
import { KeeperHttpServer } from './keeper-http-server.js';
import { KeeperMetrics } from './keeper-metrics.js';

/**
 * Starts the HTTP server of `keeper` on its `httpListen` (HTTPS with the node's Postgres
 * certificate unless the node was created with `--no-ssl`), feeding its metrics from the
 * keeper. It listens once the keeper's first report has ended (answered or failed), or after a
 * report's limit at the latest: loading the node's certificate and key and building the TLS
 * context take 15–25 ms of CPU, which a starting keeper would otherwise spend before it sends
 * that report; after it, they run while the keeper's first transition waits on its programs
 * (a crashed primary's rejoin, issue 17 §5). A failure to listen is logged, reported as the
 * node's problem and retried; it never stops the keeper. When the server takes a new
 * certificate (SIGHUP, or its files changed: see `KeeperHttpServer.reloadCertificate`), the
 * node's Postgres, which serves the same files, is reloaded so that it takes it too (Postgres
 * keeps its old one if it cannot load them).
 *
 * @returns the server, listening soon (close it when the keeper stops; closed before, it never listens).
 */
export function startKeeperHttp(keeper: Keeper, log: Logger): KeeperHttpServer {
  const config = keeper.config;
  const metrics = new KeeperMetrics(() => keeperView(keeper), { formation: config.formation, node: config.name, nodeId: config.nodeId });
  const tlsDir = postgresTlsDir(config.pgdata);
  const server = new KeeperHttpServer({
    listen: keeperHttpListen(config),
    ...(config.ssl.mode !== 'disable' ? { tls: { certFile: join(tlsDir, 'server.crt'), keyFile: join(tlsDir, 'server.key') } } : {}),
    view: () => keeperView(keeper),
    metrics,
    log,
    onCertificateChange: (certificate) => {
      if (!keeper.node.postgres.isRunning()) return;
      keeper.node.postgres
        .reload()
        .then(() => log.info(`Postgres reloaded for the new certificate (serial ${certificate.serialNumber}); one it cannot load is in its server log, and it keeps its old one`))
        .catch((err: Error) => log.error(`Postgres not reloaded for the new certificate (it keeps its old one until it is): ${err.message}`));
    },
  });
  let listening = false;
  const listen = (): void => {
    if (listening) return;
    listening = true;
    clearTimeout(latest);
    void server.start();
  };
  const latest = setTimeout(listen, keeper.reportTimeoutMs).unref();
  keeper.observer = {
    reportFinished: (durationMs, ok) => {
      metrics.reportFinished(durationMs, ok);
      // After the answer is acted on: the keeper goes on at once (its transition), this waits for its first wait.
      if (!listening) setImmediate(listen);
    },
  };
  keeper.extraProblem = () => server.problem();
  return server;
}
