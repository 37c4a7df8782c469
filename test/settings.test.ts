/**
 * Replication settings on a real two-node formation (`pgha up`): candidate priority and
 * replication quorum round-trip through `pgha set|get`, `pgha show settings` and
 * `pgha show standby-names` show them, the primary applies a replication-quorum change to its
 * running `synchronous_standby_names`, and refused changes leave the formation as it was.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_FORMATION_SETTINGS, TIMING_SETTINGS, type EventRow, type NodeSettingsChange, type NodeSettingsRow, type NodeStateRow, type SettingsView, type StandbyNamesView } from '@pgha/shared';
import { connectWritable, isPrimaryAndSecondaries, queryNode, showState, startLocalFormation, type LocalFormation } from './helpers/formation.js';
import { endAllProcesses, runPgha } from './helpers/processes.js';
import { expectOneLineError, expectUsageError, runPghaOk } from './helpers/cli.js';
import { waitFor } from './helpers/wait-for.js';
import { monitorFetch } from './helpers/monitor-access.js';

let formation: LocalFormation;
/** The timing settings a formation shows before any change: the defaults. */
const timingDefaults = Object.fromEntries(Object.values(TIMING_SETTINGS).map((s) => [s.key, DEFAULT_FORMATION_SETTINGS[s.key]]));
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

async function pgha(...args: string[]) {
  return runPgha(args, env);
}

function pghaOk(...args: string[]): Promise<string> {
  return runPghaOk(args, env);
}


/** `synchronous_standby_names` that the primary's Postgres runs with. */
async function runningStandbyNames(): Promise<string> {
  return (await queryNode<{ s: string }>(primary.port, "select current_setting('synchronous_standby_names') as s"))[0]!.s;
}

