/**
 * The monitor's own Postgres (a monitor without an etcd store): the check that its data
 * directory is the one it created, and its start. Used by `monitor create`, `monitor run` and
 * `monitor create --from-monitor` (which reads an old monitor's store to copy it into etcd).
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { assertOwnDataDirectory, ensureOwnedDir, ensurePghaDir, startPostgres, postmasterPid, socketDirFor, writePghaConf } from '@pgha/postgres';
import { monitorPaths, type MonitorConfig } from './monitor-config.js';

/**
 * Checks that the monitor's data directory still holds the cluster it created (the database
 * system identifier of monitor.json), before its Postgres is started there or used.
 * `refusal` starts the message: what the monitor does not do.
 *
 * @returns the identifier found (to record when monitor.json has none).
 * @throws PghaError `PGHA_ERR_PGDATA` when the directory is missing, is not a data directory, or
 *   holds another cluster (see `assertOwnDataDirectory`).
 */
export function assertMonitorData(config: MonitorConfig, refusal?: string): string {
  const { config: recordFile } = monitorPaths(config.pgdata);
  return assertOwnDataDirectory(config.pgdata, config.systemIdentifier, {
    who: 'this monitor',
    recordFile,
    ...(refusal ? { refusal } : {}),
    hint: `a monitor starts no Postgres but the one it created: put its data directory back at ${config.pgdata}; if pgha monitor create made a new monitor there, run that one (pgha monitor run --pgdata ${config.pgdata}) once this one has stopped`,
  });
}

/**
 * Starts the monitor's Postgres unless it runs, in the monitor's own data directory only:
 * nothing is created or written (pgha.conf, log and socket directories) before
 * {@link assertMonitorData} passes.
 *
 * @throws PghaError `PGHA_ERR_PGDATA` when the data directory is not the monitor's;
 *   PostgresCommandError when pg_ctl fails.
 */
export async function startMonitorPostgres(config: MonitorConfig, log: Logger): Promise<void> {
  if (postmasterPid(config.pgdata) !== undefined) return;
  assertMonitorData(config);
  const { dir, logDir } = monitorPaths(config.pgdata);
  ensurePghaDir(dir);
  ensureOwnedDir(logDir);
  ensureOwnedDir(socketDirFor(config.pgdata));
  log.info({ pgdata: config.pgdata, port: config.pgPort }, "starting the monitor's Postgres");
  writePghaConf(config.pgdata, { role: 'monitor', listenAddresses: '', port: config.pgPort, socketDir: socketDirFor(config.pgdata), synchronousStandbyNames: '' });
  await startPostgres(config.pgdata, join(logDir, 'postgres.log'));
}
