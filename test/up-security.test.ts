/**
 * `pgha up`, as a new user runs it, is secure by default: the monitor answers HTTPS with a
 * token, the nodes take clients only with a password (never `trust` on TCP) and over TLS that
 * verifies against the monitor's CA, replication runs over TLS, and every secret is in a 0600
 * file that `pgha up` names.
 */
import { execa } from 'execa';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOneLineError } from './helpers/cli.js';
import { queryNode, startLocalFormation, type LocalFormation } from './helpers/formation.js';
import { endAllProcesses, runPgha } from './helpers/processes.js';

const PSQL = '/usr/lib/postgresql/15/bin/psql';
let formation: LocalFormation;
/** The `export NAME=VALUE` lines pgha up printed, as a user would paste them. */
let exported: Record<string, string>;

beforeAll(async () => {
  formation = await startLocalFormation(2);
  const printed = readFileSync(join(formation.dir, 'up.log'), 'utf8');
  exported = Object.fromEntries([...printed.matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
}, 300_000);

afterAll(async () => {
  await endAllProcesses();
});

/** psql as a user runs it, with only the given environment. */
function psql(uri: string, sql: string, env: Record<string, string>) {
  return execa(PSQL, [uri, '-XAtc', sql], { reject: false, extendEnv: false, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 30_000 });
}

describe('pgha up, secure by default', () => {
  it('prints an https monitor URL, its token file and CA, and a pgpass file, all 0600 but the CA', () => {
    expect(exported.PGHA_MONITOR).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    for (const f of [exported.PGHA_AUTH_TOKEN_FILE!, exported.PGPASSFILE!]) expect((statSync(f).mode & 0o777).toString(8)).toBe('600');
    expect(readFileSync(exported.PGHA_SSL_CA_FILE!, 'utf8')).toMatch(/BEGIN CERTIFICATE/);
  });

  it('the printed exports are enough for pgha show state; without the token it is refused', async () => {
    const ok = await runPgha(['show', 'state'], exported);
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/primary/);
    const refused = await runPgha(['show', 'state'], { ...exported, PGHA_AUTH_TOKEN_FILE: '' });
    expectOneLineError(refused, /authentication required/);
  });

  it('clients connect with the printed URI over TLS verified against the CA, with the pgpass password', async () => {
    const r = await psql(formation.up.uri, 'select ssl from pg_stat_ssl where pid = pg_backend_pid()', { PGPASSFILE: exported.PGPASSFILE! });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('t');
    expect(formation.up.uri).toMatch(/sslmode=verify-full/);
  });

  it('refuses a client without the password, and has no trust entry for TCP in any pg_hba.conf', async () => {
    const noPassword = await psql(formation.up.uri.replace('sslmode=verify-full', 'sslmode=require'), 'select 1', { PGPASSWORD: 'wrong' });
    expect(noPassword.exitCode).not.toBe(0);
    expect(noPassword.stderr).toMatch(/password authentication failed/);
    for (const n of formation.up.nodes) {
      const hba = readFileSync(join(n.pgdata, 'pg_hba.conf'), 'utf8').split('\n').filter((l) => /^host/.test(l));
      expect(hba.length).toBeGreaterThan(0);
      expect(hba.filter((l) => /\btrust\b/.test(l))).toEqual([]);
      expect(hba.filter((l) => /0\.0\.0\.0\/0|::\/0|\ball\s*$/.test(l))).toEqual([]);
    }
  });

  it('replicates over TLS', async () => {
    const primary = formation.up.nodes.find(() => true)!;
    const rows = await queryNode<{ ssl: boolean }>(primary.port, 'select s.ssl from pg_stat_replication r join pg_stat_ssl s using (pid)');
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.ssl)).toBe(true);
  });
});
