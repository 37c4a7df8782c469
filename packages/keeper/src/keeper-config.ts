/**
 * The keeper's configuration (`keeper.json`) and state (`state.json`) files. They live beside
 * the data directory, in `<pgdata>.pgha/`, never inside it: pg_basebackup and pg_rewind
 * copy a data directory whole and would carry another node's files in.
 */
import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { NodeStateSchema, PghaError } from '@pgha/shared';

/** Directory of pgha's own files for a data directory: `<pgdata>.pgha`. */
export function pghaDirFor(pgdata: string): string {
  return `${resolve(pgdata).replace(/\/+$/, '')}.pgha`;
}

/**
 * Creates pgha's directory for a data directory, mode 0711: root's files in it stay private
 * (0600), while the Postgres OS user can reach its own `log/` subdirectory.
 */
export function ensurePghaDir(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o711 });
  chmodSync(dir, 0o711);
  return dir;
}

/** Schema of `keeper.json`. */
export const KeeperConfigSchema = z.object({
  version: z.literal(1),
  monitorUrl: z.string().url(),
  formation: z.string(),
  name: z.string(),
  nodeId: z.number().int().positive(),
  groupId: z.number().int().min(0),
  hostname: z.string(),
  pgPort: z.number().int(),
  pgdata: z.string(),
  candidatePriority: z.number().int(),
  replicationQuorum: z.boolean(),
  /** Client authentication method for `host all all` entries. */
  auth: z.enum(['scram-sha-256', 'trust', 'md5']),
  replicationPassword: z.string(),
  monitorProbePassword: z.string(),
  /** This node's token for its report and goal routes (`RegisterNodeResponse.nodeToken`). */
  nodeToken: z.string(),
  /** CA certificate (PEM) the monitor's HTTPS certificate must chain to; the system's CAs when absent. */
  monitorCaCertificate: z.string().optional(),
  /**
   * TLS of this node's Postgres: how it verifies its peers (`sslmode` of replication and
   * pg_rewind connections), or `disable` (`--no-ssl`). The certificate, key and CA are in
   * {@link postgresTlsDir}.
   */
  ssl: z.object({ mode: z.enum(['verify-full', 'verify-ca', 'require', 'disable']) }),
});
/** Contents of `keeper.json`. */
export type KeeperConfig = z.infer<typeof KeeperConfigSchema>;

/** Schema of `state.json`. */
export const KeeperStateSchema = z.object({
  version: z.literal(1),
  nodeId: z.number().int(),
  /** The state the keeper has reached (what it reports). */
  currentState: NodeStateSchema,
  /** The last goal the monitor assigned. */
  assignedState: NodeStateSchema,
  updatedAt: z.string(),
});
/** Contents of `state.json`. */
export type KeeperState = z.infer<typeof KeeperStateSchema>;

/**
 * Writes a JSON file atomically: write `<path>.new`, fsync, rename over `path`, fsync the
 * directory. A crash leaves either the old or the new file, never a torn one.
 */
export function writeJsonAtomic(path: string, value: unknown, mode = 0o600): void {
  ensurePghaDir(dirname(path));
  const tmp = `${path}.new`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, `${JSON.stringify(value, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dirFd = openSync(dirname(path), 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

/**
 * Reads and validates a JSON file.
 *
 * @throws PghaError `PGHA_ERR_CONFIG` naming the file when it is missing, truncated or invalid.
 */
export function readJsonFile<T>(path: string, schema: z.ZodType<T>, what: string, recovery: string): T {
  if (!existsSync(path)) {
    throw new PghaError('PGHA_ERR_CONFIG', `${what} not found at ${path}`, { hint: recovery });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new PghaError('PGHA_ERR_CONFIG', `${what} at ${path} is corrupt (not valid JSON)`, { hint: recovery, cause });
  }
  const result = schema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new PghaError('PGHA_ERR_CONFIG', `${what} at ${path} is invalid: ${issue?.path.join('.') || 'file'}: ${issue?.message}`, { hint: recovery });
  }
  return result.data;
}

/**
 * Directory of the Unix socket of the Postgres of `pgdata`: `<pgdata>.pgha/run`, owned by
 * the Postgres OS user, mode 0700 (so only that user and root connect through it). Never the
 * data directory itself: pg_rewind would try to copy the socket. When that path is too long
 * for a Unix socket (107 bytes), a directory under the OS temp dir named after it.
 */
export function socketDirFor(pgdata: string): string {
  const preferred = join(pghaDirFor(pgdata), 'run');
  if (preferred.length <= 90) return preferred;
  let hash = 0;
  for (const ch of preferred) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return join(tmpdir(), `pgha-run-${hash.toString(16)}`);
}

/**
 * Directory of the node's Postgres TLS files and credentials, `<pgdata>.pgha/postgres-tls`
 * (owned by the Postgres OS user, 0700): `server.crt`, `server.key` (0600), `root.crt` (the
 * CA that peers' certificates chain to) and `pgpass` ({@link replicationPassfile}; present
 * with `--no-ssl` too). Outside the data directory, so pg_basebackup and pg_rewind never copy
 * one node's key or password file to another.
 */
export function postgresTlsDir(pgdata: string): string {
  return join(pghaDirFor(pgdata), 'postgres-tls');
}

/**
 * The node's pgpass file, `<pgdata>.pgha/postgres-tls/pgpass` (owned by the Postgres OS user,
 * 0600, in the 0700 directory of {@link postgresTlsDir}): the replication role's password for
 * `primary_conninfo` (`passfile=`), pg_basebackup and pg_rewind (`PGPASSFILE`), so that the
 * password is on no command line, in no environment and in no file inside the data
 * directory (which pg_basebackup and pg_rewind copy to other nodes).
 */
export function replicationPassfile(pgdata: string): string {
  return join(postgresTlsDir(pgdata), 'pgpass');
}

/** Paths of a keeper's files. */
export function keeperPaths(pgdata: string): { dir: string; config: string; state: string; pgLog: string } {
  const dir = pghaDirFor(pgdata);
  return { dir, config: join(dir, 'keeper.json'), state: join(dir, 'state.json'), pgLog: join(dir, 'postgres.log') };
}

/** Loads `keeper.json` for `pgdata`. @throws PghaError `PGHA_ERR_CONFIG`. */
export function loadKeeperConfig(pgdata: string): KeeperConfig {
  return readJsonFile(keeperPaths(pgdata).config, KeeperConfigSchema, 'keeper configuration',
    `create the node first with: pgha keeper create postgres --pgdata ${pgdata} …`);
}

/** Loads `state.json` for `pgdata`. @throws PghaError `PGHA_ERR_CONFIG`. */
export function loadKeeperState(pgdata: string): KeeperState {
  return readJsonFile(keeperPaths(pgdata).state, KeeperStateSchema, 'keeper state file',
    'the keeper will not act on a node whose state it cannot read; restore the file from keeper.json\'s node or drop and re-create the node');
}

/** Persists the keeper's state atomically. */
export function saveKeeperState(pgdata: string, state: Omit<KeeperState, 'version' | 'updatedAt'>): KeeperState {
  const full: KeeperState = { version: 1, ...state, updatedAt: new Date().toISOString() };
  writeJsonAtomic(keeperPaths(pgdata).state, full);
  return full;
}
