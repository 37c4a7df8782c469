/**
 * Operator commands end to end on a real two-node formation (`pgha up`): switchover back and
 * forth with a writer running, promotion, maintenance on the standby and on the primary,
 * refusals that change nothing, and dropping a node.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgCtlStop } from '@pgha/postgres';
import { connectWritable, isPrimaryAndSecondaries, queryNode, showState, startLocalFormation, Writer, type LocalFormation } from './helpers/formation.js';
import { endAllProcesses, postmasterPid, runPgha } from './helpers/processes.js';
import { waitFor } from './helpers/wait-for.js';

let formation: LocalFormation;
let env: Record<string, string>;

beforeAll(async () => {
  formation = await startLocalFormation(2);
  env = { PGHA_MONITOR: formation.up.monitor.url };
  const client = await connectWritable(formation.up.uri);
  await client!.query('create table probe (id bigint primary key)');
  await client!.end();
}, 300_000);

afterAll(async () => {
  await endAllProcesses();
});

const state = () => showState(formation.up.monitor.url);
const settled = async () => waitFor('one primary and one secondary', async () => isPrimaryAndSecondaries(await state()), { timeoutMs: 90_000, intervalMs: 200 });
const nodeOf = (name: string) => formation.up.nodes.find((n) => n.name === name)!;
let nextId = 1;

async function primaryName(): Promise<string> {
  return (await state()).find((r) => r.goal_state === 'primary' || r.goal_state === 'wait_primary')!.name;
}

describe('perform switchover', () => {
  it('switches back and forth with a writer running, losing no acknowledged write', async () => {
    for (let round = 1; round <= 2; round++) {
      await settled();
      const before = await primaryName();
      const writer = new Writer(formation.up.uri, 'probe', nextId);
      writer.start();
      await waitFor('writes before the switchover', () => writer.acks.length >= 30);
      const startedAt = performance.now();
      const r = await runPgha(['perform', 'switchover', '--json'], env);
      expect(r.exitCode, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as { elapsed_ms: number; state: { name: string; goal_state: string }[] };
      const after = out.state.find((s) => s.goal_state === 'primary' || s.goal_state === 'wait_primary')!.name;
      expect(after).not.toBe(before);
      const newPort = nodeOf(after).port;
      const first = await waitFor('a write on the new primary', () => writer.acks.find((a) => a.port === newPort && a.atMs > startedAt));
      await waitFor('more writes', () => writer.acks.filter((a) => a.port === newPort).length >= 20);
      await writer.stop();
      nextId = writer.acks.at(-1)!.id + 1_000;
      console.log(`[switchover ${round}] command reported ${out.elapsed_ms} ms; command start → first write on the new primary: ${(first.atMs - startedAt).toFixed(0)} ms; longest write gap ${writer.maxGapMs(startedAt - 1000).toFixed(0)} ms`);
      const ids = new Set((await queryNode<{ id: string }>(newPort, 'select id from probe')).map((x) => Number(x.id)));
      expect(writer.acks.filter((a) => !ids.has(a.id))).toEqual([]);
    }
    await settled();
  });

  it('refuses while a standby is not synchronous, and changes nothing', async () => {
    await settled();
    const standby = (await state()).find((r) => r.goal_state === 'secondary')!;
    expect((await runPgha(['maintenance', 'enable', '--name', standby.name], env)).exitCode).toBe(0);
    const before = await state();
    const r = await runPgha(['perform', 'switchover'], env);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/pgha: error: refused: .*(wait_primary|no standby)/);
    expect((await state()).map((x) => [x.name, x.goal_state])).toEqual(before.map((x) => [x.name, x.goal_state]));
    expect((await runPgha(['maintenance', 'disable', '--name', standby.name], env)).exitCode).toBe(0);
    await settled();
  });
});

describe('perform promotion', () => {
  it('promotes the named standby, and is a no-op on the primary', async () => {
    await settled();
    const primary = await primaryName();
    const noop = await runPgha(['perform', 'promotion', '--name', primary], env);
    expect(noop.exitCode, noop.stderr).toBe(0);
    expect(noop.stdout).toMatch(/already the primary/);
    const standby = (await state()).find((r) => r.goal_state === 'secondary')!.name;
    const r = await runPgha(['perform', 'promotion', '--name', standby], env);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await primaryName()).toBe(standby);
    const unknown = await runPgha(['perform', 'promotion', '--name', 'nosuch'], env);
    expect(unknown.exitCode).not.toBe(0);
    expect(unknown.stderr).toMatch(/node "nosuch" does not exist in formation "default"/);
    await settled();
  });
});

describe('maintenance', () => {
  it('on the standby: it leaves synchronous replication, writes go on while its Postgres is stopped, and it comes back', async () => {
    await settled();
    const standby = (await state()).find((r) => r.goal_state === 'secondary')!;
    const r = await runPgha(['maintenance', 'enable', '--name', standby.name], env);
    expect(r.exitCode, r.stderr).toBe(0);
    const rows = await state();
    expect(rows.find((x) => x.name === standby.name)!.reported_state).toBe('maintenance');
    expect(rows.find((x) => x.name !== standby.name)!.goal_state).toBe('wait_primary');
    // The operator stops the standby's Postgres; writes on the primary do not wait for it.
    await pgCtlStop(nodeOf(standby.name).pgdata);
    const client = await connectWritable(formation.up.uri);
    await client!.query("set statement_timeout = '3s'");
    await client!.query('insert into probe(id) values ($1)', [nextId++]);
    await client!.end();
    const back = await runPgha(['maintenance', 'disable', '--name', standby.name], env);
    expect(back.exitCode, back.stderr).toBe(0);
    await settled();
    expect(postmasterPid(nodeOf(standby.name).pgdata)).toBeDefined();
  });

  it('on the primary: refused without --allow-failover; with it, a switchover first', async () => {
    await settled();
    const primary = await primaryName();
    const refused = await runPgha(['maintenance', 'enable', '--name', primary], env);
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stderr).toMatch(/is the primary: pass --allow-failover/);
    const r = await runPgha(['maintenance', 'enable', '--name', primary, '--allow-failover'], env);
    expect(r.exitCode, r.stderr).toBe(0);
    const rows = await state();
    expect(rows.find((x) => x.name === primary)!.goal_state).toBe('maintenance');
    expect(rows.find((x) => x.name !== primary)!.connection).toBe('read-write');
    const back = await runPgha(['maintenance', 'disable', '--name', primary], env);
    expect(back.exitCode, back.stderr).toBe(0);
    await settled();
    expect(await primaryName()).not.toBe(primary);
  });
});

describe('drop node', () => {
  it('drops the standby: its Postgres stops, the primary left alone becomes single and may be restarted', async () => {
    await settled();
    const standby = (await state()).find((r) => r.goal_state === 'secondary')!.name;
    const primary = await primaryName();
    const primaryRefused = await runPgha(['drop', 'node', '--name', primary], env);
    expect(primaryRefused.exitCode).not.toBe(0);
    expect(primaryRefused.stderr).toMatch(/is the primary and other nodes depend on it/);
    const r = await runPgha(['drop', 'node', '--name', standby], env);
    expect(r.exitCode, r.stderr).toBe(0);
    const rows = await state();
    expect(rows.map((x) => x.name)).not.toContain(standby);
    expect(rows[0]!.goal_state).toBe('single');
    await waitFor('the dropped node to stop Postgres', () => postmasterPid(nodeOf(standby).pgdata) === undefined);
    await waitFor('the primary to reach single', async () => (await state()).every((x) => x.reported_state === 'single' && x.goal_state === 'single'), { timeoutMs: 30_000, intervalMs: 200 });
    // A lone single is a settled group: its restart in place is accepted.
    const pidBefore = postmasterPid(nodeOf(primary).pgdata);
    const restart = await runPgha(['perform', 'restart', '--name', primary, '--in-place', '--json'], env);
    expect(restart.exitCode, restart.stderr).toBe(0);
    expect((JSON.parse(restart.stdout) as { restarted: { method: string }[] }).restarted.map((x) => x.method)).toEqual(['in-place']);
    expect(postmasterPid(nodeOf(primary).pgdata)).not.toBe(pidBefore);
  });
});
