/**
 * The keeper's configuration (`keeper.json`) and state (`state.json`) files. They live beside
 * the data directory, in `<pgdata>.pgha/`, never inside it: pg_basebackup and pg_rewind
 * copy a data directory whole and would carry another node's files in.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { DEFAULT_KEEPER_HTTP_PORT, NodeStateSchema, PghaError, ROLE_CHANGE_TIMEOUT_MAX_MS, ROLE_CHANGE_TIMEOUT_MIN_MS, SelfFenceRecord, formatHostPort, parseHostPort } from '@pgha/shared/base';
import { RECOVERY_DOC, SystemIdentifierSchema, pghaDirFor, readJsonFile, sameDirectory, writeJsonAtomic } from '@pgha/postgres';

export { ROLE_CHANGE_TIMEOUT_MAX_MS, ROLE_CHANGE_TIMEOUT_MIN_MS } from '@pgha/shared/base';

/** Schema of `keeper.json`. */
export const KeeperConfigSchema = z.object({
  version: z.literal(1),
  /**
   * The first monitor of {@link monitorUrls}: the one monitor of a file written before lists
   * existed, and what an older pgha reads. Read the list with {@link keeperMonitorUrls}.
   */
  monitorUrl: z.string().url(),
  /**
   * Every monitor the keeper may talk to, in the order tried (`--monitor URL,URL,URL`); absent
   * in a file written before lists existed ({@link monitorUrl} alone then).
   */
  monitorUrls: z.array(z.string().url()).min(1).optional(),
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
  /**
   * Role-change hook: a command run through `/bin/sh -c` when the node's role changes (see
   * `role-change-hook.ts`); none when absent. Reloadable (SIGHUP, `pgha keeper reload`).
   */
  onRoleChange: z.string().min(1).refine((s) => !s.includes('\0'), 'must not contain NUL characters').optional(),
  /** Limit of one hook run, in ms (default `DEFAULT_ROLE_CHANGE_TIMEOUT_MS`, 10 000). Reloadable. */
  onRoleChangeTimeoutMs: z.number().int().min(ROLE_CHANGE_TIMEOUT_MIN_MS).max(ROLE_CHANGE_TIMEOUT_MAX_MS).optional(),
  /**
   * `HOST:PORT` the keeper's HTTP server listens on (`--http-listen`; HTTPS with the node's
   * Postgres certificate unless `ssl.mode` is `disable`). Absent in a file written before it:
   * `<hostname>:8008` ({@link keeperHttpListen}).
   */
  httpListen: z.string().refine((s) => parseHostPort(s) !== undefined, 'must be HOST:PORT, e.g. 127.0.0.1:8008').optional(),
  /**
   * Database system identifier of the node's data directory (`global/pg_control`, decimal), as
   * the keeper recorded it once the directory was its own: after its initdb, at `keeper create`
   * of an adopted directory, after each base backup (the group's identifier, which pg_basebackup
   * copies). The keeper starts Postgres, and writes its settings, only in a directory that has
   * it (see `postgres/controldata.ts`). Absent in a file written before it, or before a standby's
   * first base backup: the keeper records it at its first start on a data directory, and says so
   * in its log. Written by the keeper, never by a reload.
   */
  systemIdentifier: SystemIdentifierSchema.optional(),
  /**
   * `--skip-pg-hba`: the operator manages `pg_hba.conf`; the keeper never writes it (no managed
   * block, no client networks) and says so when it starts. Source: pg_auto_failover's
   * `--skip-pg-hba`.
   */
  skipPgHba: z.boolean().optional(),
});
/** Contents of `keeper.json`. */
export type KeeperConfig = z.infer<typeof KeeperConfigSchema>;

/** The monitors of a keeper, in the order tried: `monitorUrls`, or `[monitorUrl]` in a file without a list. */
export function keeperMonitorUrls(config: Pick<KeeperConfig, 'monitorUrl' | 'monitorUrls'>): string[] {
  return config.monitorUrls ?? [config.monitorUrl];
}

/** The fields of keeper.json that name the monitors: the first as `monitorUrl` (for an older pgha), all as `monitorUrls`. */
export function monitorUrlFields(urls: readonly string[]): Pick<KeeperConfig, 'monitorUrl' | 'monitorUrls'> {
  return { monitorUrl: urls[0]!, monitorUrls: [...urls] };
}

/**
 * Where the keeper's HTTP server listens: `httpListen`, or `<hostname>:8008` when the file has
 * none (keepers created before the HTTP server existed).
 */
export function keeperHttpListen(config: Pick<KeeperConfig, 'httpListen' | 'hostname'>): { host: string; port: number } {
  return parseHostPort(config.httpListen ?? formatHostPort(config.hostname, DEFAULT_KEEPER_HTTP_PORT))!;
}

