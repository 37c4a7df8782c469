/**
 * Postgres parameters of a formation on a real two-node formation (`pgha up`): `pgha set
 * postgresql` reaches every node's Postgres within seconds (a reload), a node's own value
 * overrides the formation's, a restart-only parameter is shown pending a restart, and a raise
 * of `max_connections` reaches the standby first and the primary only once the standby runs
 * with it; refused values (unknown name, wrong unit, out of range, pgha's own) store nothing.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeStateRow, PostgresParametersChange, PostgresParametersView } from '@pgha/shared';
import { pgCtlStop } from '@pgha/postgres';
import { queryNode, showState, startLocalFormation, type LocalFormation } from './helpers/formation.js';
import { endAllProcesses, runPgha } from './helpers/processes.js';
import { expectOneLineError, runPghaOk } from './helpers/cli.js';
import { waitFor } from './helpers/wait-for.js';
import { monitorFetch } from './helpers/monitor-access.js';

let formation: LocalFormation;
let env: Record<string, string>;
let primary: NodeStateRow;
let standby: NodeStateRow;

beforeAll(async () => {
  formation = await startLocalFormation(2);
  env = { PGHA_MONITOR: formation.up.monitor.url };
  const rows = await showState(formation.up.monitor.url);
  primary = rows.find((r) => r.goal_state === 'primary')!;
  standby = rows.find((r) => r.goal_state === 'secondary')!;
}, 300_000);

afterAll(async () => {
  await endAllProcesses();
});

function pghaOk(...args: string[]): Promise<string> {
  return runPghaOk(args, env);
}

/** What a new session on the node's Postgres says for `name` (`SHOW`). */
async function show(node: NodeStateRow, name: string): Promise<string> {
  return (await queryNode<{ v: string }>(node.port, 'select current_setting($1) as v', [name]))[0]!.v;
}

async function parameters(): Promise<PostgresParametersView> {
  return JSON.parse(await pghaOk('show', 'postgresql', '--json')) as PostgresParametersView;
}

function pgdataOf(node: NodeStateRow): string {
  return formation.up.nodes.find((n) => n.name === node.name)!.pgdata;
}

