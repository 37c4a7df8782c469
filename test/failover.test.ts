/**
 * End to end, on real Postgres 15 processes: `pgha up` brings up a monitor and two nodes;
 * writes go through the formation's multi-host URI; the primary's keeper and postmaster are
 * SIGKILLed; the standby takes writes; nothing acknowledged is lost; the dead node comes back
 * with `pgha keeper run` and rejoins as secondary; then the standby dies and writes go on.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectWritable, isPrimaryAndSecondaries, queryNode, showState, startLocalFormation, Writer, type LocalFormation } from './helpers/formation.js';
import { endAllProcesses, killPid, postmasterPid, startPgha } from './helpers/processes.js';
import { waitFor } from './helpers/wait-for.js';
import { runPghaOk } from './helpers/cli.js';
import type { EventRow } from '@pgha/shared';

let formation: LocalFormation;
/** PID of each node's running keeper: the one `pgha up` started, or the one a test restarted. */
const keeperPid = new Map<string, number>();

beforeAll(async () => {
  formation = await startLocalFormation(2);
  for (const n of formation.up.nodes) keeperPid.set(n.name, n.keeper_pid);
}, 300_000);

afterAll(async () => {
  await endAllProcesses();
});

async function primaryAndStandby() {
  const rows = await showState(formation.up.monitor.url);
  const primary = rows.find((r) => r.reported_state === 'primary')!;
  const standby = rows.find((r) => r.reported_state === 'secondary')!;
  const node = (name: string) => formation.up.nodes.find((n) => n.name === name)!;
  return { rows, primary: { row: primary, ...node(primary.name) }, standby: { row: standby, ...node(standby.name) } };
}

