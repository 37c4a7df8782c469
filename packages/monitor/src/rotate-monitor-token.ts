/**
 * `pgha monitor rotate-token [--viewer]`, the part on the monitor's host: a new operator (or
 * viewer) token, written to its file (0600, atomically) and made the one the monitors accept.
 *
 * - **Monitor on its own Postgres**: the token file is the truth (the monitor reads it at start).
 *   The new file is written first, then the running monitor is told with SIGHUP
 *   (`RunningMonitor.reloadTokens`); the CLI then checks that it refuses the old token, and puts
 *   the old file back ({@link MonitorTokenRotation.undo}) when it does not. A crash between the
 *   two steps leaves a file holding a token the monitor takes at its next SIGHUP or start: never
 *   a token nobody holds. A stopped monitor takes the new file when it starts.
 * - **Monitors on etcd**: the store's secrets (`<p>/v1/secrets`) are the truth: the new file is
 *   written, then the digest replaced in one Txn (`replaceStoreTokenDigest`); every monitor
 *   watches the key and refuses the old token at once. A failed Txn puts the old file back.
 *   Running again after a crash between the two writes rotates again (no old token needed).
 *
 * The token itself never reaches a log, an event or the command line.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { inspectPidFile, readSecretFile, writeJsonAtomic, writeSecretFile } from '@pgha/postgres';
import { PghaError } from '@pgha/shared';
import { tokenSha256 } from './auth.js';
import { loadMonitorConfig, monitorPaths, monitorUrlFor, type MonitorConfig } from './monitor-config.js';
import { generateSecret } from './secrets.js';
import { etcdConnectionOf } from './store/open-store.js';
import { checkEtcdReachable, openEtcdClient } from './store/etcd/etcd-client.js';
import { StoreKeys } from './store/etcd/keys.js';
import { replaceStoreTokenDigest } from './store/etcd/store-meta.js';
import { loadCaCertificate } from './tls/monitor-tls.js';

/** Which of the monitor's two tokens: the operator's (everything) or the viewer's (reads only). */
export type MonitorTokenRole = 'operator' | 'viewer';

/** What {@link rotateMonitorToken} did. */
export interface MonitorTokenRotation {
  role: MonitorTokenRole;
  /** The file now holding the new token (0600). */
  tokenFile: string;
  store: 'postgres' | 'etcd';
  /** The new token: for the caller's check that the monitors take it; never printed or logged. */
  token: string;
  /** The token it replaced, from this host's file; undefined when there was none here (a monitor that joined an etcd store, a monitor without a viewer token). */
  oldToken: string | undefined;
  /** The pid of the monitor of this data directory that was sent SIGHUP (its own Postgres store); undefined when none runs. */
  signalledPid: number | undefined;
  /**
   * The monitors that must now refuse the old token and take the new one: this host's running
   * monitor (own Postgres), or every monitor alive in the etcd store (its `monitors/` keys).
   */
  monitorUrls: string[];
  /** The CA (PEM) of those monitors' HTTPS certificates; undefined with TLS off. */
  ca: string | undefined;
  /**
   * Puts the old token back (own Postgres store: the old file and monitor.json, and SIGHUP
   * again), when the monitor did not take the new one. Not on etcd (the store has the new one).
   */
  undo(): void;
}

/** URLs of the monitors alive in the etcd store (each holds `<p>/v1/monitors/<id>` under its lease). */
async function liveMonitorUrls(client: ReturnType<typeof openEtcdClient>, keys: StoreKeys): Promise<string[]> {
  const values = await client.getAll().prefix(keys.monitors).strings();
  return Object.values(values).flatMap((v) => {
    try {
      const url = (JSON.parse(v) as { url?: unknown }).url;
      return typeof url === 'string' ? [url] : [];
    } catch {
      return [];
    }
  });
}

/**
 * Rotates the operator or viewer token of the monitor at `pgdata` (see the module).
 *
 * @throws PghaError `PGHA_ERR_CONFIG` for a missing or damaged monitor.json, or a token file
 *   that cannot be read or is readable by others (nothing written); the etcd store's errors
 *   (`PGHA_ERR_STORE_UNAVAILABLE`, `PGHA_ERR_TLS`, `PGHA_ERR_STORE_MISMATCH`) with the old file
 *   put back.
 */
export async function rotateMonitorToken(pgdataArg: string, role: MonitorTokenRole): Promise<MonitorTokenRotation> {
  const pgdata = resolve(pgdataArg);
  const config = loadMonitorConfig(pgdata);
  const paths = monitorPaths(pgdata);
  const tokenFile = role === 'operator' ? config.authTokenFile : (config.viewerTokenFile ?? paths.viewerToken);
  // Read before anything is written: a file readable by others is refused here, with its hint.
  const oldToken = existsSync(tokenFile) ? readSecretFile(tokenFile, `${role} token`) : undefined;
  const ca = loadCaCertificate(config.tls);
  const token = generateSecret();
  const oldFile = existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8') : undefined;
  // A monitor without a viewer token gets one: monitor.json names its file from now on.
  const newConfig: MonitorConfig | undefined = role === 'viewer' && config.viewerTokenFile === undefined ? { ...config, viewerTokenFile: tokenFile } : undefined;
  const putBack = (): void => {
    if (newConfig) writeJsonAtomic(paths.config, config);
    if (oldFile === undefined) rmSync(tokenFile, { force: true });
    else writeSecretFile(tokenFile, oldFile);
  };
  writeSecretFile(tokenFile, `${token}\n`);
  if (newConfig) writeJsonAtomic(paths.config, newConfig);

  if (config.store) {
    const conn = etcdConnectionOf(config.store);
    const client = openEtcdClient(conn);
    try {
      await checkEtcdReachable(client, conn);
      await replaceStoreTokenDigest(client, conn, role, tokenSha256(token));
      const monitorUrls = await liveMonitorUrls(client, new StoreKeys(conn.prefix)).catch(() => []);
      return { role, tokenFile, store: 'etcd', token, oldToken, signalledPid: undefined, monitorUrls, ca, undo: () => undefined };
    } catch (err) {
      putBack();
      throw err;
    } finally {
      client.close();
    }
  }

  const seen = inspectPidFile(pgdata, 'monitor');
  const pid = seen.status === 'running' ? seen.pid : undefined;
  const signal = (): void => {
    if (pid !== undefined) process.kill(pid, 'SIGHUP');
  };
  try {
    signal();
  } catch (err) {
    putBack();
    throw new PghaError('PGHA_ERR_CONFIG', `the monitor of ${pgdata} (pid ${pid}) could not be signalled: ${(err as Error).message}; the old token is back in ${tokenFile}`, { hint: 'run pgha monitor rotate-token as the user that runs the monitor' });
  }
  return {
    role,
    tokenFile,
    store: 'postgres',
    token,
    oldToken,
    signalledPid: pid,
    monitorUrls: pid === undefined ? [] : [monitorUrlFor(config.listen, config.tls.mode !== 'off')],
    ca,
    undo: () => {
      putBack();
      signal();
    },
  };
}