/**
 * The keeper's HTTP address as others reach it (`HOST:PORT`, registered with the monitor): the
 * listen address, with the node's `hostname` in place of a wildcard host (`0.0.0.0`, `::`).
 */
export function keeperHttpAddress(config: Pick<KeeperConfig, 'httpListen' | 'hostname'>): string {
  const { host, port } = keeperHttpListen(config);
  return formatHostPort(host === '0.0.0.0' || host === '::' ? config.hostname : host, port);
}

/** Schema of `state.json`. */
export const KeeperStateSchema = z.object({
  version: z.literal(1),
  nodeId: z.number().int(),
  /** The state the keeper has reached (what it reports). */
  currentState: NodeStateSchema,
  /** The last goal the monitor assigned. */
  assignedState: NodeStateSchema,
  updatedAt: z.string(),
  /**
   * The node's self-fence until a report carrying it is answered (the monitor has then written
   * its `keeper-self-fenced` event): a keeper restarted meanwhile still reports it. Absent
   * otherwise; a keeper older than it drops the field.
   */
  selfFence: SelfFenceRecord.optional(),
  /**
   * The highest goal revision the keeper has applied (`NodeGoal.goalRevision`, decimal): it
   * never acts on a goal of a lower one (`fsm/goal-revision-rule.ts`). Absent until the
   * monitor sends revisions, and after a registration (a new store numbers its own).
   */
  goalRevision: z.string().regex(/^\d+$/).optional(),
  /**
   * The highest restart request (`NodeGoal.restartRequest`) the keeper has carried out
   * (`pgha perform restart`), so that each is done once, also across a keeper restart. Absent
   * until the first one.
   */
  restartDone: z.number().int().min(0).optional(),
});
/** Contents of `state.json`. */
export type KeeperState = z.infer<typeof KeeperStateSchema>;

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

/**
 * Loads `keeper.json` for `pgdata` (as given to `--pgdata`).
 *
 * @throws PghaError `PGHA_ERR_CONFIG` when it is missing (the hint says to create the node, or,
 *   when `pgdata` already holds a cluster or a state file, to restore the file), damaged (see
 *   {@link readJsonFile}), or written for another data directory.
 */
export function loadKeeperConfig(pgdata: string): KeeperConfig {
  const paths = keeperPaths(pgdata);
  const holdsData = existsSync(join(pgdata, 'PG_VERSION')) || existsSync(paths.state);
  const restore = `restore it from a backup, ${RECOVERY_DOC}`;
  const config = readJsonFile(paths.config, KeeperConfigSchema, 'keeper configuration', {
    missing: holdsData ? `${pgdata} already holds a node: ${restore}` : `create the node first with: pgha keeper create postgres --pgdata ${pgdata} …`,
    damaged: `the keeper will not act on the node without it: ${restore}`,
  });
  if (!sameDirectory(config.pgdata, pgdata)) {
    throw new PghaError('PGHA_ERR_CONFIG', `keeper configuration at ${paths.config} is for data directory ${config.pgdata}, not ${resolve(pgdata)}`, {
      hint: `if the data directory moved, set "pgdata" in that file to its new path`,
    });
  }
  return config;
}

/**
 * Loads `state.json` of the node `config` describes. A missing or damaged state file is never
 * taken for `init`: the keeper would then initialise, or base-backup over, a data directory that
 * may hold the only copy of the data.
 *
 * @throws PghaError `PGHA_ERR_CONFIG` when it is missing, damaged (see {@link readJsonFile}),
 *   or belongs to another node than `config.nodeId`; the hint says how to write it back.
 */
export function loadKeeperState(config: Pick<KeeperConfig, 'pgdata' | 'nodeId' | 'name'>): KeeperState {
  const path = keeperPaths(config.pgdata).state;
  const hint = `pgha will not guess the state of node ${config.nodeId} "${config.name}": restore it from a backup, or write it back from the node's reported state in pgha show state, ${RECOVERY_DOC}`;
  const state = readJsonFile(path, KeeperStateSchema, 'keeper state file', { missing: hint, damaged: hint });
  if (state.nodeId !== config.nodeId) {
    throw new PghaError('PGHA_ERR_CONFIG', `keeper state file at ${path} is for node ${state.nodeId}, not node ${config.nodeId} "${config.name}" of keeper.json`, { hint });
  }
  return state;
}

/** Persists the keeper's state atomically. */
export function saveKeeperState(pgdata: string, state: Omit<KeeperState, 'version' | 'updatedAt'>): KeeperState {
  const full: KeeperState = { version: 1, ...state, updatedAt: new Date().toISOString() };
  writeJsonAtomic(keeperPaths(pgdata).state, full);
  return full;
}