describe('a two-node formation', () => {
  it('shows one primary (read-write) and one secondary (read-only)', async () => {
    const rows = await showState(formation.up.monitor.url);
    expect(rows).toHaveLength(2);
    expect(isPrimaryAndSecondaries(rows)).toBe(true);
    const primary = rows.find((r) => r.goal_state === 'primary')!;
    const secondary = rows.find((r) => r.goal_state === 'secondary')!;
    expect(primary.connection).toBe('read-write');
    expect(secondary.connection).toBe('read-only');
    expect(primary.health).toBe('good');
    expect(secondary.health).toBe('good');
    for (const key of ['name', 'node_id', 'host', 'port', 'timeline', 'lsn', 'connection', 'reported_state', 'goal_state', 'health']) {
      expect(primary).toHaveProperty(key);
    }
    expect(formation.up.uri).toMatch(/target_session_attrs=read-write/);
    // What pgha up printed for the user: state changes, the URI and the export line.
    const printed = readFileSync(join(formation.dir, 'up.log'), 'utf8');
    expect(printed).toContain(`export PGHA_MONITOR=${formation.up.monitor.url}`);
    expect(printed).toContain(formation.up.uri);
    expect(printed).toMatch(/node2\s+127\.0\.0\.1:\d+\s+reported secondary\s+goal secondary/);
  });

  it('is probed by the monitor over one kept session per node, not a new connection per probe', async () => {
    for (const node of formation.up.nodes) {
      // Each probe's query shows as a new query_start of the probe role's session.
      const seen = new Map<string, Set<string>>();
      await waitFor(`three probes on ${node.name}`, async () => {
        const rows = await queryNode<{ session: string; query_start: string }>(
          node.port,
          "select pid || ' ' || backend_start::text as session, query_start::text as query_start from pg_stat_activity where application_name = 'pgha_probe'",
        );
        for (const r of rows) seen.set(r.session, (seen.get(r.session) ?? new Set()).add(r.query_start));
        return [...seen.values()].reduce((n, starts) => n + starts.size, 0) >= 3;
      }, { intervalMs: 100 });
      expect([...seen.keys()]).toHaveLength(1);
    }
  });

  it('takes writes through the multi-host URI and replicates them synchronously to the standby', async () => {
    const client = await connectWritable(formation.up.uri);
    expect(client).toBeDefined();
    await client!.query('create table probe (id bigint primary key, at timestamptz default clock_timestamp())');
    const { rows: ssn } = await client!.query<{ s: string }>("select current_setting('synchronous_standby_names') as s");
    await client!.query('insert into probe(id) select g from generate_series(-100, -1) g');
    await client!.end();
    const { standby } = await primaryAndStandby();
    expect(ssn[0]!.s).toMatch(/^ANY 1 \(pgha_node_\d+\)$/);
    // A commit acknowledged by a primary in `primary` state is on the standby already.
    const onStandby = await queryNode<{ n: string }>(standby.port, 'select count(*) as n from probe where id < 0');
    expect(Number(onStandby[0]!.n)).toBe(100);
  });

  it('fails over within 1 s when every process of the primary node dies (keeper and postmaster SIGKILLed, a loud death), losing no acknowledged write', async () => {
    const { primary, standby } = await primaryAndStandby();
    const writer = new Writer(formation.up.uri, 'probe');
    writer.start();
    await waitFor('the writer to get acknowledgements', () => writer.acks.length >= 50);

    const postmaster = postmasterPid(primary.pgdata);
    expect(postmaster).toBeDefined();
    const killedAt = performance.now();
    killPid(keeperPid.get(primary.name), 'SIGKILL');
    killPid(postmaster, 'SIGKILL');

    const firstOnNew = await waitFor('a write acknowledged by the new primary', () => writer.acks.find((a) => a.port === standby.port && a.atMs > killedAt), { timeoutMs: 60_000 });
    const writesBackMs = firstOnNew.atMs - killedAt;
    await waitFor('more writes on the new primary', () => writer.acks.filter((a) => a.port === standby.port).length >= 20);
    await writer.stop();
    // Measured figure, quoted in the closing note of issue 2.
    console.log(`[failover] kill → first acknowledged write on the new primary: ${writesBackMs.toFixed(0)} ms; acknowledged writes: ${writer.acks.length}`);

    const rows = await showState(formation.up.monitor.url);
    const promoted = rows.find((r) => r.name === standby.name)!;
    expect(['wait_primary', 'primary']).toContain(promoted.goal_state);
    expect(promoted.connection).toBe('read-write');
    expect(promoted.timeline).toBeGreaterThan(primary.row.timeline);
    expect(rows.find((r) => r.name === primary.name)!.goal_state).toBe('demoted');

    const present = await queryNode<{ id: string }>(standby.port, 'select id from probe where id > 0');
    const ids = new Set(present.map((r) => Number(r.id)));
    const lost = writer.acks.filter((a) => !ids.has(a.id));
    expect(lost).toEqual([]);
    // The monitor saw the loud death (docs/timeouts.md, "A loud death"), not 2 s of keeper silence.
    const events = JSON.parse(await runPghaOk(['show', 'events', '--count', '50', '--json', '--monitor', formation.up.monitor.url])) as EventRow[];
    const failover = events.find((e) => e.node_name === primary.name && e.new_goal_state === 'demote_timeout');
    expect(failover?.reason).toBe(`node ${primary.row.node_id} "${primary.name}" failed: died loudly: its keeper's connections to the monitor closed, then its keeper's and its Postgres's ports refused connections twice, no standby streams from it`);
    // Issue 17: writes back on the standby within 1.0 s of the kill (was 2.0–2.3 s: nodeUnhealthyTimeoutMs of keeper silence).
    expect(writesBackMs).toBeLessThan(1_000);
  });

  it('rejoins the dead node as secondary when its keeper runs again (pg_rewind)', async () => {
    const dead = formation.up.nodes.find((n) => postmasterPid(n.pgdata) === undefined)!;
    expect(dead).toBeDefined();
    const keeper = startPgha(['keeper', 'run', '--pgdata', dead.pgdata], { logFile: join(formation.dir, `${dead.name}`, 'keeper-restarted.log') });
    keeperPid.set(dead.name, keeper.pid!);
    await waitFor('primary + secondary again', async () => isPrimaryAndSecondaries(await showState(formation.up.monitor.url)), { timeoutMs: 120_000, intervalMs: 250 });
    const rows = await showState(formation.up.monitor.url);
    const back = rows.find((r) => r.name === dead.name)!;
    expect(back.goal_state).toBe('secondary');
    expect(back.connection).toBe('read-only');
    // It follows the new timeline and has every row.
    const primaryRow = rows.find((r) => r.goal_state === 'primary')!;
    const count = async (port: number) => Number((await queryNode<{ n: string }>(port, 'select count(*) as n from probe'))[0]!.n);
    await waitFor('the rejoined node to have every row', async () => (await count(back.port)) === (await count(primaryRow.port)));
  });

  it('keeps taking writes on the primary when the standby node dies', async () => {
    const { primary, standby } = await primaryAndStandby();
    const standbyKeeper = keeperPid.get(standby.name);
    expect(standbyKeeper).toBeDefined();
    // Ids far from the previous writer's.
    const writer = new Writer(formation.up.uri, 'probe', 1_000_000);
    writer.start();
    await waitFor('writes before the standby dies', () => writer.acks.length >= 20);
    const killedAt = performance.now();
    killPid(standbyKeeper, 'SIGKILL');
    killPid(postmasterPid(standby.pgdata), 'SIGKILL');
    await waitFor('writes to continue after the standby died', () => writer.acks.filter((a) => a.atMs > killedAt + 1000).length >= 50, { timeoutMs: 60_000 });
    await writer.stop();
    const gap = writer.maxGapMs(killedAt - 1000);
    console.log(`[standby failure] longest write gap: ${gap.toFixed(0)} ms`);
    expect(writer.acks.every((a) => a.port === primary.port)).toBe(true);
    const rows = await showState(formation.up.monitor.url);
    expect(rows.find((r) => r.name === primary.name)!.goal_state).toBe('wait_primary');
    expect(rows.find((r) => r.name === standby.name)!.goal_state).toBe('catchingup');
  });
});
