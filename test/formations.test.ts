/**
 * One monitor, two formations on real Postgres: `pgha create formation`, nodes registering
 * into each with `pgha keeper create postgres --formation`, a failover in `default` that
 * leaves `other` exactly as it was, and `pgha create|drop formation` refusals.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import getPort from 'get-port';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventRow, FormationDropped, FormationView, NodeStateRow } from '@pgha/shared';
import { isPrimaryAndSecondaries, queryNode } from './helpers/formation.js';
import { endAllProcesses, killPid, postmasterPid, runPgha, startPgha, trackPgdata } from './helpers/processes.js';
import { startMonitor } from './helpers/cluster.js';
import { expectOneLineError, runPghaOk } from './helpers/cli.js';
import { waitFor } from './helpers/wait-for.js';
import { monitorFetch } from './helpers/monitor-access.js';

let dir: string;
let monitorUrl: string;
let env: Record<string, string>;

interface TestNode {
  formation: string;
  name: string;
  pgdata: string;
  port: number;
  keeperPid: number;
}
const nodes: TestNode[] = [];

async function pgha(...args: string[]) {
  return runPgha(args, env);
}

function pghaOk(...args: string[]): Promise<string> {
  return runPghaOk(args, env);
}


async function state(formation: string): Promise<NodeStateRow[]> {
  return JSON.parse(await pghaOk('show', 'state', '--formation', formation, '--json')) as NodeStateRow[];
}

async function events(formation: string): Promise<EventRow[]> {
  return JSON.parse(await pghaOk('show', 'events', '--formation', formation, '--count', '1000', '--json')) as EventRow[];
}

/** `keeper create` then, right after it, `keeper run` for one node. */
async function createNode(formation: string, name: string, port: number): Promise<TestNode> {
  const pgdata = join(dir, formation, name, 'pgdata');
  trackPgdata(pgdata);
  const created = await pgha('keeper', 'create', 'postgres', '--formation', formation, '--pgdata', pgdata, '--pg-port', String(port), '--name', name, '--hostname', '127.0.0.1', '--auth', 'trust', '--http-listen', `127.0.0.1:${await getPort({ host: '127.0.0.1', exclude: [port] })}`);
  expect(created.exitCode, created.stderr).toBe(0);
  const keeper = startPgha(['keeper', 'run', '--pgdata', pgdata], { logFile: join(dir, `${formation}-${name}.log`) });
  const node = { formation, name, pgdata, port, keeperPid: keeper.pid! };
  nodes.push(node);
  return node;
}

beforeAll(async () => {
  const monitor = await startMonitor();
  dir = monitor.dir;
  monitorUrl = monitor.url;
  env = { PGHA_MONITOR: monitorUrl };
}, 120_000);

afterAll(async () => {
  await endAllProcesses();
});

