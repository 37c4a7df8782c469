/**
 * The monitor's observability on a real two-node formation: `GET /metrics` scraped as
 * Prometheus does (with the operator token), before and after a switchover; and `pgha show
 * events --follow` running while a switchover happens and while the monitor restarts: each new
 * event appears on its stdout, once, none missed.
 */
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventRow } from '@pgha/shared';
import { addNode, startMonitor, type TestMonitor } from './helpers/cluster.js';
import { isPrimaryAndSecondaries, showState } from './helpers/formation.js';
import { monitorFetch, withMonitorCredentials } from './helpers/monitor-access.js';
import { PGHA_BIN, endAllProcesses, runPgha, startPgha, startTracked } from './helpers/processes.js';
import { parseExposition, valueOf, type Exposition } from './helpers/prometheus.js';
import { waitFor } from './helpers/wait-for.js';

let monitor: TestMonitor;
let monitorProc: TestMonitor['proc'];

const settled = async () => waitFor('one primary and one secondary', async () => isPrimaryAndSecondaries(await showState(monitor.url)), { timeoutMs: 120_000, intervalMs: 250 });

async function scrape(): Promise<Exposition> {
  const res = await monitorFetch(`${monitor.url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

async function storeEvents(): Promise<EventRow[]> {
  const r = await runPgha(['show', 'events', '--json', '--count', '1000', '--monitor', monitor.url]);
  expect(r.exitCode, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as EventRow[];
}

async function switchover(): Promise<void> {
  const r = await runPgha(['perform', 'switchover', '--monitor', monitor.url]);
  expect(r.exitCode, r.stderr).toBe(0);
  await settled();
}

const nodeLabels = async (name: string) => {
  const row = (await showState(monitor.url)).find((r) => r.name === name)!;
  return { formation: 'default', group: '0', node: String(row.node_id), name };
};

beforeAll(async () => {
  monitor = await startMonitor();
  monitorProc = monitor.proc;
  await addNode(monitor, 'node1');
  await addNode(monitor, 'node2');
  await settled();
}, 300_000);

afterAll(async () => {
  await endAllProcesses();
});

describe('GET /metrics', () => {
  it('at rest, each keeper sends the monitor one request per report interval: its report, which also waits for goal changes (pgha_keeper_requests_total)', async () => {
    await settled();
    const requests = async (): Promise<{ report: number; goal: number }> => {
      const e = await scrape();
      return { report: valueOf(e, 'pgha_keeper_requests_total', { route: 'report' }) ?? 0, goal: valueOf(e, 'pgha_keeper_requests_total', { route: 'goal' }) ?? 0 };
    };
    const before = await requests();
    const startMs = performance.now();
    // Two keepers, a report each every keeperReportIntervalMs (500 ms): 20 in about 5 s.
    const after = await waitFor('20 more reports from the keepers', async () => {
      const r = await requests();
      return r.report >= before.report + 20 && r;
    }, { timeoutMs: 30_000, intervalMs: 250 });
    const elapsedMs = performance.now() - startMs;
    expect(after.goal - before.goal).toBe(0);
    // At most one report per keeper per interval, and one more each for the window's edges.
    expect(after.report - before.report).toBeLessThanOrEqual(2 * (Math.ceil(elapsedMs / 500) + 1));
    console.log(`at rest: ${after.report - before.report} reports and ${after.goal - before.goal} goal long-polls from 2 keepers in ${Math.round(elapsedMs)} ms`);
  });

  it('needs the operator token, and shows the switchover: the counter up by one, the state gauges swapped', async () => {
    expect((await monitorFetch(`${monitor.url}/metrics`, { token: '' })).status).toBe(401);
    const [node1, node2] = [await nodeLabels('node1'), await nodeLabels('node2')];
    const before = await scrape();
    expect(before.types.get('pgha_switchovers_total')).toBe('counter');
    expect(before.types.get('pgha_health_probe_failures_total')).toBe('counter');
    expect(valueOf(before, 'pgha_switchovers_total', { formation: 'default' })).toBe(0);
    expect(valueOf(before, 'pgha_failovers_total', { formation: 'default' })).toBe(0);
    expect(valueOf(before, 'pgha_node_goal_state', { ...node1, state: 'primary' })).toBe(1);
    expect(valueOf(before, 'pgha_node_reported_state', { ...node2, state: 'secondary' })).toBe(1);
    expect(valueOf(before, 'pgha_node_replication_lag_bytes', node2)).toBeGreaterThanOrEqual(0);
    expect(valueOf(before, 'pgha_node_replication_lag_bytes', node1)).toBeUndefined();
    expect(valueOf(before, 'pgha_report_duration_seconds_count')).toBeGreaterThan(0);
    expect(valueOf(before, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    const transitionBefore = valueOf(before, 'pgha_node_last_transition_timestamp_seconds', node1)!;
    expect(transitionBefore).toBeLessThanOrEqual(Date.now() / 1000 + 1);

    await switchover();
    const after = await scrape();
    expect(valueOf(after, 'pgha_switchovers_total', { formation: 'default' })).toBe(1);
    expect(valueOf(after, 'pgha_failovers_total', { formation: 'default' })).toBe(0);
    expect(valueOf(after, 'pgha_node_goal_state', { ...node2, state: 'primary' })).toBe(1);
    expect(valueOf(after, 'pgha_node_goal_state', { ...node1, state: 'secondary' })).toBe(1);
    expect(valueOf(after, 'pgha_node_goal_state', { ...node1, state: 'primary' })).toBeUndefined();
    expect(valueOf(after, 'pgha_node_reported_state', { ...node1, state: 'secondary' })).toBe(1);
    expect(valueOf(after, 'pgha_node_replication_lag_bytes', node1)).toBeGreaterThanOrEqual(0);
    expect(valueOf(after, 'pgha_node_replication_lag_bytes', node2)).toBeUndefined();
    expect(valueOf(after, 'pgha_node_last_transition_timestamp_seconds', node1)).toBeGreaterThan(transitionBefore);
    expect(valueOf(after, 'pgha_report_duration_seconds_count')).toBeGreaterThan(valueOf(before, 'pgha_report_duration_seconds_count')!);
    const samples = after.samples.filter((s) => s.name.startsWith('pgha_node_')).length;
    console.log(`metrics: ${after.samples.length} samples (${samples} per-node ones for 2 nodes); switchovers_total ${valueOf(before, 'pgha_switchovers_total', { formation: 'default' })} → ${valueOf(after, 'pgha_switchovers_total', { formation: 'default' })}; p(report) count ${valueOf(after, 'pgha_report_duration_seconds_count')}`);
  });
});

describe('pgha show events --follow', () => {
  it('prints the last N events, then each new one as it happens, across a monitor restart, none twice and none missed', async () => {
    const logFile = join(monitor.dir, 'follow.stderr.log');
    const follow = startTracked(process.execPath, [PGHA_BIN, 'show', 'events', '--follow', '--count', '3', '--json'], { pipeStdout: true, logFile, env: withMonitorCredentials([], { PGHA_MONITOR: monitor.url }) });
    let out = '';
    follow.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
    const followed = (): EventRow[] => out.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as EventRow);

    const initial = await waitFor('the last 3 events', () => followed().length >= 3 && followed());
    expect(initial.map((e) => e.event_id)).toEqual((await storeEvents()).slice(-3).map((e) => e.event_id));
    const firstId = initial[0]!.event_id;
    const allSinceStart = async () => (await storeEvents()).filter((e) => e.event_id >= firstId).map((e) => e.event_id);

    // A switchover while it follows: its events appear as the monitor writes them.
    const switching = switchover();
    const drain = await waitFor('the switchover\'s first events on stdout', () => followed().find((e) => e.rule === 'perform-switchover' && e.new_goal_state === 'draining'), { timeoutMs: 30_000 });
    expect(drain.node_name).toBe('node2');
    await switching;
    await waitFor('every event of the switchover on stdout', async () => JSON.stringify(followed().map((e) => e.event_id)) === JSON.stringify(await allSinceStart()), { timeoutMs: 30_000, intervalMs: 250 });
    expect(followed().some((e) => e.rule === 'perform-switchover' && e.new_goal_state === 'prepare_promotion' && e.node_name === 'node1')).toBe(true);

    // The monitor restarts: the follower connects again with Last-Event-ID.
    monitorProc.kill('SIGTERM');
    await monitorProc;
    monitorProc = startPgha(['monitor', 'run', '--pgdata', monitor.pgdata], { logFile: join(monitor.dir, 'monitor.log') });
    await waitFor('the monitor again', async () => (await monitorFetch(`${monitor.url}/health`).catch(() => undefined))?.ok, { timeoutMs: 60_000 });
    await settled();
    const standby = (await showState(monitor.url)).find((r) => r.goal_state === 'secondary')!.name;
    expect((await runPgha(['maintenance', 'enable', '--name', standby, '--monitor', monitor.url])).exitCode).toBe(0);
    expect((await runPgha(['maintenance', 'disable', '--name', standby, '--monitor', monitor.url])).exitCode).toBe(0);
    await settled();
    await waitFor('the maintenance events after the restart on stdout', async () => JSON.stringify(followed().map((e) => e.event_id)) === JSON.stringify(await allSinceStart()), { timeoutMs: 30_000, intervalMs: 250 }).catch(async (err: Error) => {
      throw new Error(`${err.message}: printed ${JSON.stringify(followed().map((e) => e.event_id))}, in the store ${JSON.stringify(await allSinceStart())}; stderr: ${readFileSync(logFile, 'utf8')}`);
    });
    const ids = followed().map((e) => e.event_id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(followed().filter((e) => e.rule === 'enable-maintenance' || e.rule === 'disable-maintenance').map((e) => e.node_name)).toEqual([standby, standby]);
    const stderr = readFileSync(logFile, 'utf8');
    expect(stderr).toMatch(/connecting again/);
    expect(stderr).toMatch(/connected to the monitor again, following events after \d+/);

    // The restart did not reset the counters counted from the events.
    expect(valueOf(await scrape(), 'pgha_switchovers_total', { formation: 'default' })).toBe(2);

    follow.kill('SIGINT');
    const ended = await follow;
    expect(ended.exitCode).toBe(0);
    console.log(`show events --follow: ${ids.length} events printed (3 before it started), stderr:\n${stderr.trim()}`);
  });

  it('prints one line per event without --json: time, node, reported → goal, reason', async () => {
    const follow = startTracked(process.execPath, [PGHA_BIN, 'show', 'events', '--follow', '--count', '2'], { pipeStdout: true, env: withMonitorCredentials([], { PGHA_MONITOR: monitor.url }) });
    let out = '';
    follow.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
    const lines = await waitFor('two lines', () => out.split('\n').filter(Boolean).length >= 2 && out.split('\n').filter(Boolean));
    const last = (await storeEvents()).slice(-2);
    for (const [i, line] of lines.entries()) {
      const e = last[i]!;
      expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\s+0\/\d+ node\d\s+\S+ → \S+\s+.+$/);
      expect(line).toContain(`${e.reported_state} → ${e.new_goal_state}`);
      expect(line).toContain(e.reason);
    }
    follow.kill('SIGINT');
    expect((await follow).exitCode).toBe(0);
    console.log(`show events --follow (lines):\n${lines.join('\n')}`);
  });
});
