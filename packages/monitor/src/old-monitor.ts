/**
 * The monitor on its own Postgres that `pgha monitor create --store … --from-monitor OLD` copies
 * into a new etcd store (docs/monitor-ha.md, "From one monitor on Postgres to monitors on
 * etcd"). {@link inspectOldMonitor} checks it and reads its secrets without starting anything;
 * {@link readOldMonitorStore} starts its Postgres for the copy only, as `monitor run` does, reads
 * its store through the store port, and stops it again.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { ConflictError, ValidationError } from '@pgha/shared';
import { acquirePidFile, inspectPidFile, pgCtlStop, pidFilePath, postmasterPid, readSecretFile, releasePidFile } from '@pgha/postgres';
import { loadMonitorConfig, monitorPaths, type MonitorConfig } from './monitor-config.js';
import { startMonitorPostgres } from './monitor-postgres.js';
import { readStoreContents, type StoreContents } from './store/etcd/store-import.js';
import { storeConnection } from './store/open-store.js';
import { openPostgresStore } from './store/postgres/postgres-store.js';
import type { KeyAndCertificate } from './tls/certificates.js';
import { loadCertificateAuthority } from './tls/monitor-tls.js';

/** An old monitor, checked, with what the new store takes from it. */
export interface OldMonitor {
  config: MonitorConfig;
  /** Its operator token: the new monitors accept it (operators keep theirs). */
  operatorToken: string;
  /** Its viewer token, when it has one: kept too (a monitor created before it has none, and the new store gets a new one). */
  viewerToken?: string;
  /** Its CA, when it made one (`--ssl-self-signed`): it signed the keepers' certificates. */
  ca: KeyAndCertificate | undefined;
}

/** The refusal of an old monitor that runs, naming its pid and how to stop it. */
function runningRefusal(pgdata: string, pid: number): ConflictError {
  return new ConflictError(`the monitor at ${pgdata} runs (pid ${pid}, pid file ${pidFilePath(pgdata, 'monitor')}): --from-monitor copies a stopped monitor`, {
    hint: `stop it first (kill -TERM ${pid}, or stop its service); its Postgres nodes keep running, and nothing fails over meanwhile`,
  });
}

/**
 * Checks the monitor at `pgdata` for a copy, starting nothing: its `monitor.json`, its store on
 * its own Postgres (not etcd), not running; reads its operator token and CA.
 *
 * @throws ValidationError when `pgdata` has no monitor, or one on an etcd store already;
 *   PghaError `PGHA_ERR_CONFIG` for a damaged `monitor.json` or token file; ConflictError when it runs (its pid
 *   and how to stop it in the message and hint).
 */
export function inspectOldMonitor(pgdataArg: string): OldMonitor {
  const pgdata = resolve(pgdataArg);
  if (!existsSync(monitorPaths(pgdata).config)) {
    throw new ValidationError(`there is no monitor at ${pgdata} (no ${monitorPaths(pgdata).config})`, { hint: "give --from-monitor the --pgdata of the old monitor (the data directory of its Postgres)", field: 'from-monitor' });
  }
  const config = loadMonitorConfig(pgdata);
  if (config.store) {
    throw new ValidationError(`the monitor at ${pgdata} is on an etcd store already (${config.store.endpoints.join(',')}${config.store.prefix}): there is nothing to copy`, {
      hint: `add monitors to that store with: pgha monitor create --store … --join`,
      field: 'from-monitor',
    });
  }
  const pid = inspectPidFile(pgdata, 'monitor');
  if (pid.status === 'running') throw runningRefusal(pgdata, pid.pid);
  return { config, operatorToken: readSecretFile(config.authTokenFile, 'auth token'), ...(config.viewerTokenFile ? { viewerToken: readSecretFile(config.viewerTokenFile, 'viewer token') } : {}), ca: loadCertificateAuthority(config.tls) };
}

/**
 * Reads the old monitor's store for a copy: holds its pid file meanwhile (a `monitor run` of it
 * that started since {@link inspectOldMonitor} is refused here; one started during the copy
 * would take the file as stale, since this process is no `monitor run`: the docs say to keep
 * the old monitor stopped), starts its Postgres as `monitor run` does (its data directory checked, its
 * pending migrations applied) unless it runs already, reads through the store port, and stops
 * the Postgres it started.
 *
 * @throws ConflictError when the monitor started meanwhile; PghaError `PGHA_ERR_PGDATA` when its
 *   data directory is not its own; the Postgres store's errors.
 */
export async function readOldMonitorStore(old: MonitorConfig, log: Logger): Promise<StoreContents> {
  try {
    acquirePidFile(old.pgdata, 'monitor');
  } catch (err) {
    const seen = inspectPidFile(old.pgdata, 'monitor');
    throw seen.status === 'running' ? runningRefusal(old.pgdata, seen.pid) : err;
  }
  const wasRunning = postmasterPid(old.pgdata) !== undefined;
  try {
    await startMonitorPostgres(old, log);
    const store = openPostgresStore(storeConnection(old));
    try {
      await store.migrate();
      return await readStoreContents(store);
    } finally {
      await store.close();
    }
  } finally {
    if (!wasRunning) {
      log.info({ pgdata: old.pgdata }, "stopping the old monitor's Postgres (started for the copy only)");
      await pgCtlStop(old.pgdata);
    }
    releasePidFile(old.pgdata, 'monitor');
  }
}
