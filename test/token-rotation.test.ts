/**
 * Token rotation on real processes (issue 16 §3): `pgha monitor rotate-token [--viewer]` on a
 * monitor on its own Postgres and on three monitors sharing etcd, and `pgha keeper rotate-token`
 * on a running primary and standby: the old token is refused as soon as the command returns, the
 * new one works, the files stay 0600, the keepers go on reporting without a restart, and a
 * refused command changes nothing.
 */
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventRow, NodeStateRow } from '@pgha/shared';
import { addNode, addPrimaryAndStandby, startMonitor, type TestMonitor, type TestNode } from './helpers/cluster.js';
import { expectOneLineError, expectUsageError } from './helpers/cli.js';
import { startEtcdMonitors, type EtcdMonitors } from './helpers/etcd-monitors.js';
import { isPrimaryAndSecondaries, showState } from './helpers/formation.js';
import { monitorFetch, registerMonitor } from './helpers/monitor-access.js';
import { isProcessAlive } from '@pgha/postgres';
import { endAllProcesses, runPgha } from './helpers/processes.js';
import { waitFor } from './helpers/wait-for.js';

let monitor: TestMonitor;
let nodes: TestNode[];

const read = (path: string): string => readFileSync(path, 'utf8').trim();
const mode = (path: string): number => statSync(path).mode & 0o777;
const keeperJson = (n: TestNode): { nodeId: number; nodeToken: string } => JSON.parse(readFileSync(`${n.pgdata}.pgha/keeper.json`, 'utf8')) as { nodeId: number; nodeToken: string };
const viewerFile = (m: TestMonitor): string => join(`${m.pgdata}.pgha`, 'viewer-token');

/** The status of `GET url/path` with `token`. */
async function statusWith(url: string, path: string, token: string): Promise<number> {
  return (await monitorFetch(`${url}${path}`, { token })).status;
}

