/**
 * `pgha monitor create --store etcd://…`: a monitor whose store is an etcd cluster shared with
 * other monitors. No Postgres data directory is made; the monitor's own files (TLS, operator
 * token, `monitor.json`) live in `<pgdata>.pgha/`, as a monitor's on its own Postgres.
 *
 * - Without `--join` the prefix must be empty: the store is made there (`initEtcdStore`: its
 *   meta, and its secrets: the new operator token's digest and the new monitors' CA), with the
 *   default formation.
 * - With `--join` the prefix must hold a store: the monitor takes its secrets (it accepts the
 *   same operator token; its HTTPS certificate is signed by the same CA, so that keepers and
 *   operators trust every monitor alike). It writes no token file: operators use the first
 *   monitor's.
 *
 * - With `--from-monitor OLD` (without `--join`) the new store is a copy of the store of the
 *   stopped monitor on its own Postgres at `OLD` (`old-monitor.ts`, `store/etcd/store-import.ts`):
 *   its formations, nodes, node tokens' digests and latest events; its operator token (this
 *   monitor's `auth-token` is the old one's) and, when it made its own CA, that CA (it signed the
 *   keepers' certificates, and keepers trust it), unless TLS options say otherwise.
 *
 * Every check, and the store's making, comes before any local file is written: a refusal
 * writes nothing, in etcd or on disk.
 */
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Etcd3 } from 'etcd3';
import { ConflictError, DEFAULT_FORMATION, PghaError, ValidationError } from '@pgha/shared';
import { ensurePghaDir, portInUse, writeJsonAtomic, writeSecretFile } from '@pgha/postgres';
import { tokenSha256 } from './auth.js';
import { monitorPaths, parseListen, type MonitorConfig } from './monitor-config.js';
import { generateSecret } from './secrets.js';
import { parseStoreUri, type EtcdConnection } from './store/etcd/etcd-client.js';
import { openEtcdStore } from './store/etcd/etcd-store.js';
import type { StoreKeys } from './store/etcd/keys.js';
import { importStoreContents } from './store/etcd/store-import.js';
import { initEtcdStore, type StoreSecrets } from './store/etcd/store-meta.js';
import { inspectOldMonitor, readOldMonitorStore } from './old-monitor.js';
import { createCertificateAuthority } from './tls/certificates.js';
import { monitorCertificateHosts, setUpMonitorTls, type MonitorSslOption } from './tls/monitor-tls.js';

/** `--store URI` and its options. */
export interface EtcdStoreOption {
  /** `etcd://HOST:PORT[,HOST:PORT…][/prefix]`. */
  uri: string;
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
  /** Join the store at the prefix rather than make one. */
  join?: boolean | undefined;
  /** The data directory of a stopped monitor on its own Postgres whose store the new store copies. */
  fromMonitor?: string | undefined;
}

/**
 * Creates a monitor on an etcd store (see the module).
 *
 * @throws ValidationError for a malformed store URI, `--from-monitor` with `--join`, of a
 *   directory without a monitor or of a monitor on etcd; ConflictError when a monitor exists at
 *   `pgdata`, the listen address is in use, or the old monitor runs; PghaError
 *   `PGHA_ERR_CONFIG` (the old monitor's damaged files), `PGHA_ERR_STORE_MISMATCH` (a store
 *   already there without `--join`, none with it, another program's keys, a newer store),
 *   `PGHA_ERR_STORE_UNAVAILABLE` (no etcd answers), `PGHA_ERR_TLS` (TLS asked and not spoken,
 *   or the reverse; unreadable files).
 */