async function events(): Promise<EventRow[]> {
  return JSON.parse(await pghaOk('show', 'events', '--count', '100', '--json')) as EventRow[];
}

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: { message?: string; field?: string; code?: string } }> {
  const res = await monitorFetch(`${formation.up.monitor.url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as { message?: string; field?: string } };
}

describe('node settings', () => {
  it('round-trips candidate priority through set and get, with --json and an event row', async () => {
    expect((await pghaOk('get', 'node', 'candidate-priority', '--name', standby.name)).trim()).toBe('50');
    const set = await pghaOk('set', 'node', 'candidate-priority', '30', '--name', standby.name);
    expect(set.trim()).toBe(`candidate priority of node ${standby.node_id} "${standby.name}" set from 50 to 30`);
    expect((await pghaOk('get', 'node', 'candidate-priority', '--name', standby.name)).trim()).toBe('30');

    const row = JSON.parse(await pghaOk('get', 'node', 'candidate-priority', '--name', standby.name, '--json')) as NodeSettingsRow;
    expect(row).toEqual({ formation: 'default', group_id: 0, node_id: standby.node_id, name: standby.name, candidate_priority: 30, replication_quorum: true });
    const again = JSON.parse(await pghaOk('set', 'node', 'candidate-priority', '30', '--name', standby.name, '--json')) as NodeSettingsChange;
    expect(again).toEqual({ node: row, changes: [], warnings: [] });

    const event = (await events()).find((e) => e.rule === 'settings-changed' && e.node_id === standby.node_id);
    expect(event).toMatchObject({
      node_name: standby.name,
      old_goal_state: 'secondary',
      new_goal_state: 'secondary',
      reason: `candidate priority of node ${standby.node_id} "${standby.name}" set from 50 to 30`,
    });

    // Priority 0 on the only standby: accepted, with a warning that nothing can be promoted.
    const zero = await pgha('set', 'node', 'candidate-priority', '0', '--name', standby.name);
    expect(zero.exitCode).toBe(0);
    expect(zero.stderr).toMatch(/pgha: warning: no standby of group 0 in formation "default" can be promoted now/);
    await pghaOk('set', 'node', 'candidate-priority', '50', '--name', standby.name);
  });

  it('shows the settings and the standby names the monitor computes', async () => {
    const view = JSON.parse(await pghaOk('show', 'settings', '--json')) as SettingsView;
    expect(view.formation).toEqual({ formation: 'default', kind: 'pgsql', dbname: 'postgres', number_sync_standbys: 0, timing: timingDefaults, client_networks: [] });
    const byId = [primary, standby].sort((a, b) => a.node_id - b.node_id);
    expect(view.nodes.map((n) => [n.name, n.candidate_priority, n.replication_quorum])).toEqual(byId.map((n) => [n.name, 50, true]));
    const expected = `ANY 1 (pgha_node_${standby.node_id})`;
    expect(view.standby_names).toEqual([{ formation: 'default', group_id: 0, primary: primary.name, primary_node_id: primary.node_id, synchronous_standby_names: expected }]);

    const text = await pghaOk('show', 'settings');
    expect(text).toMatch(/formation\s+\|\s+default\s+\|\s+number_sync_standbys\s+\|\s+0/);
    expect(text).toMatch(/formation\s+\|\s+default\s+\|\s+client-networks\s+\|\s+none/);
    expect(text).toContain(`'${expected}'`);
    expect(text).toMatch(new RegExp(`node\\s+\\|\\s+${standby.name}\\s+\\|\\s+replication quorum\\s+\\|\\s+true`));

    expect((await pghaOk('show', 'standby-names')).trim()).toBe(expected);
    const names = JSON.parse(await pghaOk('show', 'standby-names', '--json')) as StandbyNamesView;
    expect(names.synchronous_standby_names).toBe(expected);
    expect(await runningStandbyNames()).toBe(expected);
  });

  it('takes a standby out of the replication quorum: the primary stops waiting for it, and back in', async () => {
    expect((await pghaOk('get', 'node', 'replication-quorum', '--name', standby.name)).trim()).toBe('true');
    const off = await pghaOk('set', 'node', 'replication-quorum', 'false', '--name', standby.name);
    expect(off.trim()).toBe(`replication quorum of node ${standby.node_id} "${standby.name}" set from true to false`);
    expect((await pghaOk('get', 'node', 'replication-quorum', '--name', standby.name)).trim()).toBe('false');
    expect(await pghaOk('show', 'standby-names')).toBe(''); // an empty line (execa strips the newline)

    // The primary's keeper applies the new (empty) synchronous_standby_names; writes do not wait.
    await waitFor('the primary to run without synchronous standbys', async () => (await runningStandbyNames()) === '', { timeoutMs: 20_000 });
    const client = await connectWritable(formation.up.uri);
    expect(client).toBeDefined();
    try {
      await client!.query('set statement_timeout = 3000');
      await client!.query('create table if not exists settings_probe (id int)');
      await client!.query('insert into settings_probe values (1)');
    } finally {
      await client!.end();
    }
    // The primary stays writable (today's rules keep it in primary), the standby replicates.
    const rows = await showState(formation.up.monitor.url);
    expect(['primary', 'wait_primary']).toContain(rows.find((r) => r.node_id === primary.node_id)!.goal_state);
    expect(rows.find((r) => r.node_id === primary.node_id)!.connection).toBe('read-write');
    expect(rows.find((r) => r.node_id === standby.node_id)).toMatchObject({ goal_state: 'secondary' });

    await pghaOk('set', 'node', 'replication-quorum', 'true', '--name', standby.name);
    const expected = `ANY 1 (pgha_node_${standby.node_id})`;
    expect((await pghaOk('show', 'standby-names')).trim()).toBe(expected);
    await waitFor('the primary to wait for its standby again', async () => (await runningStandbyNames()) === expected, { timeoutMs: 20_000 });
    await waitFor('primary + secondary', async () => isPrimaryAndSecondaries(await showState(formation.up.monitor.url)), { timeoutMs: 20_000 });
  });
});

describe('formation settings', () => {
  it('sets number_sync_standbys within the standbys available, and refuses more', async () => {
    expect((await pghaOk('get', 'formation', 'number-sync-standbys')).trim()).toBe('0');
    const refused = await pgha('set', 'formation', 'number-sync-standbys', '2');
    expectOneLineError(refused, /number_sync_standbys 2 cannot be met in formation "default": group 0 has 1 standby with replication quorum; choose a value from 0 to 1/);
    expect((await pghaOk('get', 'formation', 'number-sync-standbys')).trim()).toBe('0');

    const set = JSON.parse(await pghaOk('set', 'formation', 'number-sync-standbys', '1', '--json')) as { formation: { number_sync_standbys: number }; changes: string[] };
    expect(set.formation.number_sync_standbys).toBe(1);
    expect(set.changes).toEqual(['number_sync_standbys of formation "default" set from 0 to 1']);
    const event = (await events()).at(-1)!;
    expect(event).toMatchObject({ node_id: 0, node_name: '(formation)', rule: 'settings-changed', reason: set.changes[0] });

    // With number_sync_standbys 1, the only standby must stay in the replication quorum.
    const quorumOff = await pgha('set', 'node', 'replication-quorum', 'false', '--name', standby.name);
    expectOneLineError(quorumOff, /cannot set replication quorum of node \d+ "node\d" to false: formation "default" has number_sync_standbys 1, and only 0 standbys would be left/);
    expect((await pghaOk('get', 'node', 'replication-quorum', '--name', standby.name)).trim()).toBe('true');

    await pghaOk('set', 'formation', 'number-sync-standbys', '0');
    expect((await pghaOk('get', 'formation', 'number-sync-standbys')).trim()).toBe('0');
  });
});

describe('timing settings', () => {
  it('sets a timing setting with its unit: the monitor shows it, writes its event, and every keeper takes it at once', async () => {
    expect((await pghaOk('get', 'formation', 'keeper-report-interval')).trim()).toBe('500 ms');
    const set = JSON.parse(await pghaOk('set', 'formation', 'keeper-report-interval', '300ms', '--json')) as { formation: SettingsView['formation']; changes: string[] };
    expect(set.changes).toEqual(['keeper-report-interval of formation "default" set from 500 ms to 300 ms']);
    expect(set.formation.timing.keeperReportIntervalMs).toBe(300);
    expect((await events()).at(-1)).toMatchObject({ node_id: 0, rule: 'settings-changed', reason: set.changes[0] });
    expect(JSON.parse(await pghaOk('get', 'formation', 'keeper-report-interval', '--json'))).toEqual({ formation: 'default', 'keeper-report-interval': 300 });
    // Each keeper says it reports at the new interval.
    const keeperLogs = formation.up.nodes.map((n) => join(dirname(n.pgdata), 'keeper.log'));
    await waitFor('both keepers on the new interval', () => keeperLogs.every((f) => /formation settings: reports every 300 ms/.test(readFileSync(f, 'utf8'))), { timeoutMs: 10_000, intervalMs: 100 });
    expect(await pghaOk('show', 'settings')).toMatch(/formation +\| +default +\| +keeper-report-interval +\| +300 ms/);
    expect((await pghaOk('set', 'formation', 'keeper-report-interval', '0.3s')).trim()).toBe('keeper-report-interval of formation "default" is already 300 ms');
    await pghaOk('set', 'formation', 'keeper-report-interval', '500ms');
    expect(isPrimaryAndSecondaries(await showState(formation.up.monitor.url))).toBe(true);
  });

  it('refuses, with the numbers, a combination that would let the monitor promote before a cut-off primary has fenced itself, and changes nothing', async () => {
    const before = (await events()).at(-1)!.event_id;
    const refused = await pgha('set', 'formation', 'network-partition-timeout', '2s');
    expectOneLineError(refused, /fences itself as late as 2300 ms after its last answered report .* after node-unhealthy-timeout 2000 ms: two primaries could take writes for up to 300 ms\. Raise node-unhealthy-timeout above 2300 ms/);
    expect((await pghaOk('get', 'formation', 'network-partition-timeout')).trim()).toBe('1000 ms');
    expect((await events()).at(-1)!.event_id).toBe(before);
    const streaming = await pgha('set', 'formation', 'standby-streaming-timeout', '2s');
    expectOneLineError(streaming, /standby-streaming-timeout 2000 ms is not above node-unhealthy-timeout 2000 ms/);
    // Raised first, the unhealthy timeout makes room for the longer partition timeout.
    await pghaOk('set', 'formation', 'standby-streaming-timeout', '4s');
    await pghaOk('set', 'formation', 'node-unhealthy-timeout', '3s');
    await pghaOk('set', 'formation', 'network-partition-timeout', '2s');
    const view = JSON.parse(await pghaOk('show', 'settings', '--json')) as SettingsView;
    expect(view.formation.timing).toMatchObject({ nodeUnhealthyTimeoutMs: 3000, networkPartitionTimeoutMs: 2000, standbyStreamingTimeoutMs: 4000 });
    await pghaOk('set', 'formation', 'network-partition-timeout', '1s');
    await pghaOk('set', 'formation', 'node-unhealthy-timeout', '2s');
    await pghaOk('set', 'formation', 'standby-streaming-timeout', '3s');
  });

  it('refuses a duration without a unit, a wrong unit, or one out of range, before asking the monitor', async () => {
    expectUsageError(await pgha('set', 'formation', 'node-unhealthy-timeout', '3'), 'set formation node-unhealthy-timeout', /give a unit: 3s or 3ms/);
    expectUsageError(await pgha('set', 'formation', 'node-unhealthy-timeout', '3 parsecs'), 'set formation node-unhealthy-timeout', /"3 parsecs" is not a duration/);
    expectUsageError(await pgha('set', 'formation', 'health-probe-interval', '10ms'), 'set formation health-probe-interval', /expected a duration from 100 ms to 60 s/);
    expectUsageError(await pgha('set', 'formation', 'health-probe-retries', '0'), 'set formation health-probe-retries', /expected a whole number from 1 to 20/);
    const api400 = await api('PATCH', '/v1/formations/default/settings', { healthProbeIntervalMs: 5 });
    expect(api400.status).toBe(400);
    expect(api400.body.field).toBe('body.healthProbeIntervalMs');
    expect((await pghaOk('get', 'formation', 'health-probe-interval')).trim()).toBe('500 ms');
  });
});

describe('bad input', () => {
  it('names an unknown node or formation', async () => {
    expectOneLineError(await pgha('get', 'node', 'candidate-priority', '--name', 'nosuch'), /node "nosuch" does not exist in formation "default"; pgha show state --formation default lists its nodes/);
    expectOneLineError(await pgha('set', 'node', 'replication-quorum', 'false', '--name', 'nosuch'), /node "nosuch" does not exist/);
    expectOneLineError(await pgha('show', 'settings', '--formation', 'nosuch'), /formation "nosuch" does not exist; create it first with: pgha create formation nosuch/);
  });

  it('prints the usage line for a wrong or missing argument', async () => {
    expectUsageError(await pgha('set', 'node', 'candidate-priority', '101', '--name', standby.name), 'set node candidate-priority', /expected a whole number from 0 to 100/);
    expectUsageError(await pgha('get', 'node', 'replication-quorum'), 'get node replication-quorum', /required option '--name <name>' not specified/);
    expectUsageError(await pgha('set', 'node', 'replication-quorum', 'maybe', '--name', standby.name), 'set node replication-quorum', /expected true or false/);
    expectUsageError(await pgha('set', 'formation', 'number-sync-standbys'), 'set formation number-sync-standbys', /missing required argument 'n'/);
    expect((await pghaOk('get', 'node', 'candidate-priority', '--name', standby.name)).trim()).toBe('50');
  });

  it('answers 400 naming the field, and 404 for an unknown node, through the API', async () => {
    const path = `/v1/formations/default/nodes/${standby.name}/settings`;
    const wrong = await api('PATCH', path, { candidatePriority: 'high' });
    expect(wrong.status).toBe(400);
    expect(wrong.body.field).toBe('body.candidatePriority');
    const tooHigh = await api('PATCH', path, { candidatePriority: 101 });
    expect(tooHigh.status).toBe(400);
    expect(tooHigh.body.field).toBe('body.candidatePriority');
    const empty = await api('PATCH', path, {});
    expect(empty.status).toBe(400);
    const extra = await api('PATCH', path, { candidatePriority: 10, goalState: 'primary' });
    expect(extra.status).toBe(400);
    expect(extra.body.message).toMatch(/unknown field.*goalState/);
    const formationWrong = await api('PATCH', '/v1/formations/default/settings', { numberSyncStandbys: -1 });
    expect(formationWrong.status).toBe(400);
    expect(formationWrong.body.field).toBe('body.numberSyncStandbys');
    expect((await api('PATCH', '/v1/formations/default/nodes/nosuch/settings', { candidatePriority: 10 })).status).toBe(404);
    expect((await api('GET', '/v1/formations/default/nodes/nosuch/settings')).status).toBe(404);
    const view = JSON.parse(await pghaOk('show', 'settings', '--json')) as SettingsView;
    expect(view.nodes.every((n) => n.candidate_priority === 50 && n.replication_quorum)).toBe(true);
    expect(view.formation.number_sync_standbys).toBe(0);
  });
});