describe('formations on one monitor', () => {
  it('creates a formation, and refuses nodes into one that does not exist', async () => {
    const created = JSON.parse(await pghaOk('create', 'formation', 'other', '--number-sync-standbys', '0', '--json')) as FormationView;
    expect(created).toMatchObject({ formation: 'other', kind: 'pgsql', dbname: 'postgres', number_sync_standbys: 0, timing: { nodeUnhealthyTimeoutMs: 2000, keeperReportIntervalMs: 500 } });
    expect(await state('other')).toEqual([]);

    const pgdata = join(dir, 'nosuch', 'pgdata');
    const r = await pgha('keeper', 'create', 'postgres', '--formation', 'nosuch', '--pgdata', pgdata, '--pg-port', String(await getPort()), '--name', 'lost', '--hostname', '127.0.0.1');
    expectOneLineError(r, /formation "nosuch" does not exist; create it first with: pgha create formation nosuch/);
    expect(existsSync(`${pgdata}.pgha/keeper.json`)).toBe(false);
  });

  it('brings up a primary and a secondary in each formation', async () => {
    const ports: number[] = [];
    for (let i = 0; i < 4; i++) ports.push(await getPort({ host: '127.0.0.1', exclude: ports }));
    // The two formations side by side; in each, the first node before the second.
    await Promise.all(
      ['default', 'other'].map(async (formation, f) => {
        await createNode(formation, `${formation}-a`, ports[2 * f]!);
        await createNode(formation, `${formation}-b`, ports[2 * f + 1]!);
      }),
    );
    for (const formation of ['default', 'other']) {
      await waitFor(`primary + secondary in ${formation}`, async () => isPrimaryAndSecondaries(await state(formation)), { timeoutMs: 60_000, intervalMs: 250 });
      expect((await state(formation)).map((r) => r.name).sort()).toEqual([`${formation}-a`, `${formation}-b`]);
    }
  });

  it('fails over in default while other keeps its goals, node ids and events', async () => {
    const before = await state('other');
    const otherEvents = await events('other');
    const snapshot = (rows: NodeStateRow[]) => rows.map((r) => ({ node_id: r.node_id, name: r.name, goal_state: r.goal_state }));

    const rows = await state('default');
    const primaryRow = rows.find((r) => r.goal_state === 'primary')!;
    const standbyRow = rows.find((r) => r.goal_state === 'secondary')!;
    const primary = nodes.find((n) => n.name === primaryRow.name)!;
    const postmaster = postmasterPid(primary.pgdata);
    expect(postmaster).toBeDefined();
    killPid(primary.keeperPid, 'SIGKILL');
    killPid(postmaster, 'SIGKILL');

    // Sampled all along the failover: any change in other is recorded, not retried away.
    const otherChanges: unknown[] = [];
    await waitFor('the standby of default to take writes', async () => {
      const other = snapshot(await state('other'));
      if (JSON.stringify(other) !== JSON.stringify(snapshot(before))) otherChanges.push(other);
      const now = await state('default');
      const promoted = now.find((r) => r.node_id === standbyRow.node_id)!;
      if (!['wait_primary', 'primary'].includes(promoted.goal_state) || promoted.reported_state !== promoted.goal_state) return false;
      const [row] = await queryNode<{ ro: boolean }>(promoted.port, 'select pg_is_in_recovery() as ro');
      return row?.ro === false;
    }, { timeoutMs: 60_000, intervalMs: 250 });
    expect(otherChanges).toEqual([]);
    expect((await state('default')).find((r) => r.node_id === primaryRow.node_id)!.goal_state).toBe('demoted');

    const after = await state('other');
    expect(snapshot(after)).toEqual(snapshot(before));
    expect(isPrimaryAndSecondaries(after)).toBe(true);
    expect(await events('other')).toEqual(otherEvents);
    expect((await events('default')).some((e) => e.rule === 'failover-start')).toBe(true);
  });

  it('refuses to drop a formation without --yes, with nodes, or that does not exist, and to create one twice', async () => {
    const noYes = await pgha('drop', 'formation', 'other');
    expectOneLineError(noYes, /dropping formation "other" cannot be undone; add --yes/);
    expect(noYes.exitCode).toBe(2);

    const withNodes = await pgha('drop', 'formation', 'other', '--yes');
    expectOneLineError(withNodes, /formation "other" still has 2 nodes \(node \d+ "other-a", node \d+ "other-b"\); drop its nodes first/);
    expect(withNodes.exitCode).toBe(1);
    const api = await monitorFetch(`${monitorUrl}/v1/formations/other`, { method: 'DELETE' });
    expect(api.status).toBe(409);
    expect((await state('other')).length).toBe(2);
    expectOneLineError(await pgha('drop', 'formation', 'default', '--yes'), /formation "default" still has 2 nodes/);

    expectOneLineError(await pgha('drop', 'formation', 'nosuch', '--yes'), /formation "nosuch" does not exist/);
    expect((await monitorFetch(`${monitorUrl}/v1/formations/nosuch`, { method: 'DELETE' })).status).toBe(404);

    expectOneLineError(await pgha('create', 'formation', 'other'), /formation "other" already exists/);
    const twice = await monitorFetch(`${monitorUrl}/v1/formations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ formation: 'other' }) });
    expect(twice.status).toBe(409);
    const badName = await monitorFetch(`${monitorUrl}/v1/formations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ formation: 'Other!' }) });
    expect(badName.status).toBe(400);
    expect(((await badName.json()) as { field: string }).field).toBe('body.formation');
  });

  it('drops an empty formation with --yes', async () => {
    await pghaOk('create', 'formation', 'scratch', '--number-sync-standbys', '1');
    expect((await pghaOk('get', 'formation', 'number-sync-standbys', '--formation', 'scratch')).trim()).toBe('1');
    const dropped = JSON.parse(await pghaOk('drop', 'formation', 'scratch', '--yes', '--json')) as FormationDropped;
    expect(dropped).toEqual({ formation: 'scratch', dropped: true });
    expectOneLineError(await pgha('show', 'state', '--formation', 'scratch'), /formation "scratch" does not exist/);
  });
});
