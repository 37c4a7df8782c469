/**
 * A whole formation life with an operator's libpq environment, every variable wrong for pgha,
 * in the environment of every pgha process (`pgha up`, hence the monitor and the keepers it
 * starts, the keeper restarted by hand, and every CLI command): create, switchover, the
 * primary node's crash, its rejoin by pg_rewind, maintenance of a standby. pgha sets every
 * parameter of its connections and gives its Postgres programs a clean environment, so none
 * of it matters. (Found from outside: with `PGSSLMODE=verify-full` a rejoining keeper sent an
 * SSLRequest over its Unix socket, read no facts and reported `catchingup`, `0/0`, forever.)
 *
 * Then the other half of that finding: a keeper whose running Postgres does not answer says
 * so (a warn line, the node's problem in `show state` and the events, `/health` 503).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeStateRow } from '@pgha/shared';
import { isPrimaryAndSecondaries, queryNode, showState, startLocalFormation, Writer, type LocalFormation } from './helpers/formation.js';
import { showEvents } from './helpers/history.js';
import { endAllProcesses, killPid, makeTestDir, postmasterPid, runPgha, setPghaEnvironment, startPgha } from './helpers/processes.js';
import { waitFor } from './helpers/wait-for.js';

let formation: LocalFormation;
/** PID of each node's running keeper: the one `pgha up` started, or one this test restarted. */
const keeperPid = new Map<string, number>();
/** Each keeper's log file (restarted keepers log beside the node). */
const keeperLog = new Map<string, string>();

/** The environment of every pgha process in this file. */
function hostileEnvironment(dir: string): Record<string, string> {
  const pgpass = join(dir, 'hostile-pgpass');
  writeFileSync(pgpass, '*:*:*:*:not-the-password\n', { mode: 0o600 });
  return {
    PGHOST: '127.0.0.1',
    PGPORT: '1',
    PGUSER: 'nobody_here',
    PGDATABASE: 'no_such_db',
    PGPASSWORD: 'not-the-password',
    PGSSLMODE: 'verify-full',
    PGSSLROOTCERT: '/nonexistent/root.crt',
    PGSSLCERT: '/nonexistent/client.crt',
    PGSSLKEY: '/nonexistent/client.key',
    PGPASSFILE: pgpass,
    PGOPTIONS: '-c statement_timeout=1 -c default_transaction_read_only=on',
    PGTARGETSESSIONATTRS: 'read-only',
    PGCONNECT_TIMEOUT: '1',
    PGAPPNAME: 'not_pgha',
    PGSERVICE: 'no_such_service',
    PGGSSENCMODE: 'require',
    PGSSLNEGOTIATION: 'direct',
    PGCLIENTENCODING: 'SQL_ASCII',
    PGDATA: '/nonexistent/pgdata',
  };
}

beforeAll(async () => {
  setPghaEnvironment(hostileEnvironment(makeTestDir()));
  formation = await startLocalFormation(2);
  for (const n of formation.up.nodes) {
    keeperPid.set(n.name, n.keeper_pid);
    keeperLog.set(n.name, join(formation.dir, n.name, 'keeper.log'));
  }
}, 300_000);

afterAll(async () => {
  setPghaEnvironment({});
  await endAllProcesses();
});

/** The CLI's environment beyond the hostile one: the monitor, as `pgha up` printed it. */
function cli(): Record<string, string> {
  return { PGHA_MONITOR: formation.up.monitor.url };
}

function nodeOf(name: string) {
  return formation.up.nodes.find((n) => n.name === name)!;
}

async function roles(): Promise<{ rows: NodeStateRow[]; primary: NodeStateRow; standby: NodeStateRow }> {
  const rows = await showState(formation.up.monitor.url);
  return { rows, primary: rows.find((r) => r.goal_state === 'primary')!, standby: rows.find((r) => r.goal_state === 'secondary')! };
}

