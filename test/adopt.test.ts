/**
 * `pgha keeper create postgres` on the data directory of a running standalone Postgres adopts
 * it as the formation's first node: no initdb, its rows kept; a second node then clones it.
 */
import { join } from 'node:path';
import getPort from 'get-port';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureOwnedDir, initdb, startPostgres, writeHba } from '@pgha/postgres';
import { keeperPaths } from '@pgha/keeper';
import { addNode, startMonitor, type TestMonitor } from './helpers/cluster.js';
import { isPrimaryAndSecondaries, queryNode, showState } from './helpers/formation.js';
import { controldataIdentifier } from './helpers/controldata.js';
import { endAllProcesses, postmasterPid, runPgha, trackPgdata } from './helpers/processes.js';
import { waitFor } from './helpers/wait-for.js';
import { appendFileSync, readFileSync } from 'node:fs';

let monitor: TestMonitor;
let pgdata: string;
let port: number;

beforeAll(async () => {
  monitor = await startMonitor();
  // A standalone Postgres an operator already runs, with data in it.
  pgdata = join(monitor.dir, 'legacy', 'pgdata');
  trackPgdata(pgdata);
  ensureOwnedDir(pgdata);
  await initdb(pgdata);
  port = await getPort({ host: '127.0.0.1' });
  appendFileSync(join(pgdata, 'postgresql.conf'), `port = ${port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '/tmp'\n`);
  writeHba(pgdata, [{ database: 'all', user: 'all', address: '127.0.0.1/32', method: 'trust', comment: 'test client' }]);
  const logDir = join(monitor.dir, 'legacy', 'log');
  ensureOwnedDir(logDir);
  await startPostgres(pgdata, join(logDir, 'postgres.log'));
  await queryNode(port, 'create table legacy (id int primary key, note text)');
  await queryNode(port, "insert into legacy select g, 'row ' || g from generate_series(1, 1000) g");
}, 180_000);

afterAll(async () => {
  await endAllProcesses();
});

describe('adopting a running standalone Postgres', () => {
  it('becomes the first node (single) with its rows, without initdb', async () => {
    const before = postmasterPid(pgdata);
    expect(before).toBeDefined();
    await addNode(monitor, 'legacy', { pgdata, port });
    const rows = await showState(monitor.url);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ name: 'legacy', reported_state: 'single', goal_state: 'single' });
    const [count] = await queryNode<{ n: string }>(port, 'select count(*) as n from legacy');
    expect(Number(count!.n)).toBe(1000);
    // Its keeper starts and configures this cluster, identified as it was before pgha came.
    expect(JSON.parse(readFileSync(keeperPaths(pgdata).config, 'utf8')).systemIdentifier).toBe(await controldataIdentifier(pgdata));
  });

  it('refuses to adopt a second data directory into the same formation', async () => {
    const other = join(monitor.dir, 'other', 'pgdata');
    trackPgdata(other);
    ensureOwnedDir(other);
    await initdb(other);
    const r = await runPgha(['keeper', 'create', 'postgres', '--monitor', monitor.url, '--pgdata', other, '--pg-port', String(await getPort()), '--name', 'other', '--hostname', '127.0.0.1']);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/only its first node can adopt an existing data directory/);
  });

  it('a second node clones it and becomes secondary, with the same rows', async () => {
    const standby = await addNode(monitor, 'clone');
    await waitFor('primary and secondary', async () => isPrimaryAndSecondaries(await showState(monitor.url)), { timeoutMs: 120_000, intervalMs: 250 });
    const [count] = await queryNode<{ n: string }>(standby.port, 'select count(*) as n from legacy');
    expect(Number(count!.n)).toBe(1000);
    // The clone records the group's identifier, which its base backup copied.
    expect(JSON.parse(readFileSync(keeperPaths(standby.pgdata).config, 'utf8')).systemIdentifier).toBe(await controldataIdentifier(pgdata));
  });
});
