/**
 * Who gets in, on a real monitor and two real nodes: the API answers only with the operator
 * token (or a node's own token, for its own node), only over HTTPS with the monitor's CA;
 * refusals are logged and written as security events; secrets live in 0600 files and never
 * show in `ps`, logs or events.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventRow } from '@pgha/shared';
import { addNode, startMonitor, type TestMonitor, type TestNode } from './helpers/cluster.js';
import { expectOneLineError } from './helpers/cli.js';
import { isPrimaryAndSecondaries, showState } from './helpers/formation.js';
import { monitorFetch } from './helpers/monitor-access.js';
import { endAllProcesses, runPgha } from './helpers/processes.js';
import { waitFor } from './helpers/wait-for.js';

let monitor: TestMonitor;
let nodes: TestNode[];

interface KeeperJson {
  nodeId: number;
  nodeToken: string;
  replicationPassword: string;
  monitorProbePassword: string;
}
const keeperJson = (n: TestNode): KeeperJson => JSON.parse(readFileSync(`${n.pgdata}.pgha/keeper.json`, 'utf8')) as KeeperJson;
const operatorToken = (): string => readFileSync(monitor.authTokenFile, 'utf8').trim();

const REPORT = { reportedState: 'secondary', postgresRunning: true, isInRecovery: true, lsn: '0/3000000', timeline: 1, upstreamStreaming: true };

async function events(): Promise<EventRow[]> {
  const r = await runPgha(['show', 'events', '--json', '--count', '200', '--monitor', monitor.url]);
  expect(r.exitCode, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as EventRow[];
}

function mode(path: string): string {
  return (statSync(path).mode & 0o777).toString(8);
}

beforeAll(async () => {
  monitor = await startMonitor();
  nodes = [await addNode(monitor, 'node1'), await addNode(monitor, 'node2')];
  await waitFor('one primary and one secondary', async () => isPrimaryAndSecondaries(await showState(monitor.url)), { timeoutMs: 120_000, intervalMs: 250 });
}, 300_000);

afterAll(async () => {
  await endAllProcesses();
});

describe('the monitor API', () => {
  it('answers GET /health without credentials, and reveals nothing there', async () => {
    const res = await monitorFetch(`${monitor.url}/health`, { token: '' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('serves the dashboard\'s files without credentials; they carry no data and set no cookie', async () => {
    for (const path of ['/ui', '/ui/app.js', '/ui/app.css']) {
      const res = await monitorFetch(`${monitor.url}${path}`, { token: '' });
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-security-policy'), path).toMatch(/default-src 'none'/);
      expect(res.headers.get('set-cookie'), path).toBeNull();
      const body = await res.text();
      expect(body, path).not.toMatch(/node1|node2|127\.0\.0\.1/);
      for (const secret of [operatorToken(), ...nodes.map((n) => keeperJson(n).nodeToken), keeperJson(nodes[0]!).replicationPassword]) expect(body, path).not.toContain(secret);
    }
  });

  it('refuses every other route without a token, or with a wrong one (401, JSON, WWW-Authenticate)', async () => {
    const routes: [string, string][] = [
      ['GET', '/v1/formations/default/state'],
      ['GET', '/v1/formations/default/events'],
      ['GET', '/v1/formations/default/events/stream'],
      ['GET', '/v1/formations'],
      ['GET', '/metrics'],
      ['GET', '/ui/other'],
      ['GET', '/v1/formations/default/uri'],
      ['GET', '/v1/formations/default/settings'],
      ['POST', '/v1/formations/default/switchover'],
      ['POST', '/v1/formations/default/nodes'],
      ['POST', '/v1/formations'],
      ['DELETE', '/v1/formations/default'],
      ['POST', `/v1/nodes/${keeperJson(nodes[0]!).nodeId}/report`],
      ['GET', `/v1/nodes/${keeperJson(nodes[0]!).nodeId}/goal`],
      ['GET', '/v1/no/such/route'],
    ];
    for (const [method, path] of routes) {
      for (const token of ['', 'x'.repeat(43), `${operatorToken()}x`]) {
        const res = await monitorFetch(`${monitor.url}${path}`, { method, token, ...(method === 'GET' ? {} : { headers: { 'content-type': 'application/json' }, body: '{}' }) });
        expect(res.status, `${method} ${path} with ${token ? 'a wrong' : 'no'} token`).toBe(401);
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
        const body = (await res.json()) as { code: string; message: string };
        expect(body.code).toBe('PGHA_ERR_UNAUTHENTICATED');
      }
    }
    // Nothing was switched over or dropped.
    expect(isPrimaryAndSecondaries(await showState(monitor.url))).toBe(true);
  });

  it('serves HTTPS only: a plain HTTP request gets no API answer', async () => {
    const { port } = new URL(monitor.url);
    const answer = await new Promise<string>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/v1/formations/default/state', timeout: 3000 }, (res) => resolve(`HTTP ${res.statusCode}`));
      req.on('error', (err) => resolve(`error ${err.message}`));
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.end();
    });
    expect(answer).not.toMatch(/HTTP 200/);
  });

  it('the CLI says what is missing: no token, a wrong token file, an untrusted certificate', async () => {
    const noToken = await runPgha(['show', 'state', '--monitor', monitor.url], { PGHA_AUTH_TOKEN_FILE: '', PGHA_AUTH_TOKEN: '' });
    expectOneLineError(noToken, /refused the credentials: authentication required.*--auth-token-file/);
    const noCa = await runPgha(['show', 'state', '--monitor', monitor.url], { PGHA_SSL_CA_FILE: '' });
    expectOneLineError(noCa, /certificate that is not trusted.*--ssl-ca-file/);
    const missing = await runPgha(['show', 'state', '--monitor', monitor.url, '--auth-token-file', join(monitor.dir, 'nosuch')]);
    expectOneLineError(missing, /auth token file .*nosuch not found/);
  });
});

describe('node tokens', () => {
  it('lets a keeper report only for its own node: node1 token for node2 is refused (403) and written as a security event', async () => {
    const [one, two] = nodes.map(keeperJson) as [KeeperJson, KeeperJson];
    const before = (await showState(monitor.url)).find((r) => r.node_id === two.nodeId)!;
    const res = await monitorFetch(`${monitor.url}/v1/nodes/${two.nodeId}/report`, { method: 'POST', token: one.nodeToken, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...REPORT, reportedState: 'primary', isInRecovery: false }) });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { code: string }).code).toBe('PGHA_ERR_FORBIDDEN');
    const after = (await showState(monitor.url)).find((r) => r.node_id === two.nodeId)!;
    expect(after.reported_state).toBe(before.reported_state);
    expect(after.goal_state).toBe(before.goal_state);
    const ev = (await events()).filter((e) => e.node_id === two.nodeId && /security/.test(e.reason));
    expect(ev.map((e) => e.reason)).toContainEqual(expect.stringMatching(new RegExp(`node ${one.nodeId}'s keeper presented its credentials for node ${two.nodeId}`)));
    const log = readFileSync(join(monitor.dir, 'monitor.log'), 'utf8');
    expect(log).toMatch(/"security":true.*"kind":"other-node"/);
  });

  it('refuses the operator token on a keeper route, and a node token on an operator route (403)', async () => {
    const one = keeperJson(nodes[0]!);
    const asOperator = await monitorFetch(`${monitor.url}/v1/nodes/${one.nodeId}/report`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(REPORT) });
    expect(asOperator.status).toBe(403);
    const asNode = await monitorFetch(`${monitor.url}/v1/formations/default/switchover`, { method: 'POST', token: one.nodeToken, headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(asNode.status).toBe(403);
    expect(isPrimaryAndSecondaries(await showState(monitor.url))).toBe(true);
  });

  it('keeps secrets in 0600 files, and out of ps, logs and events', async () => {
    expect(mode(monitor.authTokenFile)).toBe('600');
    expect(mode(join(`${monitor.pgdata}.pgha`, 'tls', 'ca.key'))).toBe('600');
    expect(mode(join(`${monitor.pgdata}.pgha`, 'tls', 'server.key'))).toBe('600');
    expect(mode(monitor.caFile)).toBe('644');
    for (const n of nodes) {
      expect(mode(`${n.pgdata}.pgha/keeper.json`)).toBe('600');
      expect(mode(`${n.pgdata}.pgha/postgres-tls/server.key`)).toBe('600');
    }
    const secrets = [operatorToken(), ...nodes.flatMap((n) => [keeperJson(n).nodeToken, keeperJson(n).replicationPassword, keeperJson(n).monitorProbePassword])];
    const ps = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
    const logs = [readFileSync(join(monitor.dir, 'monitor.log'), 'utf8'), ...nodes.map((n) => readFileSync(join(monitor.dir, `${n.name}.keeper.log`), 'utf8'))].join('\n');
    const eventText = JSON.stringify(await events());
    for (const s of secrets) {
      expect(ps.includes(s), 'a secret in ps output').toBe(false);
      expect(logs.includes(s), 'a secret in a log').toBe(false);
      expect(eventText.includes(s), 'a secret in the events').toBe(false);
    }
  });

  it('a viewer token (viewer-token, 0600) reads what an operator reads and changes nothing: 403 with a one-line reason', async () => {
    const viewerFile = join(`${monitor.pgdata}.pgha`, 'viewer-token');
    expect(statSync(viewerFile).mode & 0o777).toBe(0o600);
    const viewer = readFileSync(viewerFile, 'utf8').trim();
    expect(viewer).not.toBe(operatorToken());
    const asViewer = { PGHA_AUTH_TOKEN_FILE: viewerFile };
    // Reads: show state, settings, events, metrics, the session says "viewer".
    const state = await runPgha(['show', 'state', '--json', '--monitor', monitor.url], asViewer);
    expect(state.exitCode, state.stderr).toBe(0);
    expect((JSON.parse(state.stdout) as unknown[]).length).toBe(2);
    expect((await runPgha(['show', 'settings', '--monitor', monitor.url], asViewer)).exitCode).toBe(0);
    expect((await runPgha(['show', 'events', '--monitor', monitor.url], asViewer)).exitCode).toBe(0);
    expect((await monitorFetch(`${monitor.url}/metrics`, { token: viewer })).status).toBe(200);
    expect(await (await monitorFetch(`${monitor.url}/v1/session`, { token: viewer })).json()).toEqual({ role: 'viewer' });
    expect(await (await monitorFetch(`${monitor.url}/v1/session`)).json()).toEqual({ role: 'operator' });
    // Changes: refused, nothing done.
    const changes = async (): Promise<number> => (await events()).filter((e) => e.rule !== 'security').length;
    const before = await changes();
    const sw = await runPgha(['perform', 'switchover', '--monitor', monitor.url], asViewer);
    expectOneLineError(sw, /the viewer token only reads: POST \/v1\/formations\/:formation\/switchover changes the formation; use the operator token/);
    expectOneLineError(await runPgha(['set', 'formation', 'number-sync-standbys', '1', '--monitor', monitor.url], asViewer), /the viewer token only reads/);
    expectOneLineError(await runPgha(['maintenance', 'enable', '--name', 'node2', '--monitor', monitor.url], asViewer), /the viewer token only reads/);
    const report = await monitorFetch(`${monitor.url}/v1/nodes/${keeperJson(nodes[0]!).nodeId}/report`, { method: 'POST', token: viewer, headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(report.status).toBe(403);
    expect(isPrimaryAndSecondaries(await showState(monitor.url))).toBe(true);
    expect(await changes()).toBe(before);
  });

  it("refuses a replaced (old) node token once the node registers again, and says so in the node's events", async () => {
    // Registering node2 again (what `pgha keeper create` re-run does) issues a new token.
    const two = keeperJson(nodes[1]!);
    const old = two.nodeToken;
    const again = await monitorFetch(`${monitor.url}/v1/formations/default/nodes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'node2', host: nodes[1]!.host, port: nodes[1]!.port }),
    });
    expect(again.status).toBe(200);
    const fresh = ((await again.json()) as { nodeToken: string }).nodeToken;
    expect(fresh).not.toBe(old);
    const stale = await monitorFetch(`${monitor.url}/v1/nodes/${two.nodeId}/goal`, { token: old });
    expect(stale.status).toBe(401);
    const ok = await monitorFetch(`${monitor.url}/v1/nodes/${two.nodeId}/goal`, { token: fresh });
    expect(ok.status).toBe(200);
    await waitFor('the security event of the old token', async () => (await events()).some((e) => e.node_id === two.nodeId && /invalid credentials for node/.test(e.reason)));
  });
});