/** Settled, every node reporting real facts (a timeline, an LSN past 0/0) and no problem. */
function healthyFacts(rows: readonly NodeStateRow[]): void {
  expect(isPrimaryAndSecondaries(rows)).toBe(true);
  for (const r of rows) {
    expect(r.timeline, r.name).toBeGreaterThan(0);
    expect(r.lsn, r.name).not.toBe('0/0');
    expect(r.problem ?? null, r.name).toBeNull();
    expect(r.health, r.name).toBe('good');
  }
}

describe('every pgha process with a hostile PG* environment', () => {
  it('creates the formation: a primary and a synchronous secondary with real facts', async () => {
    const { rows, primary, standby } = await roles();
    healthyFacts(rows);
    expect(standby.timeline).toBe(primary.timeline);
    const ssn = await queryNode<{ s: string }>(nodeOf(primary.name).port, "select current_setting('synchronous_standby_names') as s");
    expect(ssn[0]!.s).toMatch(/^ANY 1 \(pgha_node_\d+\)$/);
  });

  it('switches over (pgha perform switchover in the same environment)', async () => {
    const before = await roles();
    const r = await runPgha(['perform', 'switchover'], cli());
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    await waitFor('the roles swapped', async () => {
      const now = await roles();
      return isPrimaryAndSecondaries(now.rows) && now.primary.name === before.standby.name ? true : undefined;
    }, { timeoutMs: 60_000, intervalMs: 250 });
    healthyFacts((await roles()).rows);
  });

  it('fails over when the primary node dies, loses no acknowledged write, and the node rejoins by pg_rewind', async () => {
    const { primary, standby } = await roles();
    const writer = new Writer(formation.up.uri, 'probe');
    await queryNode(nodeOf(primary.name).port, 'create table probe (id bigint primary key, at timestamptz default clock_timestamp())');
    writer.start();
    await waitFor('acknowledged writes', () => writer.acks.length >= 30);
    const dead = nodeOf(primary.name);
    killPid(keeperPid.get(dead.name), 'SIGKILL');
    killPid(postmasterPid(dead.pgdata), 'SIGKILL');
    await waitFor('a write acknowledged by the standby', () => writer.acks.find((a) => a.port === nodeOf(standby.name).port), { timeoutMs: 60_000 });
    await waitFor('more writes on the new primary', () => writer.acks.filter((a) => a.port === nodeOf(standby.name).port).length >= 20);
    await writer.stop();
    const present = new Set((await queryNode<{ id: string }>(nodeOf(standby.name).port, 'select id from probe')).map((r) => Number(r.id)));
    expect(writer.acks.filter((a) => !present.has(a.id))).toEqual([]);

    // The keeper restarted by hand, as an operator would from a shell with this profile.
    const log = join(formation.dir, dead.name, 'keeper-restarted.log');
    keeperLog.set(dead.name, log);
    keeperPid.set(dead.name, startPgha(['keeper', 'run', '--pgdata', dead.pgdata], { logFile: log }).pid!);
    await waitFor('primary + secondary again', async () => isPrimaryAndSecondaries(await showState(formation.up.monitor.url)), { timeoutMs: 120_000, intervalMs: 250 });
    const after = await roles();
    healthyFacts(after.rows);
    expect(after.primary.name).toBe(standby.name);
    expect(after.standby.name).toBe(dead.name);
    // On the new timeline, with every row.
    expect(after.standby.timeline).toBe(after.primary.timeline);
    expect(after.primary.timeline).toBeGreaterThan(primary.timeline);
    // Rewound, or (its WAL ending before the new timeline forked off) started as a standby as it was.
    expect(readFileSync(log, 'utf8')).toMatch(/"msg":"(pg_rewind from the new primary|no rewind needed: )/);
    const count = async (port: number) => Number((await queryNode<{ n: string }>(port, 'select count(*) as n from probe'))[0]!.n);
    await waitFor('the rejoined node to have every row', async () => (await count(dead.port)) === (await count(nodeOf(standby.name).port)));
  });

  it('puts a standby in maintenance and back', async () => {
    const { standby } = await roles();
    const on = await runPgha(['maintenance', 'enable', '--name', standby.name], cli());
    expect(on.stderr).toBe('');
    expect(on.exitCode).toBe(0);
    expect((await showState(formation.up.monitor.url)).find((r) => r.name === standby.name)!.reported_state).toBe('maintenance');
    const off = await runPgha(['maintenance', 'disable', '--name', standby.name], cli());
    expect(off.stderr).toBe('');
    expect(off.exitCode).toBe(0);
    await waitFor('secondary again', async () => isPrimaryAndSecondaries(await showState(formation.up.monitor.url)), { timeoutMs: 60_000, intervalMs: 250 });
    healthyFacts((await roles()).rows);
  });

  it('never reported a node unable to read its facts, and logged no failed read', async () => {
    const events = await showEvents(formation.up.monitor.url);
    expect(events.filter((e) => /cannot read its facts/.test(e.reason))).toEqual([]);
    for (const [name, log] of keeperLog) expect(readFileSync(log, 'utf8'), name).not.toMatch(/cannot read its facts|SSL/);
  });
});

describe('a keeper whose running Postgres does not answer', () => {
  it('says so: one warn line (and one when it is over), the problem in show state, the events, /health and /state; and clears it', async () => {
    const { standby } = await roles();
    const node = nodeOf(standby.name);
    const log = keeperLog.get(node.name)!;
    const postmaster = postmasterPid(node.pgdata)!;
    // The keeper's kept session ends with its backend (SIGTERM: a clean exit, no crash
    // restart); its new sessions wait on the stopped postmaster.
    const [session] = await queryNode<{ pid: number }>(node.port, "select pid from pg_stat_activity where application_name = 'pgha_keeper'");
    process.kill(postmaster, 'SIGSTOP');
    try {
      killPid(session!.pid, 'SIGTERM');
      const row = await waitFor('the problem in pgha show state', async () => {
        const r = (await showState(formation.up.monitor.url)).find((x) => x.name === node.name)!;
        return r.problem?.includes('Postgres runs but the keeper cannot read its facts') ? r : undefined;
      }, { timeoutMs: 30_000, intervalMs: 250 });
      expect(row.problem).toMatch(/cannot read its facts: .+/);
      const agent = new Agent({ connect: { ca: readFileSync(formation.up.ca_file!, 'utf8') } });
      const health = await fetch(`${node.http_url}/health`, { dispatcher: agent, signal: AbortSignal.timeout(5000) });
      expect(health.status).toBe(503);
      expect(await health.json()).toMatchObject({ postgres_running: true, problem: expect.stringContaining('cannot read its facts') });
      await agent.close();
      const shown = await runPgha(['show', 'state'], cli());
      expect(shown.stdout).toContain(`Problem on ${node.name}: Postgres runs but the keeper cannot read its facts`);
    } finally {
      process.kill(postmaster, 'SIGCONT');
    }
    await waitFor('the problem cleared', async () => !(await showState(formation.up.monitor.url)).find((x) => x.name === node.name)!.problem, { timeoutMs: 30_000, intervalMs: 250 });
    const text = readFileSync(log, 'utf8');
    expect(text.match(/"problem: Postgres runs but the keeper cannot read its facts/g)).toHaveLength(1);
    expect(text.match(/"problem solved: Postgres runs but the keeper cannot read its facts/g)).toHaveLength(1);
    const events = await showEvents(formation.up.monitor.url);
    expect(events.some((e) => /reports a problem: Postgres runs but the keeper cannot read its facts/.test(e.reason))).toBe(true);
    expect(events.some((e) => /reports no problem any more/.test(e.reason))).toBe(true);
  });
});
