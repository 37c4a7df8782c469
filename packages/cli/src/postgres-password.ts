/**
 * `pgha set postgres-password --pgdata DIR --password-file F`: the postgres role's password,
 * set on the node's Postgres over its Unix socket (as `pgha up` and `pgha keeper create
 * postgres --postgres-password-file` do), from a file: never from a command line. Run on the
 * primary's host; the standbys replicate it.
 */
import { ConflictError, PghaError } from '@pgha/shared/core';

/** What `pgha set postgres-password --json` prints. */
export interface PostgresPasswordSet {
  pgdata: string;
  node_id: number;
  name: string;
  formation: string;
  role: 'postgres';
  set: true;
}

/**
 * Sets the postgres role's password of the node at `pgdata` to the one in `passwordFile`
 * (`readPasswordFile`: 0600, the password alone or a pgpass line for postgres).
 *
 * @throws PghaError `PGHA_ERR_CONFIG` for a node-less `pgdata` or a bad password file;
 *   ConflictError when the node's Postgres is not running, or is a standby (read-only: the
 *   role replicates from the primary). Nothing is changed then.
 */
export async function setPostgresPassword(pgdata: string, passwordFile: string): Promise<PostgresPasswordSet> {
  const [{ loadKeeperConfig }, { postmasterPid, readPasswordFile, setRolePassword, socketDirFor, withLocalClient }] = await Promise.all([import('@pgha/keeper'), import('@pgha/postgres')]);
  const config = loadKeeperConfig(pgdata);
  const password = readPasswordFile(passwordFile, 'postgres password', 'postgres');
  const node = `node ${config.nodeId} "${config.name}"`;
  if (postmasterPid(config.pgdata) === undefined) {
    throw new ConflictError(`the Postgres of ${node} is not running`, { hint: `start its keeper (pgha keeper run --pgdata ${config.pgdata}), then try again` });
  }
  const local = { socketDir: socketDirFor(config.pgdata), port: config.pgPort };
  const inRecovery = await withLocalClient(local, async (c) => (await c.query<{ r: boolean }>('select pg_is_in_recovery() as r')).rows[0]!.r).catch((cause: Error) => {
    throw new PghaError('PGHA_ERR_POSTGRES_COMMAND', `cannot reach the Postgres of ${node} on its socket: ${cause.message}`, { hint: 'run this as root or as the Postgres OS user, on the node\'s host', cause });
  });
  if (inRecovery) {
    throw new ConflictError(`${node} is a standby: its postgres role replicates from the primary and cannot be changed here`, {
      hint: `run this on the primary's host, with its data directory (pgha show state --formation ${config.formation} shows which node is primary)`,
    });
  }
  await setRolePassword(local, 'postgres', password);
  return { pgdata: config.pgdata, node_id: config.nodeId, name: config.name, formation: config.formation, role: 'postgres', set: true };
}
