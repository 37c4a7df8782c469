/**
 * `pgha monitor create` and `pgha monitor run`: the monitor's own Postgres (initdb'd and
 * supervised here), the migrations, the HTTP API, the health prober and the timer that
 * re-evaluates every group (time-based rules such as "keeper silent").
 */
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import {
  ConflictError,
  DEFAULT_FORMATION,
  PghaError,
  ValidationError,
  DEFAULT_FORMATION_SETTINGS,
} from '@pgha/shared';
import { acquirePidFile, assertOwnDataDirectory, ensureOwnedDir, ensurePghaDir, initdb, pidFilePath, isEmptyOrMissing, isPgData, pgCtlStop, portInUse, postmasterPid, writeHba, readSecretFile, releasePidFile, writeJsonAtomic, writeSecretFile } from '@pgha/postgres';
import { NodeCredentials, tokenSha256, type ApiAuth } from './auth.js';
import { generateSecret } from './secrets.js';
import { loadCaCertificate, loadCertificateAuthority, loadHttpsOptions, monitorCertificateHosts, setUpMonitorTls, type MonitorSslOption } from './tls/monitor-tls.js';
import { buildApp } from './app.js';
import { singleMonitorProvider } from './routes/monitors.js';
import { GroupDriver } from './driver/group-driver.js';
import { MonitorLag } from './driver/monitor-lag.js';
import { ReportBatcher } from './driver/report-batcher.js';
import { loadMonitorConfig, monitorPaths, parseListen, type MonitorConfig } from './monitor-config.js';
import { HealthProber } from './prober/health-prober.js';
import { LoudDeathWatch, readLoudDeathTarget } from './prober/loud-death-watch.js';
import { ReportNudges } from './report-nudges.js';
import { MonitorMetrics } from './metrics/monitor-metrics.js';
import { openPostgresStore } from './store/postgres/postgres-store.js';
import { etcdConnectionOf, openConfiguredStore, storeConnection } from './store/open-store.js';
import { readStoreSecrets } from './store/etcd/store-meta.js';
import { startEtcdHa, type EtcdHa } from './ha/etcd-ha.js';
import { createEtcdMonitor, type EtcdStoreOption } from './create-etcd-monitor.js';
import { assertMonitorData, startMonitorPostgres } from './monitor-postgres.js';
import { probeCatalogueReader } from './formation/postgres-parameters.js';

/** Options of {@link createMonitor}. */
export interface CreateMonitorOptions {
  pgdata: string;
  pgPort: number;
  listen: string;
  /** TLS of the HTTP API (and the CA of nodes' certificates); default `self-signed`. */
  ssl?: MonitorSslOption;
  /** An etcd store shared with other monitors instead of its own Postgres (`--store`); `pgPort` is then unused. */
  store?: EtcdStoreOption;
}

/**
 * Creates a monitor: initdb, configuration (Unix socket only, no TCP), migrations, the
 * default formation; monitor.json records the data directory's database system identifier.
 * Leaves its Postgres stopped; `pgha monitor run` starts it.
 *
 * @throws ValidationError for a non-empty --pgdata that is not a data directory;
 *   ConflictError when a monitor already exists there or the port is in use.
 */
