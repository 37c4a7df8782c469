/**
 * Several monitors for keepers and commands, on loopback, with a real monitor, real keepers
 * and Postgres: keepers given `--monitor DEAD,REAL` (a port where nothing listens first) build a
 * formation and switch over with `PGHA_MONITOR=DEAD,REAL`; a command given only dead monitors
 * fails with one line naming each; and a keeper whose first monitor starts answering an old
 * goal (an HTTPS stub in front of the real monitor that replays the node's first goal, as a
 * monitor lagging behind its store would) ignores it, says so once, and goes on with the real
 * monitor: it is never driven backwards.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import getPort from 'get-port';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeeperConfigSchema, KeeperStateSchema, keeperPaths } from '@pgha/keeper';
import type { NodeGoal, NodeStateRow } from '@pgha/shared';
import { addNode, startMonitor, type TestMonitor, type TestNode } from './helpers/cluster.js';
import { expectOneLineError, runPghaOk } from './helpers/cli.js';
import { logMessages, logOffset, waitForLogMessage } from './helpers/crash.js';
import { isPrimaryAndSecondaries, showState } from './helpers/formation.js';
import { monitorFetch } from './helpers/monitor-access.js';
import { endAllProcesses, runPgha } from './helpers/processes.js';
import { waitFor } from './helpers/wait-for.js';

let monitor: TestMonitor;
const stubs: Server[] = [];

/** `https://127.0.0.1:PORT` where nothing listens. */
async function deadUrl(): Promise<string> {
  return `https://127.0.0.1:${await getPort({ host: '127.0.0.1' })}`;
}

const keeperLog = (node: TestNode): string => join(monitor.dir, `${node.name}.keeper.log`);
const keeperState = (node: TestNode) => KeeperStateSchema.parse(JSON.parse(readFileSync(keeperPaths(node.pgdata).state, 'utf8')));

/**
 * An HTTPS stub monitor in front of `monitor`, with its certificate (so keepers trust it): it
 * passes every request on and records each node's first goal answered; once `stale` is set,
 * it answers a node's reports and goal polls with that first goal instead.
 */
async function startStub(): Promise<{ url: string; firstGoals: Map<number, NodeGoal>; setStale: () => void; staleAnswers: () => number }> {
  const tls = `${monitor.pgdata}.pgha/tls`;
  const firstGoals = new Map<number, NodeGoal>();
  let stale = false;
  let staleAnswers = 0;
  const server = createServer({ cert: readFileSync(join(tls, 'server.crt')), key: readFileSync(join(tls, 'server.key')) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const nodeId = Number(/^\/v1\/nodes\/(\d+)\/(?:report|goal)/.exec(req.url ?? '')?.[1] ?? NaN);
        const first = firstGoals.get(nodeId);
        if (stale && first) {
          staleAnswers++;
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(first));
          return;
        }
        const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
        const body = chunks.length > 0 ? Buffer.concat(chunks).toString('utf8') : undefined;
        try {
          const answer = await monitorFetch(`${monitor.url}${req.url}`, { method: req.method!, token, ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/json' } }) });
          const text = await answer.text();
          if (answer.ok && Number.isInteger(nodeId) && !firstGoals.has(nodeId)) firstGoals.set(nodeId, JSON.parse(text) as NodeGoal);
          res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' }).end(text);
        } catch {
          res.destroy();
        }
      })();
    });
  });
  stubs.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, firstGoals, setStale: () => (stale = true), staleAnswers: () => staleAnswers };
}

beforeAll(async () => {
  monitor = await startMonitor();
}, 120_000);

afterAll(async () => {
  for (const s of stubs) {
    s.closeAllConnections();
    s.close();
  }
  await endAllProcesses();
});

