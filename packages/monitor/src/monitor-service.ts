/**
 * `pgha monitor create` and `pgha monitor run`: the monitor's own Postgres (initdb'd and
 * supervised here), the migrations, the HTTP API, the health prober and the timer that
 * re-evaluates every group (time-based rules such as "keeper silent").
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import {
  ConflictError,
  DEFAULT_FORMATION,
  ValidationError,
  DEFAULT_FORMATION_SETTINGS,
} from '@pgha/shared';
import {
  ensureOwnedDir,
  ensurePghaDir,
  initdb,
  isEmptyOrMissing,
  isPgData,
  pgCtlStart,
  pgCtlStop,
  portInUse,
  postmasterPid,
  socketDirFor,
  writeHba,
  readSecretFile,
  writeJsonAtomic,
  writePghaConf,
  writeSecretFile,
} from '@pgha/keeper';
import { NodeCredentials, tokenSha256 } from './auth.js';
import { generateSecret } from './store/monitor-store.js';
import { loadCaCertificate, loadCertificateAuthority, loadHttpsOptions, monitorCertificateHosts, setUpMonitorTls, type MonitorSslOption } from './tls/monitor-tls.js';
import { buildApp } from './app.js';
import { GroupDriver } from './driver/group-driver.js';
import { GoalNotifier } from './driver/goal-notifier.js';
import { loadMonitorConfig, monitorPaths, parseListen, type MonitorConfig } from './monitor-config.js';
import { HealthProber } from './prober/health-prober.js';
import { MonitorMetrics } from './metrics/monitor-metrics.js';
import { migrateToLatest, openStore, type StoreConnection } from './store/db.js';
import { createFormation } from './store/monitor-store.js';

/**
 * Connections of the running monitor to its store. A report holds one for its whole
 * transaction, including the turns of the event loop between its statements and any wait for
 * its group's lock, so with a thousand keepers reporting each second ten are too few: requests
 * queue for a connection while Postgres idles. The monitor's Postgres is its own
 * (max_connections 100).
 */
const STORE_POOL_SIZE = 32;

/** Options of {@link createMonitor}. */
export interface CreateMonitorOptions {
  pgdata: string;
  pgPort: number;
  listen: string;
  /** TLS of the HTTP API (and the CA of nodes' certificates); default `self-signed`. */
  ssl?: MonitorSslOption;
}

function storeConnection(config: MonitorConfig): StoreConnection {
  return { host: socketDirFor(config.pgdata), port: config.pgPort };
}

async function startMonitorPostgres(config: MonitorConfig, log: Logger): Promise<void> {
  if (postmasterPid(config.pgdata) !== undefined) return;
  const { dir, logDir } = monitorPaths(config.pgdata);
  ensurePghaDir(dir);
  ensureOwnedDir(logDir);
  ensureOwnedDir(socketDirFor(config.pgdata));
  log.info({ pgdata: config.pgdata, port: config.pgPort }, "starting the monitor's Postgres");
  writePghaConf(config.pgdata, { role: 'monitor', listenAddresses: '', port: config.pgPort, socketDir: socketDirFor(config.pgdata), synchronousStandbyNames: '' });
  await pgCtlStart(config.pgdata, join(logDir, 'postgres.log'));
}

/**
 * Creates a monitor: initdb, configuration (Unix socket only, no TCP), migrations, the
 * default formation. Leaves its Postgres stopped; `pgha monitor run` starts it.
 *
 * @throws ValidationError for a non-empty --pgdata that is not a data directory;
 *   ConflictError when a monitor already exists there or the port is in use.
 */
