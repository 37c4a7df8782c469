/**
 * The monitor's configuration file, `<pgdata>.pgha/monitor.json`, and its secrets beside it:
 * `auth-token` (the operator token, 0600) and, with `--ssl-self-signed`, `tls/` (the CA and
 * the HTTPS certificate; keys 0600, `ca.crt` 0644 to hand to keepers and operators).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { RECOVERY_DOC, SystemIdentifierSchema, pghaDirFor, readJsonFile } from '@pgha/postgres';
import { parseHostPort } from '@pgha/shared';

/**
 * How the monitor serves HTTPS: `self-signed` (its own CA, made at create time, which also
 * signs nodes' Postgres certificates), `files` (the operator's CA, certificate and key), or
 * `off` (plain HTTP: tests only, warned about at every start).
 */
export const MonitorTlsSchema = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('self-signed'), caFile: z.string(), caKeyFile: z.string(), certFile: z.string(), keyFile: z.string() }),
  z.object({ mode: z.literal('files'), caFile: z.string(), certFile: z.string(), keyFile: z.string() }),
  z.object({ mode: z.literal('off') }),
]);
/** See {@link MonitorTlsSchema}. */
export type MonitorTls = z.infer<typeof MonitorTlsSchema>;

/**
 * The monitor's store when it is not its own Postgres: an etcd cluster shared with other
 * monitors (`pgha monitor create --store etcd://…`). `storeId` is the store's
 * (`<prefix>/v1/meta`): a monitor refuses to run on another store.
 */
export const MonitorStoreConfigSchema = z.object({
  kind: z.literal('etcd'),
  /** etcd client endpoints, `HOST:PORT`. */
  endpoints: z.array(z.string()).min(1),
  /** Key prefix, e.g. `/pgha`. */
  prefix: z.string(),
  /** TLS to etcd: its CA, and a client certificate and key when etcd asks for one. */
  caFile: z.string().optional(),
  certFile: z.string().optional(),
  keyFile: z.string().optional(),
  storeId: z.string(),
});
/** See {@link MonitorStoreConfigSchema}. */
export type MonitorStoreConfig = z.infer<typeof MonitorStoreConfigSchema>;

/** Schema of `monitor.json`. */
export const MonitorConfigSchema = z.object({
  version: z.literal(2),
  pgdata: z.string(),
  pgPort: z.number().int(),
  /** HTTP listen address, `HOST:PORT`. */
  listen: z.string(),
  /** File of the operator token (0600). */
  authTokenFile: z.string(),
  /**
   * File of the viewer token (0600): reads only (`show *`, `watch`, `/metrics`, the event
   * stream, the dashboard's views); every change answers 403. Absent in a monitor created
   * before it, and in a monitor that joined an etcd store (its viewer token is the first
   * monitor's, as its operator token is).
   */
  viewerTokenFile: z.string().optional(),
  tls: MonitorTlsSchema,
  /**
   * Database system identifier of the monitor's data directory (`global/pg_control`,
   * decimal), recorded by `monitor create` after its initdb. `monitor run` starts its Postgres,
   * and writes its settings, only in a directory that has it. Absent in a file written before
   * it: `monitor run` records it at its first start, and says so in its log.
   */
  systemIdentifier: SystemIdentifierSchema.optional(),
  /**
   * The store on etcd; absent: the monitor's own Postgres in `pgdata` (then `pgPort` is its
   * port; with an etcd store there is no such Postgres, `pgPort` is 0 and `pgdata` only names
   * `<pgdata>.pgha/`, the monitor's own files).
   */
  store: MonitorStoreConfigSchema.optional(),
});
/** Contents of `monitor.json`. */
export type MonitorConfig = z.infer<typeof MonitorConfigSchema>;

/** Paths of the monitor's files. */
export function monitorPaths(pgdata: string): { dir: string; config: string; logDir: string; authToken: string; viewerToken: string; tlsDir: string } {
  const dir = pghaDirFor(pgdata);
  return { dir, config: join(dir, 'monitor.json'), logDir: join(dir, 'log'), authToken: join(dir, 'auth-token'), viewerToken: join(dir, 'viewer-token'), tlsDir: join(dir, 'tls') };
}

/**
 * Loads `monitor.json`.
 *
 * @throws PghaError `PGHA_ERR_CONFIG` when it is missing (the hint says to create the monitor,
 *   or, when `pgdata` already holds its cluster, to write the file back) or damaged (see
 *   `readJsonFile`).
 */
export function loadMonitorConfig(pgdata: string): MonitorConfig {
  const writeBack = `write it back as {"version":2,"pgdata":"${resolve(pgdata)}","pgPort":<port of its Postgres>,"listen":"<HOST:PORT of the API>","authTokenFile":"${monitorPaths(pgdata).authToken}","tls":{"mode":"self-signed","caFile":…,"caKeyFile":…,"certFile":…,"keyFile":…} (the files in ${monitorPaths(pgdata).tlsDir})}, ${RECOVERY_DOC}`;
  return readJsonFile(monitorPaths(pgdata).config, MonitorConfigSchema, 'monitor configuration', {
    missing: existsSync(join(pgdata, 'PG_VERSION')) ? `${pgdata} holds the monitor's Postgres already: ${writeBack}` : `create the monitor first with: pgha monitor create --pgdata ${pgdata}`,
    damaged: writeBack,
  });
}

/** Splits `HOST:PORT` (IPv6 in brackets). @throws Error on a malformed address. */
export function parseListen(listen: string): { host: string; port: number } {
  const hp = parseHostPort(listen);
  if (!hp) throw new Error(`invalid listen address "${listen}": expected HOST:PORT, e.g. 127.0.0.1:8432`);
  return hp;
}

/** The URL keepers use to reach a monitor listening on `listen`: https unless TLS is off. */
export function monitorUrlFor(listen: string, tls: boolean): string {
  const { host, port } = parseListen(listen);
  const h = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
  return `${tls ? 'https' : 'http'}://${h}:${port}`;
}