async function events(url: string): Promise<EventRow[]> {
  const r = await runPgha(['show', 'events', '--json', '--count', '200', '--monitor', url]);
  expect(r.exitCode, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as EventRow[];
}

/** Goal states by node name. */
const goals = (rows: readonly NodeStateRow[]): Record<string, string> => Object.fromEntries(rows.map((r) => [r.name, r.goal_state]));

beforeAll(async () => {
  monitor = await startMonitor();
  nodes = await addPrimaryAndStandby(monitor);
}, 300_000);

afterAll(async () => {
  await endAllProcesses();
});

describe('pgha monitor rotate-token (a monitor on its own Postgres)', () => {
  it('replaces the operator token: the old one is refused as soon as the command returns, the new one opens everything, the viewer is untouched', async () => {
    const old = read(monitor.authTokenFile);
    const viewer = read(viewerFile(monitor));
    const r = await runPgha(['monitor', 'rotate-token', '--pgdata', monitor.pgdata, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { role: string; tokenFile: string; store: string; monitorRunning: boolean; monitors: { url: string; oldTokenRefused: boolean; newTokenAccepted: boolean }[] };
    expect(out).toMatchObject({ role: 'operator', tokenFile: monitor.authTokenFile, store: 'postgres', monitorRunning: true });
    expect(out.monitors).toEqual([{ url: monitor.url, reachable: true, oldTokenRefused: true, newTokenAccepted: true }]);
    const fresh = read(monitor.authTokenFile);
    expect(fresh).not.toBe(old);
    expect(mode(monitor.authTokenFile)).toBe(0o600);
    expect(r.stdout + r.stderr).not.toContain(fresh);
    // At once, without polling: the old token is refused, the new one works, the viewer reads as before.
    expect(await statusWith(monitor.url, '/v1/formations/default/state', old)).toBe(401);
    expect(await statusWith(monitor.url, '/v1/formations/default/state', fresh)).toBe(200);
    expect(await statusWith(monitor.url, '/v1/formations/default/state', viewer)).toBe(200);
    registerMonitor({ url: monitor.url, authTokenFile: monitor.authTokenFile, caFile: monitor.caFile });
    // The CLI reads the file: it works as before; the formation did not notice.
    expect(isPrimaryAndSecondaries(await showState(monitor.url))).toBe(true);
    // The monitor's log says so without the token.
    const log = readFileSync(join(monitor.dir, 'monitor.log'), 'utf8');
    expect(log).toMatch(/the operator token was replaced/);
    expect(log).not.toContain(fresh);
    expect(log).not.toContain(old);
  });

  it('with --viewer replaces the viewer token: the old viewer token is refused, the operator token still works', async () => {
    const operator = read(monitor.authTokenFile);
    const old = read(viewerFile(monitor));
    const r = await runPgha(['monitor', 'rotate-token', '--pgdata', monitor.pgdata, '--viewer']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^viewer token replaced: the new one is in .*viewer-token \(0600\)\nthe old token is refused by https:/);
    const fresh = read(viewerFile(monitor));
    expect(fresh).not.toBe(old);
    expect(mode(viewerFile(monitor))).toBe(0o600);
    expect(await statusWith(monitor.url, '/v1/formations/default/state', old)).toBe(401);
    expect(await statusWith(monitor.url, '/v1/formations/default/state', fresh)).toBe(200);
    expect(await (await monitorFetch(`${monitor.url}/v1/session`, { token: fresh })).json()).toEqual({ role: 'viewer' });
    expect(await statusWith(monitor.url, '/v1/formations/default/state', operator)).toBe(200);
    expect(read(monitor.authTokenFile)).toBe(operator);
  });

  it('refuses bad input with one line, and changes nothing', async () => {
    const before = [read(monitor.authTokenFile), read(viewerFile(monitor))];
    expectOneLineError(await runPgha(['monitor', 'rotate-token', '--pgdata', join(monitor.dir, 'nosuch')]), /monitor configuration .* not found|create the monitor first/);
    expectUsageError(await runPgha(['monitor', 'rotate-token']), 'monitor rotate-token', /required option '--pgdata <dir>' not specified/);
    expectUsageError(await runPgha(['monitor', 'rotate-token', '--pgdata', monitor.pgdata, '--viewr']), 'monitor rotate-token', /unknown option '--viewr'/);
    // A token file others can read is refused before anything is written.
    chmodSync(monitor.authTokenFile, 0o644);
    try {
      expectOneLineError(await runPgha(['monitor', 'rotate-token', '--pgdata', monitor.pgdata]), /readable by others.*chmod 600/);
    } finally {
      chmodSync(monitor.authTokenFile, 0o600);
    }
    expect([read(monitor.authTokenFile), read(viewerFile(monitor))]).toEqual(before);
    expect(await statusWith(monitor.url, '/v1/formations/default/state', before[0]!)).toBe(200);
    expect(await statusWith(monitor.url, '/v1/formations/default/state', before[1]!)).toBe(200);
  });
});

describe('pgha keeper rotate-token', () => {
  it("replaces a standby's and the primary's node tokens: the old ones are refused, the keepers go on reporting without a restart, no goal changes", async () => {
    const goalsBefore = goals(await showState(monitor.url));
    const lastEvent = Math.max(...(await events(monitor.url)).map((e) => e.event_id));
    for (const node of [...nodes].reverse()) {
      const { nodeId, nodeToken: old } = keeperJson(node);
      const pid = node.keeper.pid;
      const r = await runPgha(['keeper', 'rotate-token', '--pgdata', node.pgdata, '--json']);
      expect(r.exitCode, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as { nodeId: number; name: string; keeperPid: number; monitors: unknown[] };
      expect(out).toMatchObject({ nodeId, name: node.name, keeperPid: pid, monitors: [{ url: monitor.url, reachable: true, oldTokenRefused: true, newTokenAccepted: true }] });
      const fresh = keeperJson(node).nodeToken;
      expect(fresh).not.toBe(old);
      expect(mode(`${node.pgdata}.pgha/keeper.json`)).toBe(0o600);
      expect(r.stdout).not.toContain(fresh);
      // At once: the old token opens neither of the node's routes.
      expect(await statusWith(monitor.url, `/v1/nodes/${nodeId}/goal`, old)).toBe(401);
      expect(await statusWith(monitor.url, `/v1/nodes/${nodeId}/goal`, fresh)).toBe(200);
      // The same keeper process reports with the new token.
      const log = join(monitor.dir, `${node.name}.keeper.log`);
      await waitFor(`${node.name}'s keeper to take the new token`, () => /reload: reports with the new node token from now on/.test(readFileSync(log, 'utf8')), { timeoutMs: 10_000 });
      expect(isProcessAlive(pid)).toBe(true);
      const since = Date.now();
      await waitFor(`${node.name} to report after the rotation`, async () => {
        const row = (await showState(monitor.url)).find((n) => n.name === node.name);
        return row !== undefined && row.last_report_ago_ms !== null && Date.now() - row.last_report_ago_ms > since && row.health === 'good';
      }, { timeoutMs: 10_000, intervalMs: 100 });
    }
    const after = await showState(monitor.url);
    expect(isPrimaryAndSecondaries(after)).toBe(true);
    expect(goals(after)).toEqual(goalsBefore);
    const newEvents = (await events(monitor.url)).filter((e) => e.event_id > lastEvent);
    // One event per rotation, and no goal changed.
    expect(newEvents.filter((e) => e.rule === 'node-token-rotated').map((e) => e.node_name).sort()).toEqual(['node1', 'node2']);
    expect(newEvents.filter((e) => e.old_goal_state !== e.new_goal_state)).toEqual([]);
    for (const node of nodes) expect(JSON.stringify(newEvents)).not.toContain(keeperJson(node).nodeToken);
  }, 120_000);

  it('a refused rotation changes nothing: a data directory without a node, and a node token the monitor no longer takes', async () => {
    expectOneLineError(await runPgha(['keeper', 'rotate-token', '--pgdata', join(monitor.dir, 'nosuch')]), /create the node first/);
    // A keeper.json whose token is not the node's (a stale copy): refused with 401, the file as it was.
    const node = nodes[1]!;
    const path = `${node.pgdata}.pgha/keeper.json`;
    const good = readFileSync(path, 'utf8');
    const stale = JSON.stringify({ ...JSON.parse(good), nodeToken: 'x'.repeat(43) });
    try {
      writeFileSync(path, stale, { mode: 0o600 });
      expectOneLineError(await runPgha(['keeper', 'rotate-token', '--pgdata', node.pgdata]), /the monitors refused the node token of keeper\.json: .*nothing changed/);
      expect(readFileSync(path, 'utf8')).toBe(stale);
    } finally {
      writeFileSync(path, good, { mode: 0o600 });
    }
    // The route refuses a weak new token with the field, and keeps the current one.
    const { nodeId, nodeToken } = keeperJson(node);
    const weak = await monitorFetch(`${monitor.url}/v1/nodes/${nodeId}/token`, { method: 'POST', token: nodeToken, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ nodeToken: 'short' }) });
    expect(weak.status).toBe(400);
    expect(await weak.json()).toMatchObject({ code: 'PGHA_ERR_VALIDATION', field: 'body.nodeToken' });
    // Another node's token does not rotate this one.
    const other = await monitorFetch(`${monitor.url}/v1/nodes/${nodeId}/token`, { method: 'POST', token: keeperJson(nodes[0]!).nodeToken, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ nodeToken: 'y'.repeat(43) }) });
    expect(other.status).toBe(403);
    expect(await statusWith(monitor.url, `/v1/nodes/${nodeId}/goal`, nodeToken)).toBe(200);
    expect(await statusWith(monitor.url, `/v1/nodes/${nodeId}/goal`, 'y'.repeat(43))).toBe(401);
  });
});