describe('several monitors', () => {
  it('a formation whose keepers and commands name a dead monitor first works end to end', async () => {
    const dead = await deadUrl();
    const monitors = [dead, monitor.url];
    const list = monitors.join(',');
    const node1 = await addNode(monitor, 'node1', { monitors });
    const node2 = await addNode(monitor, 'node2', { monitors });
    await waitFor('primary and secondary', async () => isPrimaryAndSecondaries(await showState(list)), { timeoutMs: 120_000, intervalMs: 250 });

    // keeper.json keeps the list, and the first monitor where an older pgha reads one.
    const config = KeeperConfigSchema.parse(JSON.parse(readFileSync(keeperPaths(node1.pgdata).config, 'utf8')));
    expect(config.monitorUrls).toEqual(monitors);
    expect(config.monitorUrl).toBe(dead);
    // Each keeper says which monitor it talks to, and why not the first.
    for (const node of [node1, node2]) {
      await waitForLogMessage(keeperLog(node), new RegExp(`^talking to the monitor at ${monitor.url} \\(${dead}: connect ECONNREFUSED`), 0, { timeoutMs: 10_000 });
    }

    const out = await runPghaOk(['perform', 'switchover', '--wait', '120'], { PGHA_MONITOR: list });
    expect(out).toMatch(/node2/);
    const rows = await showState(list);
    expect(rows.find((r) => r.name === 'node2')?.reported_state).toMatch(/primary/);
    await waitFor('node1 back as a secondary', async () => isPrimaryAndSecondaries(await showState(list)), { timeoutMs: 120_000, intervalMs: 250 });
    // Never cut off from "the monitor": a dead one in the list is not a lost monitor.
    for (const node of [node1, node2]) expect(logMessages(keeperLog(node)).filter((m) => /self-fenc/i.test(m))).toEqual([]);
    await runPghaOk(['show', 'events', '--count', '5', '--monitor', list]);
  });

  it('a command given only monitors that do not answer says in one line which it tried and why', async () => {
    const [a, b] = [await deadUrl(), await deadUrl()];
    const r = await runPgha(['show', 'state'], { PGHA_MONITOR: `${a},${b}` });
    expectOneLineError(r, new RegExp(`^pgha: error: no monitor answered: ${a} \\(connect ECONNREFUSED [^)]+\\), ${b} \\(connect ECONNREFUSED [^)]+\\); check that \`pgha monitor run\` is running at one of them`));
    const bad = await runPgha(['show', 'state', '--monitor', `${monitor.url},not a url`]);
    expectOneLineError(bad, /invalid monitor URL "not a url" in ".*"; expected e\.g\. https:\/\/127\.0\.0\.1:8432, or several separated by commas/);
  });

  it('a keeper that hears an older goal than the one it applied ignores it, says so once, and goes on with the next monitor', async () => {
    const stub = await startStub();
    await runPghaOk(['create', 'formation', 'stale', '--monitor', monitor.url]);
    const node3 = await addNode(monitor, 'node3', { formation: 'stale', monitors: [stub.url, monitor.url] });
    const nodeId = KeeperConfigSchema.parse(JSON.parse(readFileSync(keeperPaths(node3.pgdata).config, 'utf8'))).nodeId;
    // Through the stub, node3 heard its first goal, then single with a later revision.
    const first = stub.firstGoals.get(nodeId);
    expect(first?.goalRevision).toMatch(/^\d+$/);
    await addNode(monitor, 'node4', { formation: 'stale' });
    const stateOf = async (): Promise<NodeStateRow[]> => JSON.parse(await runPghaOk(['show', 'state', '--json', '--formation', 'stale', '--monitor', monitor.url])) as NodeStateRow[];
    await waitFor('node3 primary, node4 secondary', async () => isPrimaryAndSecondaries(await stateOf()), { timeoutMs: 120_000, intervalMs: 250 });
    const applied = keeperState(node3).goalRevision!;
    expect(BigInt(applied)).toBeGreaterThan(BigInt(first!.goalRevision!));
    expect(keeperState(node3).currentState).toBe('primary');

    const from = logOffset(keeperLog(node3));
    stub.setStale();
    await waitForLogMessage(keeperLog(node3), new RegExp(`^ignoring a goal of revision ${first!.goalRevision} older than the applied ${applied} from ${stub.url}$`), from, { timeoutMs: 20_000 });
    await waitForLogMessage(keeperLog(node3), new RegExp(`^now talking to the monitor at ${monitor.url} instead of ${stub.url}$`), from, { timeoutMs: 20_000 });
    // It acted on nothing the stub said: still primary, as the monitor sees it too, and it
    // says it once however often the stub answered.
    await waitFor('a report answered by the real monitor after the stale one', async () => (await stateOf()).find((r) => r.name === 'node3')?.reported_state === 'primary' && logMessages(keeperLog(node3), from).some((m) => m.startsWith('now talking')), { timeoutMs: 10_000 });
    expect(stub.staleAnswers()).toBeGreaterThanOrEqual(1);
    expect(keeperState(node3)).toMatchObject({ currentState: 'primary', goalRevision: applied });
    const rows = await stateOf();
    expect(rows.find((r) => r.name === 'node3')).toMatchObject({ reported_state: 'primary', goal_state: 'primary' });
    const said = logMessages(keeperLog(node3), from);
    expect(said.filter((m) => m.startsWith('ignoring a goal'))).toHaveLength(1);
    expect(said.filter((m) => /^FSM transition|^Transition complete|^reached |self-fenc/i.test(m))).toEqual([]);
  });
});