describe('pgha set postgresql', () => {
  it('sets a parameter of the whole formation: every node runs with it within seconds, without a restart', async () => {
    const set = JSON.parse(await pghaOk('set', 'postgresql', 'work_mem', '8MB', '--json')) as PostgresParametersChange;
    expect(set.changes).toEqual(['Postgres parameter work_mem of formation "default" set to 8MB']);
    expect(set.parameters).toEqual([{ name: 'work_mem', value: '8MB' }]);
    await waitFor('work_mem 8MB on both nodes', async () => (await show(primary, 'work_mem')) === '8MB' && (await show(standby, 'work_mem')) === '8MB', { timeoutMs: 15_000, intervalMs: 200 });
    expect((await pghaOk('get', 'postgresql', 'work_mem')).trim()).toBe('8MB');
    expect((await pghaOk('set', 'postgresql', 'work_mem', '8MB')).trim()).toBe('work_mem of formation "default" is already 8MB');

    // In the node's own file, included from postgresql.conf after pgha.conf.
    const conf = readFileSync(join(pgdataOf(standby), 'postgresql.conf'), 'utf8');
    expect(conf.indexOf("include_if_exists = 'pgha.parameters.conf'")).toBeGreaterThan(conf.indexOf("include_if_exists = 'pgha.conf'"));
    expect(readFileSync(join(pgdataOf(standby), 'pgha.parameters.conf'), 'utf8')).toMatch(/^work_mem = '8MB'$/m);

    await waitFor('show postgresql: 8MB running on both nodes', async () => (await parameters()).nodes.every((n) => n.parameters.some((p) => p.name === 'work_mem' && p.running === '8MB' && !p.pending_restart)), { timeoutMs: 10_000, intervalMs: 200 });
    const events = JSON.parse(await pghaOk('show', 'events', '--json')) as { reason: string; rule: string }[];
    expect(events.some((e) => e.rule === 'settings-changed' && e.reason === 'Postgres parameter work_mem of formation "default" set to 8MB')).toBe(true);
  });

  it("sets a node's own value over the formation's with --name, and --reset takes it back", async () => {
    await pghaOk('set', 'postgresql', 'work_mem', '16MB', '--name', standby.name);
    await waitFor('work_mem 16MB on the standby only', async () => (await show(standby, 'work_mem')) === '16MB', { timeoutMs: 15_000, intervalMs: 200 });
    expect(await show(primary, 'work_mem')).toBe('8MB');
    expect((await pghaOk('get', 'postgresql', 'work_mem', '--name', standby.name)).trim()).toBe('16MB');
    const view = await parameters();
    expect(view.nodes.find((n) => n.name === standby.name)!.overrides).toEqual([{ name: 'work_mem', value: '16MB' }]);
    expect(await pghaOk('show', 'postgresql')).toMatch(/work_mem\s*\|\s*8MB\s*\|.*16MB \(own\)/);

    await pghaOk('set', 'postgresql', 'work_mem', '--reset', '--name', standby.name);
    await waitFor("the standby back to the formation's 8MB", async () => (await show(standby, 'work_mem')) === '8MB', { timeoutMs: 15_000, intervalMs: 200 });
    // ... and so says show postgresql once its keeper reported it.
    await waitFor('show postgresql: 8MB running on the standby', async () => (await parameters()).nodes.find((n) => n.name === standby.name)!.parameters.some((p) => p.name === 'work_mem' && p.running === '8MB'), { timeoutMs: 15_000, intervalMs: 200 });
  });

  it('refuses an unknown name, a wrong unit, a value out of range and the parameters pgha owns, with the reason, and stores nothing', async () => {
    // What is stored: the formation's parameters and each node's own (what keepers report they run may move meanwhile).
    const stored = (v: PostgresParametersView) => ({ parameters: v.parameters, nodes: v.nodes.map((n) => ({ name: n.name, overrides: n.overrides })) });
    const before = stored(await parameters());
    for (const [args, pattern] of [
      [['work_mme', '8MB'], /work_mme is not a Postgres parameter/],
      [['work_mem', '8XB'], /"XB" is not a unit of work_mem: valid units are B, kB, MB, GB, TB/],
      [['work_mem', '1kB'], /1kB is below the minimum of work_mem, 64 \(in kB\)/],
      [['max_connections', '1000000'], /1000000 is above the maximum of max_connections, 262143/],
      [['enable_seqscan', 'maybe'], /"maybe" is not a boolean/],
      [['port', '6543'], /port is set by pgha: the node registered its port/],
      [['synchronous_standby_names', '*'], /synchronous_standby_names is set by pgha: the monitor computes it/],
      [['ssl_ciphers', 'HIGH'], /ssl_ciphers is set by pgha/],
    ] as const) {
      const r = await runPgha(['set', 'postgresql', ...args], env);
      expectOneLineError(r, pattern);
      expect(r.stderr).toMatch(/nothing was changed/);
    }
    const json = await runPgha(['set', 'postgresql', 'work_mem', '8XB', '--json'], env);
    expect(json.exitCode).not.toBe(0);
    expect(stored(await parameters())).toEqual(before);
    expect((await pghaOk('get', 'postgresql', 'port')).trim()).toBe('');
    expect(await show(primary, 'work_mem')).toBe('8MB');
  });

  it('raises max_connections on the standby first, shown pending a restart, and on the primary once the standby runs with it', async () => {
    const running = Number(await show(primary, 'max_connections'));
    const raised = String(running + 50);
    await pghaOk('set', 'postgresql', 'max_connections', raised);

    // The standby gets the new value (pending its restart); the primary keeps its own until then.
    await waitFor('the standby pending a restart for max_connections', async () => (await showState(formation.up.monitor.url)).find((r) => r.name === standby.name)!.pending_restart.includes('max_connections'), { timeoutMs: 15_000, intervalMs: 200 });
    const held = (await parameters()).nodes.find((n) => n.name === primary.name)!;
    expect(held.parameters.find((p) => p.name === 'max_connections')).toMatchObject({ value: String(running), running: String(running), pending_restart: false });
    expect(await pghaOk('show', 'state')).toMatch(new RegExp(`Restart pending on ${standby.name}: max_connections`));
    expect(await pghaOk('show', 'postgresql')).toMatch(new RegExp(`max_connections\\s*\\|\\s*${raised}\\s*\\|.*held back: ${raised}`));
    const metrics = await monitorFetch(`${formation.up.monitor.url}/metrics`);
    expect(await metrics.text()).toMatch(new RegExp(`pgha_node_pending_restart_parameters\\{[^}]*name="${standby.name}"[^}]*\\} 1`));

    // The operator restarts the standby's Postgres (its keeper starts it again with the new value).
    await pgCtlStop(pgdataOf(standby));
    await waitFor('the standby running with the raised max_connections', async () => (await show(standby, 'max_connections').catch(() => '')) === raised, { timeoutMs: 30_000, intervalMs: 250 });
    await waitFor('the primary given it, pending its restart', async () => {
      const rows = await showState(formation.up.monitor.url);
      return rows.find((r) => r.name === primary.name)!.pending_restart.includes('max_connections') && rows.find((r) => r.name === standby.name)!.pending_restart.length === 0;
    }, { timeoutMs: 15_000, intervalMs: 200 });
    expect(Number(await show(primary, 'max_connections'))).toBe(running);
  });

  it('a value Postgres refuses at its start stops pgha perform restart at the first node, which runs on with the values it last started with; no other node restarts', async () => {
    const startTime = async (node: NodeStateRow): Promise<string> => (await queryNode<{ t: string }>(node.port, 'select pg_postmaster_start_time()::text as t'))[0]!.t;
    const primaryStarted = await startTime(primary);
    const sharedBuffers = await show(standby, 'shared_buffers');
    // Within pg_settings' range, so the monitor takes it; beyond any memory this machine has, so Postgres cannot start with it.
    await pghaOk('set', 'postgresql', 'shared_buffers', '4000GB');
    await waitFor('the standby pending a restart for shared_buffers', async () => (await showState(formation.up.monitor.url)).find((r) => r.name === standby.name)!.pending_restart.includes('shared_buffers'), { timeoutMs: 15_000, intervalMs: 200 });

    const r = await runPgha(['perform', 'restart', '--pending', '--wait', '120'], env);
    expectOneLineError(r, new RegExp(`stopped after restarting ${standby.name}: Postgres refused to start with the new parameters \\(.+\\): this node runs with the ones it last started with`));
    expect(r.stderr).toMatch(new RegExp(`the nodes after it were not restarted \\(${primary.name}\\)`));

    // The standby runs again, with the shared_buffers it last started with; the primary was not restarted; the formation is healthy.
    expect(await show(standby, 'shared_buffers')).toBe(sharedBuffers);
    expect(readFileSync(join(pgdataOf(standby), 'pgha.parameters.conf'), 'utf8')).not.toMatch(/shared_buffers/);
    expect(await startTime(primary)).toBe(primaryStarted);
    const rows = await showState(formation.up.monitor.url);
    expect(rows.find((x) => x.name === primary.name)!.goal_state).toBe('primary');
    expect(rows.find((x) => x.name === standby.name)).toMatchObject({ goal_state: 'secondary', reported_state: 'secondary' });
    expect(await pghaOk('show', 'state')).toMatch(new RegExp(`Problem on ${standby.name}: Postgres refused to start with the new parameters`));

    // The operator takes the value back: the problem goes, and nothing is pending for shared_buffers.
    await pghaOk('set', 'postgresql', 'shared_buffers', '--reset');
    await waitFor("the standby's problem gone", async () => {
      const row = (await showState(formation.up.monitor.url)).find((x) => x.name === standby.name)!;
      return row.problem === null && !row.pending_restart.includes('shared_buffers');
    }, { timeoutMs: 30_000, intervalMs: 250 });
  });
});