describe('rotation on monitors sharing etcd', () => {
  let g: EtcdMonitors;
  let node: TestNode;

  beforeAll(async () => {
    g = await startEtcdMonitors();
    node = await addNode(g.monitors[0]!, 'etcd-node1', { monitors: g.urls });
    await waitFor('the node on etcd to be single', async () => (await showState(g.urls[0]!)).some((r) => r.name === 'etcd-node1' && r.reported_state === 'single'), { timeoutMs: 120_000, intervalMs: 250 });
  }, 300_000);

  it('the old operator token is refused by every monitor as soon as the command returns; the new one opens each', async () => {
    const first = g.monitors[0]!;
    const old = read(first.authTokenFile);
    const r = await runPgha(['monitor', 'rotate-token', '--pgdata', first.pgdata, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { store: string; monitors: { url: string; oldTokenRefused: boolean }[] };
    expect(out.store).toBe('etcd');
    expect(out.monitors.map((m) => m.url).sort()).toEqual([...g.urls].sort());
    expect(out.monitors.every((m) => m.oldTokenRefused)).toBe(true);
    const fresh = read(first.authTokenFile);
    expect(mode(first.authTokenFile)).toBe(0o600);
    for (const url of g.urls) {
      expect(await statusWith(url, '/v1/formations/default/state', old), url).toBe(401);
      expect(await statusWith(url, '/v1/formations/default/state', fresh), url).toBe(200);
      registerMonitor({ url, authTokenFile: first.authTokenFile, caFile: first.caFile });
    }
  });

  it("a node's old token is refused by every monitor, whichever took the rotation, and its keeper goes on reporting", async () => {
    const { nodeId, nodeToken: old } = keeperJson(node);
    const r = await runPgha(['keeper', 'rotate-token', '--pgdata', node.pgdata]);
    expect(r.exitCode, r.stderr).toBe(0);
    const fresh = keeperJson(node).nodeToken;
    for (const url of g.urls) {
      expect(await statusWith(url, `/v1/nodes/${nodeId}/goal`, old), url).toBe(401);
      expect(await statusWith(url, `/v1/nodes/${nodeId}/goal`, fresh), url).toBe(200);
    }
    expect(isProcessAlive(node.keeper.pid)).toBe(true);
    const since = Date.now();
    await waitFor('the node to report with its new token', async () => {
      const row = (await showState(g.urls[0]!)).find((n) => n.name === 'etcd-node1');
      return row !== undefined && row.last_report_ago_ms !== null && Date.now() - row.last_report_ago_ms > since && row.goal_state === 'single';
    }, { timeoutMs: 10_000, intervalMs: 100 });
  }, 60_000);
});
