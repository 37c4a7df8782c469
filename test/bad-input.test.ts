/**
 * Bad input, each answered by a one-line error naming the problem and the fix, a non-zero
 * exit (or a 4xx), and nothing damaged: a monitor on real Postgres, and one node (in its own
 * formation) whose pgha files get damaged.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import getPort from 'get-port';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endAllProcesses, killPid, postmasterPid, runPgha, startPgha } from './helpers/processes.js';
import { queryNode } from './helpers/formation.js';
import { waitFor } from './helpers/wait-for.js';
import { addNode, startMonitor, type TestMonitor } from './helpers/cluster.js';
import { monitorFetch } from './helpers/monitor-access.js';
import { expectOneLineError, expectUsageError, runPghaOk, runPghaOnTerminal } from './helpers/cli.js';

let dir: string;
let monitorUrl: string;
let monitor: TestMonitor;

beforeAll(async () => {
  monitor = await startMonitor();
  dir = monitor.dir;
  monitorUrl = monitor.url;
}, 120_000);

afterAll(async () => {
  await endAllProcesses();
});

async function api(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: { message?: string; field?: string; code?: string } }> {
  const res = await monitorFetch(`${monitorUrl}${path}`, {
    method,
    ...(token === undefined ? {} : { token }),
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as { message?: string; field?: string } };
}


describe('keeper create with bad input', () => {
  it('refuses when the monitor is unreachable, leaving nothing that blocks a retry', async () => {
    const pgdata = join(dir, 'unreachable', 'pgdata');
    const deadPort = await getPort({ host: '127.0.0.1' });
    const r = await runPgha(['keeper', 'create', 'postgres', '--monitor', `http://127.0.0.1:${deadPort}`, '--pgdata', pgdata, '--pg-port', String(await getPort()), '--name', 'lonely']);
    expectOneLineError(r, /monitor at http:\/\/127\.0\.0\.1:\d+ is unreachable.*pgha monitor run/);
    expect(existsSync(`${pgdata}.pgha/keeper.json`)).toBe(false);
    expect(existsSync(join(pgdata, 'PG_VERSION'))).toBe(false);
  });

  it('refuses a --pgdata that is not empty and not a Postgres data directory, touching nothing', async () => {
    const pgdata = join(dir, 'notempty');
    mkdirSync(pgdata, { recursive: true });
    writeFileSync(join(pgdata, 'precious.txt'), 'keep me');
    const r = await runPgha(['keeper', 'create', 'postgres', '--monitor', monitorUrl, '--pgdata', pgdata, '--pg-port', String(await getPort()), '--name', 'n1']);
    expectOneLineError(r, /is not empty and is not a Postgres data directory; point --pgdata at an empty or new directory/);
    expect(existsSync(join(pgdata, 'precious.txt'))).toBe(true);
    const state = await api('GET', '/v1/formations/default/state');
    expect(state.body).toEqual([]);
  });

  it('refuses a port already in use', async () => {
    const port = await getPort({ host: '127.0.0.1' });
    const server: Server = createServer();
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
    try {
      const r = await runPgha(['keeper', 'create', 'postgres', '--monitor', monitorUrl, '--pgdata', join(dir, 'busy', 'pgdata'), '--pg-port', String(port), '--name', 'busy', '--hostname', '127.0.0.1']);
      expectOneLineError(r, new RegExp(`port ${port} is already in use on 127\\.0\\.0\\.1; choose another with --pg-port`));
    } finally {
      server.close();
    }
    expect((await api('GET', '/v1/formations/default/state')).body).toEqual([]);
  });

  it('refuses a node name already taken in the formation', async () => {
    const first = await api('POST', '/v1/formations/default/nodes', { name: 'taken', host: '127.0.0.1', port: 1 });
    expect(first.status).toBe(201);
    const r = await runPgha(['keeper', 'create', 'postgres', '--monitor', monitorUrl, '--pgdata', join(dir, 'taken', 'pgdata'), '--pg-port', String(await getPort()), '--name', 'taken', '--hostname', '127.0.0.1']);
    expectOneLineError(r, /node name "taken" is already taken in formation "default".*choose another --name/);
    expect(existsSync(join(dir, 'taken', 'pgdata.pgha', 'keeper.json'))).toBe(false);
  });

  it('prints the usage line for a missing argument', async () => {
    const r = await runPgha(['keeper', 'create', 'postgres', '--pgdata', join(dir, 'x')]);
    expectUsageError(r, 'keeper create', /required option '--pg-port <port>' not specified/);
    expect(existsSync(join(dir, 'x'))).toBe(false);
  });
});

describe('drop formation without confirmation', () => {
  it('drops nothing without --yes, nor on a terminal until the name is typed back', async () => {
    const monitor = ['--monitor', monitorUrl];
    const exists = async (): Promise<boolean> => (await runPgha(['show', 'settings', '--formation', 'scratch', ...monitor])).exitCode === 0;
    await runPghaOk(['create', 'formation', 'scratch', ...monitor]);

    const noYes = await runPgha(['drop', 'formation', 'scratch', ...monitor]);
    expectOneLineError(noYes, /^pgha: error: dropping formation "scratch" cannot be undone; add --yes to confirm: pgha drop formation scratch --yes$/);
    expect(noYes.exitCode).toBe(2);
    expect(await exists()).toBe(true);

    const wrong = await runPghaOnTerminal(['drop', 'formation', 'scratch', ...monitor], 'scrat\n');
    expect(wrong.output).toMatch(/Type "scratch" to go on: /);
    expect(wrong.output).toMatch(/pgha: error: dropping formation "scratch": not confirmed \("scrat" is not "scratch"\); nothing was changed/);
    expect(wrong.exitCode).toBe(2);
    expect(await exists()).toBe(true);

    const typed = await runPghaOnTerminal(['drop', 'formation', 'scratch', ...monitor], 'scratch\n');
    expect(typed.output).toMatch(/formation "scratch" dropped/);
    expect(typed.exitCode).toBe(0);
    expect(await exists()).toBe(false);
  });
});

describe('keeper run with corrupt files', () => {
  it('refuses to act on a missing, truncated or invalid keeper file, naming the file and the way out', async () => {
    const pgdata = join(dir, 'corrupt', 'pgdata');
    const missing = await runPgha(['keeper', 'run', '--pgdata', pgdata]);
    expectOneLineError(missing, /keeper configuration not found at .*corrupt\/pgdata\.pgha\/keeper\.json; create the node first with: pgha keeper create postgres/);

    mkdirSync(`${pgdata}.pgha`, { recursive: true });
    writeFileSync(`${pgdata}.pgha/keeper.json`, '{"version": 1, "monitorUrl": "http://127.0.0.1:1", "form');
    const truncated = await runPgha(['keeper', 'run', '--pgdata', pgdata]);
    expectOneLineError(truncated, /keeper configuration at .*keeper\.json is corrupt \(not valid JSON\)/);

    writeFileSync(`${pgdata}.pgha/keeper.json`, JSON.stringify({ version: 1, monitorUrl: 'http://127.0.0.1:1', formation: 'default', name: 'x', nodeId: -3 }));
    const invalid = await runPgha(['keeper', 'run', '--pgdata', pgdata]);
    expectOneLineError(invalid, /keeper configuration at .*keeper\.json is invalid: nodeId/);
    expect(existsSync(join(pgdata, 'PG_VERSION'))).toBe(false);
  });
});

/** `text` as a regular expression that matches it literally. */
const literally = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The ways a file gets damaged, as the file's new contents given its good contents (undefined:
 * removed), with what the error then says about the file.
 */