export async function createEtcdMonitor(options: { pgdata: string; listen: string; ssl?: MonitorSslOption; store: EtcdStoreOption }, log: Logger): Promise<MonitorConfig> {
  const pgdata = resolve(options.pgdata);
  const paths = monitorPaths(pgdata);
  if (existsSync(paths.config)) throw new ConflictError(`a monitor already exists at ${pgdata}`, { hint: `run it with: pgha monitor run --pgdata ${pgdata}` });
  const listen = parseListen(options.listen);
  if (await portInUse(listen.host, listen.port)) throw new ConflictError(`listen address ${options.listen} is already in use`, { hint: 'choose another with --listen' });
  const { endpoints, prefix } = parseStoreUri(options.store.uri);
  const conn: EtcdConnection = {
    endpoints,
    prefix,
    caFile: options.store.caFile && resolve(options.store.caFile),
    certFile: options.store.certFile && resolve(options.store.certFile),
    keyFile: options.store.keyFile && resolve(options.store.keyFile),
  };
  const ssl = options.ssl ?? { mode: 'self-signed' };
  const join = options.store.join ?? false;
  if (join && options.store.fromMonitor) throw new ValidationError('--from-monitor makes a new store: it does not go with --join', { hint: 'copy the old monitor with the first new monitor, then add the others with --join', field: 'from-monitor' });
  const old = options.store.fromMonitor ? inspectOldMonitor(options.store.fromMonitor) : undefined;
  // What a new store's secrets need, made in memory: written to disk once the store is made.
  const token = join ? undefined : (old?.operatorToken ?? generateSecret());
  const viewerToken = join ? undefined : (old?.viewerToken ?? generateSecret());
  const newCa = !join && ssl.mode === 'self-signed' ? (ssl.ca ?? old?.ca ?? createCertificateAuthority(`pgha monitors CA ${hostname()}`)) : undefined;
  const secrets: StoreSecrets | undefined = token ? { operatorTokenSha256: tokenSha256(token), ...(viewerToken ? { viewerTokenSha256: tokenSha256(viewerToken) } : {}), ...(newCa ? { ca: { certPem: newCa.certificatePem, keyPem: newCa.privateKeyPem } } : {}) } : undefined;
  const fill = old
    ? async (client: Etcd3, keys: StoreKeys): Promise<void> => {
        const contents = await readOldMonitorStore(old.config, log);
        const written = await importStoreContents(client, keys, contents, Date.now());
        log.info({ from: old.config.pgdata, ...written }, `copied the store of the monitor at ${old.config.pgdata} into ${options.store.uri} (event ids change; goal revisions rise above the keepers' at their first report)`);
      }
    : undefined;
  const made = await initEtcdStore(conn, { join, ...(secrets ? { secrets } : {}), ...(fill ? { fill } : {}) });
  if (!join && !old) {
    const store = await openEtcdStore(conn, { expectedStoreId: made.meta.storeId });
    try {
      await store.formations.create(DEFAULT_FORMATION);
    } finally {
      await store.close();
    }
  }
  const storeCa = made.secrets.ca ? { certificatePem: made.secrets.ca.certPem, privateKeyPem: made.secrets.ca.keyPem } : undefined;
  if (join && ssl.mode === 'self-signed' && !storeCa) {
    throw new PghaError('PGHA_ERR_TLS', `the store's first monitor made no CA (it serves plain HTTP or the operator's certificates), so this one cannot sign its certificate with it`, {
      hint: 'give this monitor the same TLS as the others: --ssl-ca-file with --server-cert and --server-key, or --no-ssl',
    });
  }
  ensurePghaDir(paths.dir);
  const tls = setUpMonitorTls(ssl.mode === 'self-signed' && storeCa ? { mode: 'self-signed', ca: storeCa } : ssl, paths.tlsDir, monitorCertificateHosts(listen.host));
  if (tls.mode === 'off') log.warn('TLS is OFF (--no-ssl): tokens, passwords and reports cross the network in clear text; use this for tests only');
  if (token) writeSecretFile(paths.authToken, `${token}\n`);
  if (viewerToken) writeSecretFile(paths.viewerToken, `${viewerToken}\n`);
  const config: MonitorConfig = {
    version: 2,
    pgdata,
    pgPort: 0,
    listen: options.listen,
    authTokenFile: paths.authToken,
    ...(viewerToken ? { viewerTokenFile: paths.viewerToken } : {}),
    tls,
    store: { kind: 'etcd', endpoints, prefix, ...(conn.caFile ? { caFile: conn.caFile } : {}), ...(conn.certFile ? { certFile: conn.certFile } : {}), ...(conn.keyFile ? { keyFile: conn.keyFile } : {}), storeId: made.meta.storeId },
  };
  writeJsonAtomic(paths.config, config);
  log.info(
    { pgdata, listen: options.listen, tls: tls.mode, store: options.store.uri, storeId: made.meta.storeId, ...(token ? { authTokenFile: paths.authToken } : {}), ...(tls.mode === 'off' ? {} : { caFile: tls.caFile }) },
    join ? "monitor created, joined the etcd store (operators use the operator token of the store's first monitor)" : 'monitor created with a new etcd store',
  );
  return config;
}