export async function createMonitor(options: CreateMonitorOptions, log: Logger): Promise<MonitorConfig> {
  const pgdata = resolve(options.pgdata);
  parseListen(options.listen);
  const paths = monitorPaths(pgdata);
  if (existsSync(paths.config)) {
    throw new ConflictError(`a monitor already exists at ${pgdata}`, { hint: `run it with: pgha monitor run --pgdata ${pgdata}` });
  }
  if (!isEmptyOrMissing(pgdata) && !isPgData(pgdata)) {
    throw new ValidationError(`${pgdata} is not empty and is not a Postgres data directory`, { hint: 'point --pgdata at an empty or new directory', field: 'pgdata' });
  }
  if (isPgData(pgdata)) {
    throw new ValidationError(`${pgdata} already holds a Postgres data directory`, { hint: 'point --pgdata at an empty or new directory', field: 'pgdata' });
  }
  if (await portInUse('127.0.0.1', options.pgPort)) {
    throw new ConflictError(`port ${options.pgPort} is already in use`, { hint: 'choose another with --pg-port' });
  }
  const listen = parseListen(options.listen);
  if (await portInUse(listen.host, listen.port)) {
    throw new ConflictError(`listen address ${options.listen} is already in use`, { hint: 'choose another with --listen' });
  }
  ensurePghaDir(paths.dir);
  const tls = setUpMonitorTls(options.ssl ?? { mode: 'self-signed' }, paths.tlsDir, monitorCertificateHosts(listen.host));
  if (tls.mode === 'off') log.warn('TLS is OFF (--no-ssl): tokens, passwords and reports cross the network in clear text; use this for tests only');
  writeSecretFile(paths.authToken, `${generateSecret()}\n`);
  const config: MonitorConfig = { version: 2, pgdata, pgPort: options.pgPort, listen: options.listen, authTokenFile: paths.authToken, tls };
  ensureOwnedDir(pgdata);
  await initdb(pgdata);
  writeHba(pgdata, []);
  await startMonitorPostgres(config, log);
  const db = openStore(storeConnection(config));
  try {
    await migrateToLatest(db);
    await createFormation(db, DEFAULT_FORMATION);
  } finally {
    await db.destroy();
    await pgCtlStop(pgdata);
  }
  writeJsonAtomic(paths.config, config);
  log.info({ pgdata, listen: options.listen, tls: tls.mode, authTokenFile: paths.authToken, ...(tls.mode === 'off' ? {} : { caFile: tls.caFile }) }, 'monitor created');
  return config;
}

/** A running monitor; `stop()` ends every loop, the HTTP server and its Postgres. */
export interface RunningMonitor {
  url: string;
  stop(): Promise<void>;
}

/**
 * Runs a monitor: starts (and keeps restarting) its Postgres, migrates, serves the API,
 * probes nodes and re-evaluates groups every `timerIntervalMs`.
 */
export async function runMonitor(pgdataArg: string, log: Logger, options: { timerIntervalMs?: number } = {}): Promise<RunningMonitor> {
  const config = loadMonitorConfig(resolve(pgdataArg));
  // Read every secret before starting anything: a bad file stops the monitor with its name.
  const operatorTokenSha256 = tokenSha256(readSecretFile(config.authTokenFile, 'auth token'));
  const https = loadHttpsOptions(config.tls);
  const certificateAuthority = loadCertificateAuthority(config.tls);
  const probeCa = loadCaCertificate(config.tls);
  if (!https) log.warn('TLS is OFF (created with --no-ssl): tokens, passwords and reports cross the network in clear text; use this for tests only');
  await startMonitorPostgres(config, log);
  const conn = storeConnection(config);
  const db = openStore({ ...conn, max: STORE_POOL_SIZE });
  await migrateToLatest(db);
  const driver = new GroupDriver(db, log.child({ component: 'driver' }));
  const notifier = new GoalNotifier(conn);
  await notifier.start();
  const metrics = new MonitorMetrics({ processMetrics: true });
  const prober = new HealthProber(db, driver, log.child({ component: 'prober' }), DEFAULT_FORMATION_SETTINGS.healthProbeIntervalMs, probeCa, (node) => metrics.probeFailed(node));
  prober.start();

  let stopping = false;
  const timerIntervalMs = options.timerIntervalMs ?? DEFAULT_FORMATION_SETTINGS.keeperReportIntervalMs;
  // One tick at a time: a tick that takes longer than the interval delays the next one
  // rather than running beside it.
  let ticking = false;
  const timer = setInterval(() => {
    if (ticking) return;
    ticking = true;
    void (async () => {
      // Supervise the store: restart Postgres if it died.
      if (postmasterPid(config.pgdata) === undefined && !stopping) {
        log.warn("the monitor's Postgres is not running: restarting it");
        await startMonitorPostgres(config, log).catch((err: Error) => log.error(err.message));
        return;
      }
      await driver.evaluateAll('timer');
    })()
      .catch((err: Error) => log.warn({ err: err.message }, 'timer evaluation failed'))
      .finally(() => {
        ticking = false;
      });
  }, timerIntervalMs);

  const auth = { operatorTokenSha256, nodeCredentials: new NodeCredentials(db) };
  const app = buildApp({ db, driver, notifier, log, auth, metrics, ...(certificateAuthority ? { certificateAuthority } : {}) }, https);
  const { host, port } = parseListen(config.listen);
  await app.listen({ host, port });
  const url = `${https ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log.info({ url }, 'monitor is running');

  return {
    url,
    async stop() {
      stopping = true;
      clearInterval(timer);
      prober.stop();
      await app.close();
      await notifier.stop();
      await db.destroy();
      await pgCtlStop(config.pgdata);
    },
  };
}