const DAMAGE: { name: string; contents: (good: string) => string | undefined; says: string }[] = [
  { name: 'missing', contents: () => undefined, says: 'not found at ' },
  { name: 'empty', contents: () => '', says: 'is empty \\(0 bytes\\)' },
  { name: 'truncated', contents: (good) => good.slice(0, good.length / 2), says: 'is corrupt \\(not valid JSON\\)' },
  { name: 'NUL-filled tail', contents: (good) => good.slice(0, good.length / 2).padEnd(good.length, '\0'), says: 'is corrupt \\(NUL bytes at offset \\d+: a torn write\\)' },
];

/** Writes `contents` to `path`, or removes it when undefined. */
function writeOrRemove(path: string, contents: string | undefined): void {
  if (contents === undefined) rmSync(path);
  else writeFileSync(path, contents);
}

describe('a node whose pgha files are damaged', () => {
  it('refuses to run it or create it again, naming the file and the way back, and its data stays', async () => {
    await runPghaOk(['create', 'formation', 'files', '--monitor', monitorUrl]);
    const node = await addNode(monitor, 'f1', { formation: 'files' });
    await queryNode(node.port, 'create table kept as select generate_series(1, 100) as x');
    const keeperLog = join(monitor.dir, 'f1.keeper.log');
    await waitFor('the keeper to run', () => existsSync(keeperLog) && readFileSync(keeperLog, 'utf8').includes('starting in state'));
    killPid(node.keeper.pid, 'SIGTERM');
    await node.keeper;
    await waitFor('the keeper to stop Postgres', () => postmasterPid(node.pgdata) === undefined);

    const files = { config: `${node.pgdata}.pgha/keeper.json`, state: `${node.pgdata}.pgha/state.json` };
    const good = { config: readFileSync(files.config, 'utf8'), state: readFileSync(files.state, 'utf8') };
    const pgControl = readFileSync(join(node.pgdata, 'global', 'pg_control'));
    const wrongSchema = {
      config: JSON.stringify({ ...JSON.parse(good.config), pgPort: 'five' }),
      state: JSON.stringify({ ...JSON.parse(good.state), currentState: 'bogus' }),
    };
    const otherOwner = {
      config: { contents: JSON.stringify({ ...JSON.parse(good.config), pgdata: '/elsewhere/pgdata' }), says: `is for data directory /elsewhere/pgdata, not ${literally(node.pgdata)}`, wayBack: 'if the data directory moved, set "pgdata" in that file to its new path' },
      state: { contents: JSON.stringify({ ...JSON.parse(good.state), nodeId: 999 }), says: 'is for node 999, not node \\d+ "f1" of keeper\\.json' },
    };
    const create = ['keeper', 'create', 'postgres', '--monitor', monitorUrl, '--formation', 'files', '--pgdata', node.pgdata, '--pg-port', String(node.port), '--name', 'f1', '--hostname', '127.0.0.1', '--auth', 'trust'];

    for (const file of ['config', 'state'] as const) {
      const what = file === 'config' ? 'keeper configuration' : 'keeper state file';
      const wayBack = file === 'config' ? 'restore it from a backup' : 'restore it from a backup, or write it back from the node\'s reported state in pgha show state';
      const cases = [
        ...DAMAGE.map((d) => ({ name: d.name, contents: d.contents(good[file]), says: d.says })),
        { name: 'of the wrong shape', contents: wrongSchema[file], says: `is invalid: ${file === 'config' ? 'pgPort' : 'currentState'}: ` },
        { name: 'of another owner', ...otherOwner[file] },
      ];
      for (const c of cases) {
        writeOrRemove(files[file], c.contents);
        const line = new RegExp(`^pgha: error: ${what} (at ${literally(files[file])} )?${c.says}.*${'wayBack' in c ? c.wayBack : wayBack}`);
        for (const args of [['keeper', 'run', '--pgdata', node.pgdata], create]) {
          const r = await runPgha(args);
          expectOneLineError(r, line);
          expect(r.stderr, `${file} ${c.name}: pgha ${args[1]}`).toContain(files[file]);
        }
        expect(postmasterPid(node.pgdata), `${file} ${c.name}: Postgres started`).toBeUndefined();
        expect(readFileSync(join(node.pgdata, 'global', 'pg_control')).equals(pgControl), `${file} ${c.name}: pg_control changed`).toBe(true);
      }
      writeFileSync(files[file], good[file]);
    }

    // Put back, the node runs on with its data.
    startPgha(['keeper', 'run', '--pgdata', node.pgdata], { logFile: keeperLog });
    const rows = await waitFor('the node to serve its table again', async () => {
      const r = await queryNode(node.port, 'select count(*)::int as n from kept').catch(() => undefined);
      return r?.[0]?.n;
    });
    expect(rows).toBe(100);
  });

  it('refuses to run the monitor with a damaged monitor.json, saying how to write it back', async () => {
    const file = `${monitor.pgdata}.pgha/monitor.json`;
    const good = readFileSync(file, 'utf8');
    const cases = [
      ...DAMAGE.map((d) => ({ name: d.name, contents: d.contents(good), says: d.says })),
      { name: 'of the wrong shape', contents: JSON.stringify({ ...JSON.parse(good), pgPort: 'five' }), says: 'is invalid: pgPort: ' },
    ];
    try {
      for (const c of cases) {
        writeOrRemove(file, c.contents);
        const r = await runPgha(['monitor', 'run', '--pgdata', monitor.pgdata]);
        expectOneLineError(r, new RegExp(`^pgha: error: monitor configuration (at ${literally(file)} )?${c.says}.*write it back as \\{"version":2,"pgdata":"${literally(monitor.pgdata)}",`));
      }
    } finally {
      writeFileSync(file, good);
    }
    expect((await monitorFetch(`${monitorUrl}/health`)).ok).toBe(true);
  });
});

