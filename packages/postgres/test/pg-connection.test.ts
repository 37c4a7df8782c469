/**
 * pgha's connections and child programs take nothing from the environment: with every libpq
 * variable set to a wrong value, a client built by `newPgClient` (or by a pool of
 * `ExplicitPgClient`s) has exactly the parameters pgha gave, and the Postgres programs get an
 * environment without a single `PG*` variable.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import { newPgClient, pgClientConfig, withoutLibpqEnvironment } from '../src/pg-connection.js';
import { ExplicitPgClient } from '../src/pg-pool-client.js';
import { localConnection } from '../src/local-sql.js';
import { postgresSpawnOptions } from '../src/os-user.js';

/** What an operator's profile might hold, all wrong for pgha's own connections. */
const HOSTILE: Record<string, string> = {
  PGHOST: '127.0.0.1',
  PGPORT: '1',
  PGUSER: 'nobody_here',
  PGDATABASE: 'no_such_db',
  PGPASSWORD: 'wrong-password',
  PGSSLMODE: 'verify-full',
  PGSSLROOTCERT: '/nonexistent/root.crt',
  PGPASSFILE: '/nonexistent/pgpass',
  PGOPTIONS: '-c statement_timeout=1',
  PGAPPNAME: 'not_pgha',
  PGTARGETSESSIONATTRS: 'read-only',
  PGCONNECT_TIMEOUT: '1',
  PGCLIENT_ENCODING: 'LATIN1',
  PGBINARY: 'true',
  PGSSLNEGOTIATION: 'direct',
};

/** The parameters node-postgres resolved for a client (its own field, read for the test only). */
function resolved(client: pg.Client): Record<string, unknown> {
  return (client as unknown as { connectionParameters: Record<string, unknown> }).connectionParameters;
}

describe('connections built with nothing from the environment', () => {
  const saved: Record<string, string | undefined> = {};
  beforeEach(() => {
    for (const [k, v] of Object.entries(HOSTILE)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
  });
  afterEach(() => {
    for (const k of Object.keys(HOSTILE)) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });

  it('a plain pg.Client would take them (what the helpers exist for)', () => {
    const client = new pg.Client({ host: '/run/pgha', port: 5432 });
    expect(resolved(client)).toMatchObject({ user: 'nobody_here', database: 'no_such_db', ssl: true, options: '-c statement_timeout=1', application_name: 'not_pgha' });
  });

  it('the keeper\'s local session: its socket, postgres, no TLS, no options, its own name', () => {
    const client = newPgClient(localConnection({ socketDir: '/run/pgha-sock', port: 6543 }, 'pgha_keeper', 2000));
    expect(resolved(client)).toMatchObject({
      host: '/run/pgha-sock', port: 6543, user: 'postgres', database: 'postgres', ssl: false,
      application_name: 'pgha_keeper', connect_timeout: 2, statement_timeout: 30_000,
    });
    const p = resolved(client);
    for (const key of ['options', 'client_encoding', 'binary', 'replication', 'sslnegotiation']) expect(p[key], key).toBeFalsy();
  });

  it('never takes PGPASSWORD nor a pgpass file for a missing password', async () => {
    const client = newPgClient(localConnection({ socketDir: '/run/pgha-sock', port: 6543 }, 'pgha_keeper', 2000));
    const password = (client as unknown as { password: () => unknown }).password;
    expect(typeof password).toBe('function');
    expect(await password()).toBeUndefined();
    const given = newPgClient({ ...localConnection({ socketDir: '/s', port: 1 }, 'x', 1000), password: 'secret' });
    expect(await (given as unknown as { password: () => unknown }).password()).toBe('secret');
  });

  it('a pool of ExplicitPgClient builds its clients the same way', () => {
    const pool = new pg.Pool({ ...pgClientConfig(localConnection({ socketDir: '/run/monitor-sock', port: 7000 }, 'pgha_monitor', 10_000)), Client: ExplicitPgClient });
    const client = new (pool as unknown as { Client: typeof ExplicitPgClient }).Client((pool as unknown as { options: pg.ClientConfig }).options);
    expect(resolved(client)).toMatchObject({ host: '/run/monitor-sock', port: 7000, user: 'postgres', ssl: false, application_name: 'pgha_monitor' });
    expect(resolved(client).options).toBeFalsy();
    void pool.end();
  });

  it('puts the environment back, even when building throws', () => {
    expect(() => withoutLibpqEnvironment(() => {
      expect(process.env.PGSSLMODE).toBeUndefined();
      throw new Error('boom');
    })).toThrow('boom');
    expect(process.env.PGSSLMODE).toBe('verify-full');
  });

  it('the Postgres programs get no PG* variable at all, and a fixed PATH', () => {
    const { env } = postgresSpawnOptions();
    expect(Object.keys(env).filter((k) => k.startsWith('PG'))).toEqual([]);
    expect(Object.keys(env).sort()).toEqual(['HOME', 'LANG', 'LC_ALL', 'LOGNAME', 'PATH', 'USER']);
  });
});
