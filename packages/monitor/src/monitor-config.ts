/** The monitor's configuration file, `<pgdata>.pgha/monitor.json`. */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { RECOVERY_DOC, pghaDirFor, readJsonFile } from '@pgha/keeper';

/** Schema of `monitor.json`. */
export const MonitorConfigSchema = z.object({
  version: z.literal(1),
  pgdata: z.string(),
  pgPort: z.number().int(),
  /** HTTP listen address, `HOST:PORT`. */
  listen: z.string(),
});
/** Contents of `monitor.json`. */
export type MonitorConfig = z.infer<typeof MonitorConfigSchema>;

/** Paths of the monitor's files. */
export function monitorPaths(pgdata: string): { dir: string; config: string; logDir: string } {
  const dir = pghaDirFor(pgdata);
  return { dir, config: join(dir, 'monitor.json'), logDir: join(dir, 'log') };
}

/**
 * Loads `monitor.json`.
 *
 * @throws PghaError `PGHA_ERR_CONFIG` when it is missing (the hint says to create the monitor,
 *   or, when `pgdata` already holds its cluster, to write the file back) or damaged (see
 *   `readJsonFile`).
 */
export function loadMonitorConfig(pgdata: string): MonitorConfig {
  const writeBack = `write it back as {"version":1,"pgdata":"${resolve(pgdata)}","pgPort":<port of its Postgres>,"listen":"<HOST:PORT of the API>"}, ${RECOVERY_DOC}`;
  return readJsonFile(monitorPaths(pgdata).config, MonitorConfigSchema, 'monitor configuration', {
    missing: existsSync(join(pgdata, 'PG_VERSION')) ? `${pgdata} holds the monitor's Postgres already: ${writeBack}` : `create the monitor first with: pgha monitor create --pgdata ${pgdata}`,
    damaged: writeBack,
  });
}

/** Splits `HOST:PORT` (IPv6 in brackets). @throws Error on a malformed address. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(listen);
  const port = Number(m?.[3]);
  if (!m || port < 1 || port > 65535) throw new Error(`invalid listen address "${listen}": expected HOST:PORT, e.g. 127.0.0.1:8432`);
  return { host: (m[1] ?? m[2])!, port };
}

/** The URL keepers use to reach a monitor listening on `listen`. */
export function monitorUrlFor(listen: string): string {
  const { host, port } = parseListen(listen);
  const h = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
  return `http://${h}:${port}`;
}