describe('the monitor API with bad input', () => {
  it('answers 400 naming the field for a body of the wrong shape, and changes nothing', async () => {
    const before = (await api('GET', '/v1/formations/default/state')).body;
    const wrongType = await api('POST', '/v1/formations/default/nodes', { name: 'n', host: '127.0.0.1', port: 'five' });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.field).toBe('body.port');
    expect(wrongType.body.message).toMatch(/body\.port/);
    const missing = await api('POST', '/v1/formations/default/nodes', { host: '127.0.0.1', port: 5 });
    expect(missing.status).toBe(400);
    expect(missing.body.message).toBe('body.name is required');
    const extra = await api('POST', '/v1/formations/default/nodes', { name: 'n', host: '127.0.0.1', port: 5, superuser: true });
    expect(extra.status).toBe(400);
    expect(extra.body.message).toMatch(/unknown field.*superuser/);
    const notJson = await api('POST', '/v1/formations/default/nodes', '{"name": ');
    expect(notJson.status).toBe(400);
    // A registered node (no keeper behind it) reporting a bad LSN with its own token.
    const reg = await api('POST', '/v1/formations/default/nodes', { name: 'apionly', host: '127.0.0.9', port: 1 });
    expect(reg.status, JSON.stringify(reg.body)).toBe(201);
    const registered = reg.body as unknown as { nodeId: number; nodeToken: string };
    const badLsn = await api('POST', `/v1/nodes/${registered.nodeId}/report`, { reportedState: 'single', postgresRunning: true, isInRecovery: false, lsn: 'nope', timeline: 1, upstreamStreaming: false }, registered.nodeToken);
    expect(badLsn.status).toBe(400);
    expect(badLsn.body.field).toBe('body.lsn');
    // A parameter list checked once is taken as checked at the next reports (routes/nodes.ts,
    // reportBody): the rest of each body is still checked, and a wrong list is refused each time.
    const reportPath = `/v1/nodes/${registered.nodeId}/report`;
    const init = { reportedState: 'init', postgresRunning: false, isInRecovery: null, lsn: '0/0', timeline: 0, upstreamStreaming: false };
    const parameters = { pendingRestart: [], running: [{ name: 'Max_Connections', value: '100' }] };
    expect((await api('POST', reportPath, { ...init, parameters }, registered.nodeToken)).status).toBe(200);
    const badLsnAfter = await api('POST', reportPath, { ...init, lsn: 'nope', parameters }, registered.nodeToken);
    expect({ status: badLsnAfter.status, field: badLsnAfter.body.field }).toEqual({ status: 400, field: 'body.lsn' });
    const extraAfter = await api('POST', reportPath, { ...init, parameters, superuser: true }, registered.nodeToken);
    expect(extraAfter.status).toBe(400);
    expect(extraAfter.body.message).toMatch(/unknown field.*superuser/);
    const twice = { pendingRestart: [], running: [{ name: 'work_mem', value: '4MB' }, { name: 'WORK_MEM', value: '8MB' }] };
    for (const attempt of [1, 2]) {
      const refused = await api('POST', reportPath, { ...init, parameters: twice }, registered.nodeToken);
      expect({ attempt, status: refused.status, field: refused.body.field, message: refused.body.message }).toEqual({ attempt, status: 400, field: 'body.parameters.running', message: 'body.parameters.running: names a parameter twice' });
    }
    const after = (await api('GET', '/v1/formations/default/state')).body as unknown as { name: string }[];
    expect(after.filter((r) => r.name !== 'apionly')).toEqual(before);
  });

  it('answers 404 for an unknown formation, and 403 for a report to an unknown node id (no token opens it)', async () => {
    const registered = (await api('POST', '/v1/formations/default/nodes', { name: 'apionly2', host: '127.0.0.9', port: 2 })).body as { nodeId: number; nodeToken: string };
    const report = await api('POST', '/v1/nodes/999999/report', { reportedState: 'single', postgresRunning: true, isInRecovery: false, lsn: '0/0', timeline: 1, upstreamStreaming: false }, registered.nodeToken);
    expect(report.status).toBe(403);
    expect(report.body.code).toBe('PGHA_ERR_FORBIDDEN');
    expect((await api('GET', '/v1/nodes/999999/goal', undefined, registered.nodeToken)).status).toBe(403);
    expect((await api('GET', '/v1/formations/nosuch/state')).status).toBe(404);
  });

  it('answers 413 for a body over the size limit', async () => {
    const big = await api('POST', '/v1/formations/default/nodes', { name: 'n', host: 'x'.repeat(200_000), port: 5 });
    expect(big.status).toBe(413);
  });

  it('pgha show state says what is wrong when the monitor is unreachable or missing', async () => {
    const none = await runPgha(['show', 'state'], {});
    expectOneLineError(none, /no monitor given; pass --monitor URL\[,URL…\] or set PGHA_MONITOR/);
    const dead = await runPgha(['show', 'state', '--monitor', `http://127.0.0.1:${await getPort()}`]);
    expectOneLineError(dead, /is unreachable/);
  });
});
