/**
 * Local SQL on a Postgres of this host (a node's, or the monitor's own), through its Unix
 * socket as the `postgres` superuser, and quoting for the statements that cannot take
 * parameters (roles, passwords).
 */
import type pg from 'pg';
import { newPgClient, type PgConnectionParams } from './pg-connection.js';

/** How to reach the local Postgres. */
export interface LocalPg {
  socketDir: string;
  port: number;
}

/**
 * The parameters of a session to the local Postgres: its Unix socket, as the `postgres`
 * superuser (peer or trust on the socket, no password), never TLS (libpq does not use TLS on
 * a Unix socket either), a 30 s `statement_timeout`.
 *
 * @param applicationName - shown in `pg_stat_activity` (`pgha_keeper`, `pgha_keeper_watchdog`).
 * @param connectTimeoutMs - connection timeout, ms.
 */
export function localConnection(local: LocalPg, applicationName: string, connectTimeoutMs: number): PgConnectionParams {
  return {
    host: local.socketDir,
    port: local.port,
    user: 'postgres',
    database: 'postgres',
    ssl: false,
    applicationName,
    connectTimeoutMs,
    statementTimeoutMs: 30_000,
  };
}

/**
 * Runs `fn` with a fresh connection to the local Postgres, closing it afterwards.
 *
 * @throws the driver's error when Postgres cannot be reached.
 */
export async function withLocalClient<T>(local: LocalPg, fn: (client: pg.Client) => Promise<T>, timeoutMs = 3000): Promise<T> {
  const client = newPgClient(localConnection(local, 'pgha_keeper', timeoutMs));
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Quotes an SQL identifier. */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Quotes an SQL literal. */
export function literal(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}


/**
 * Sets `role`'s password over the local Postgres's Unix socket, in a session that logs no
 * statement, not even a failed one (`log_statement`, `log_min_duration_statement`,
 * `log_min_error_statement`), so that the password reaches no server log. The password is
 * stored as Postgres's `password_encryption` says (SCRAM-SHA-256 by default). On a standby it
 * fails (read-only): a role's password replicates from the primary.
 * Source: Patroni's `create_or_update_role` (the same three settings around `ALTER ROLE`).
 *
 * @throws the driver's error when Postgres cannot be reached or refuses (in recovery).
 */
export async function setRolePassword(local: LocalPg, role: string, password: string): Promise<void> {
  await withLocalClient(local, async (c) => {
    await c.query("set log_statement = 'none'; set log_min_duration_statement = -1; set log_min_error_statement = 'panic'");
    await c.query(`alter role ${ident(role)} with password ${literal(password)}`);
  });
}