export async function createMonitor(options: CreateMonitorOptions, log: Logger): Promise<MonitorConfig> {
  if (options.store) return createEtcdMonitor({ ...options, store: options.store }, log);
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
  writeSecretFile(paths.viewerToken, `${generateSecret()}\n`);
  ensureOwnedDir(pgdata);
  await initdb(pgdata);
  const systemIdentifier = assertOwnDataDirectory(pgdata, undefined, { who: 'the new monitor', recordFile: paths.config, hint: 'initdb made no data directory there: see the error before this one' });
  const config: MonitorConfig = { version: 2, pgdata, pgPort: options.pgPort, listen: options.listen, authTokenFile: paths.authToken, viewerTokenFile: paths.viewerToken, tls, systemIdentifier };
  writeHba(pgdata, []);
  await startMonitorPostgres(config, log);
  const store = openPostgresStore(storeConnection(config));
  try {
    await store.migrate();
    await store.formations.create(DEFAULT_FORMATION);
  } finally {
    await store.close();
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
  /**
   * Settles when the monitor stopped on its own because its data directory is no longer the
   * one it created (deleted, or replaced by another cluster, e.g. by a `pgha monitor create`
   * at the same path): it has logged why, closed its API and loops and released its pid file,
   * and left that directory's Postgres alone. Never settles otherwise.
   */
  failure: Promise<PghaError>;
  /**
   * Takes the operator and viewer tokens again (SIGHUP, sent by `pgha monitor rotate-token`):
   * from their files (`monitor.json`'s `authTokenFile`, `viewerTokenFile`) on the monitor's own
   * Postgres, from the store's secrets on etcd (where the store's watch takes them by itself).
   * From the next request on, the old tokens are refused. A file that cannot be read changes
   * nothing (logged). Never throws.
   */
  reloadTokens(): Promise<void>;
}

/**
 * Runs a monitor: takes its pid file (one monitor per data directory), checks that the data
 * directory is the one it created (recording its identifier in a monitor.json from before pgha
 * recorded it), starts (and keeps restarting) its Postgres, migrates, serves the API, probes
 * nodes and re-evaluates groups every `timerIntervalMs`. Every tick checks the data directory
 * again (one read of `global/pg_control`): a monitor whose directory was replaced stops (see
 * {@link RunningMonitor.failure}) rather than start, or serve from, a Postgres it did not
 * create.
 *
 * @throws ConflictError when a monitor already runs for the data directory (its pid in the
 *   message); PghaError `PGHA_ERR_CONFIG` for a missing or damaged monitor.json or secret;
 *   `PGHA_ERR_PGDATA` when the data directory is not the monitor's; `PGHA_ERR_STORE_UNAVAILABLE`
 *   when a migration fails.
 */
export async function runMonitor(pgdataArg: string, log: Logger, options: { timerIntervalMs?: number } = {}): Promise<RunningMonitor> {
  const pgdata = resolve(pgdataArg);
  let config = loadMonitorConfig(pgdata);
  const replaced = acquirePidFile(pgdata, 'monitor');
  try {
    if (replaced) log.warn(`replaced the stale pid file ${pidFilePath(pgdata, 'monitor')}: ${replaced}`);
    // A monitor on etcd has no Postgres of its own to check.
    if (!config.store) config = recordSystemIdentifier(config, assertMonitorData(config), log);
    return await serveMonitor(config, log, options);
  } catch (err) {
    releasePidFile(pgdata, 'monitor');
    throw err;
  }
}

/** Writes the identifier found into a monitor.json that has none (from before pgha recorded it). */
function recordSystemIdentifier(config: MonitorConfig, found: string, log: Logger): MonitorConfig {
  if (config.systemIdentifier !== undefined) return config;
  const recorded = { ...config, systemIdentifier: found };
  const path = monitorPaths(config.pgdata).config;
  writeJsonAtomic(path, recorded);
  log.info({ systemIdentifier: found }, `recorded the data directory's database system identifier ${found} in ${path} at the first start on this data directory (the file is from before pgha recorded it)`);
  return recorded;
}

/** The part of {@link runMonitor} after its pid file and the first check of its data directory. */
async function serveMonitor(config: MonitorConfig, log: Logger, options: { timerIntervalMs?: number }): Promise<RunningMonitor> {
  // Read every secret before starting anything: a bad file stops the monitor with its name.
  // On etcd the operator token's digest is the store's (one token for every monitor).
  const ownPostgres = !config.store;
  const tokenFileSha256 = ownPostgres ? tokenSha256(readSecretFile(config.authTokenFile, 'auth token')) : undefined;
  const viewerFileSha256 = ownPostgres && config.viewerTokenFile ? tokenSha256(readSecretFile(config.viewerTokenFile, 'viewer token')) : undefined;
  const https = loadHttpsOptions(config.tls);
  const certificateAuthority = loadCertificateAuthority(config.tls);
  const probeCa = loadCaCertificate(config.tls);
  if (!https) log.warn('TLS is OFF (created with --no-ssl): tokens, passwords and reports cross the network in clear text; use this for tests only');
  if (ownPostgres) await startMonitorPostgres(config, log);
  const opened = await openConfiguredStore(config);
  const { store, notifier } = opened;
  const operatorTokenSha256 = opened.operatorTokenSha256 ?? tokenFileSha256!;
  const lag = new MonitorLag();
  const driver = new GroupDriver(store, log.child({ component: 'driver' }), lag);
  const reports = new ReportBatcher(store, driver, lag);
  const metrics = new MonitorMetrics({ processMetrics: true });
  const prober = new HealthProber(store.probes, driver, log.child({ component: 'prober' }), DEFAULT_FORMATION_SETTINGS.healthProbeIntervalMs, probeCa, (node) => metrics.probeFailed(node));
  const nudges = new ReportNudges();
  driver.askReports = (nodeIds) => {
    for (const nodeId of nodeIds) nudges.ask(nodeId);
  };
  const loudDeaths = new LoudDeathWatch({
    nudges,
    target: (nodeId) => readLoudDeathTarget(store, nodeId),
    decidesFor: (formationId) => driver.decidesFor(formationId),
    evaluate: (formationId, groupId) => driver.evaluate(formationId, groupId, 'health').catch((err: Error) => log.warn({ err: err.message, formation: formationId, group: groupId }, 'evaluation after a loud death failed')),
    log: log.child({ component: 'prober' }),
  });
  driver.diedLoudlyMs = (nodeId) => loudDeaths.diedLoudlyMs(nodeId);
  prober.onProbeAnswered = (nodeId, startedAtMs) => loudDeaths.probeAnswered(nodeId, startedAtMs);
  const viewerTokenSha256 = opened.viewerTokenSha256 ?? viewerFileSha256;
  const auth: ApiAuth = { operatorTokenSha256, ...(viewerTokenSha256 ? { viewerTokenSha256 } : {}), nodeCredentials: new NodeCredentials(store.credentials) };
  /** Replaces the tokens' digests that changed (read at each request: the old token is refused from the next one on). */
  const takeDigests = (operator: string, viewer: string | undefined, from: string): void => {
    const changed = [...(operator !== auth.operatorTokenSha256 ? ['operator'] : []), ...(viewer !== auth.viewerTokenSha256 ? ['viewer'] : [])];
    auth.operatorTokenSha256 = operator;
    if (viewer === undefined) delete auth.viewerTokenSha256;
    else auth.viewerTokenSha256 = viewer;
    if (changed.length === 0) log.info(`tokens read again from ${from}: unchanged`);
    for (const role of changed) log.info({ security: true, role }, `the ${role} token was replaced (${from}): the old one is refused from now on`);
  };
  const reloadTokens = async (): Promise<void> => {
    try {
      if (config.store) {
        const secrets = await readStoreSecrets(opened.etcd!.client, etcdConnectionOf(config.store));
        takeDigests(secrets.operatorTokenSha256, secrets.viewerTokenSha256, "the store's secrets");
        return;
      }
      const files = loadMonitorConfig(config.pgdata);
      const viewerFile = files.viewerTokenFile;
      takeDigests(tokenSha256(readSecretFile(files.authTokenFile, 'auth token')), viewerFile ? tokenSha256(readSecretFile(viewerFile, 'viewer token')) : undefined, viewerFile ? `${files.authTokenFile} and ${viewerFile}` : files.authTokenFile);
    } catch (err) {
      log.error(`tokens not read again, the monitor keeps the ones it has: ${err instanceof PghaError ? err.toUserLine() : (err as Error).message}`);
    }
  };
  const { host, port } = parseListen(config.listen);
  const url = advertisedUrl(host, port, !!https);
  // On etcd: campaign for every formation; the driver's timer and the prober act only for the
  // formations this monitor leads (set before the prober's first round).
  let ha: EtcdHa | undefined;
  if (opened.etcd) {
    opened.etcd.revisionBaseRaised = (from, to) =>
      log.warn(`a keeper had applied a goal revision above this store's (a store restored from a snapshot, or moved from another store): goal revisions now count from ${to} instead of ${from}, so that keepers take the store's goals`);
    opened.etcd.credentialRevoked = (digest) => auth.nodeCredentials.forget(digest);
    opened.etcd.secretsChanged = (secrets) => (secrets ? takeDigests(secrets.operatorTokenSha256, secrets.viewerTokenSha256, "the store's secrets, by pgha monitor rotate-token") : void reloadTokens());
  }
  try {
    ha = opened.etcd
      ? await startEtcdHa({ store: opened.etcd, connection: etcdConnectionOf(config.store!), driver, prober, monitorId: new URL(url).host, url, ...(probeCa ? { ca: probeCa } : {}), log: log.child({ component: 'leadership' }) })
      : undefined;
  } catch (err) {
    await opened.close();
    throw err;
  }
  prober.start();
  const monitors = ha?.monitors ?? singleMonitorProvider(url, async () => (await store.formations.list()).map((f) => f.formationId));
  const app = buildApp(
    { store, driver, reports, notifier, log, auth, metrics, monitors, loudDeaths, nudges, postgresCatalogue: probeCatalogueReader(probeCa), ...(certificateAuthority ? { certificateAuthority } : {}), ...(ha ? { ha: { leadership: ha.leadership, ...(probeCa ? { ca: probeCa } : {}) } } : {}) },
    https,
  );

  let stopping = false;
  let settleFailure!: (err: PghaError) => void;
  const failure = new Promise<PghaError>((r) => (settleFailure = r));
  let timer: NodeJS.Timeout | undefined;
  /** Ends every loop, the API and the store's pool; stops Postgres only when asked. */
  const shutdown = async (stopPostgres: boolean): Promise<void> => {
    stopping = true;
    clearInterval(timer);
    loudDeaths.stop();
    prober.stop();
    // Give up every formation first: another monitor takes over at once, not after the TTL.
    await ha?.stop().catch((err: Error) => log.warn(`giving up the leadership: ${err.message}`));
    await app.close();
    await opened.close();
    if (stopPostgres) await pgCtlStop(config.pgdata);
    releasePidFile(config.pgdata, 'monitor');
  };
  /** The data directory is not the monitor's any more: log why, stop, leave its Postgres alone. */
  const fail = async (err: PghaError): Promise<void> => {
    if (stopping) return;
    log.error({ code: err.code }, err.toUserLine());
    await shutdown(false).catch((e: Error) => log.warn({ err: e.message }, 'stopping the monitor after the refusal'));
    settleFailure(err);
  };

  const timerIntervalMs = options.timerIntervalMs ?? DEFAULT_FORMATION_SETTINGS.keeperReportIntervalMs;
  // One tick at a time: a tick that takes longer than the interval delays the next one
  // rather than running beside it.
  let ticking = false;
  timer = setInterval(() => {
    if (ticking || stopping) return;
    ticking = true;
    void (async () => {
      // The store must still be the monitor's own: its directory deleted or created again at
      // the same path (another initdb) stops this monitor, whether a Postgres runs there or not.
      if (ownPostgres) assertMonitorData(config, 'the monitor stops rather than start or use a Postgres it did not create');
      // Supervise the store: restart Postgres if it died.
      if (ownPostgres && postmasterPid(config.pgdata) === undefined) {
        log.warn("the monitor's Postgres is not running: restarting it");
        await startMonitorPostgres(config, log).catch((err: Error) => {
          if (err instanceof PghaError && err.code === 'PGHA_ERR_PGDATA') throw err;
          log.error(`restarting the monitor's Postgres failed: ${err.message}`);
        });
        return;
      }
      await driver.evaluateAll('timer');
    })()
      .catch(async (err: Error) => {
        if (err instanceof PghaError && err.code === 'PGHA_ERR_PGDATA') await fail(err);
        else log.warn({ err: err.message }, 'timer evaluation failed');
      })
      .finally(() => {
        ticking = false;
      });
  }, timerIntervalMs);

  await app.listen({ host, port });
  log.info({ url }, 'monitor is running');

  return {
    url,
    failure,
    reloadTokens,
    async stop() {
      if (stopping) return;
      let own = ownPostgres;
      try {
        if (own) assertMonitorData(config);
      } catch (err) {
        own = false;
        log.warn(`leaving the Postgres of ${config.pgdata} alone: ${(err as Error).message}`);
      }
      await shutdown(own);
    },
  };
}

/**
 * The URL other monitors and keepers reach this monitor at: its listen address, or this host's
 * name when it listens on every address (`0.0.0.0`, `::`).
 */
function advertisedUrl(host: string, port: number, https: boolean): string {
  const h = host === '0.0.0.0' || host === '::' ? hostname() : host.includes(':') ? `[${host}]` : host;
  return `${https ? 'https' : 'http'}://${h}:${port}`;
}
