/**
 * A supervisor starts no Postgres it does not own (issue 13): the monitor and the keeper record
 * their data directory's database system identifier, and refuse a directory replaced by
 * another cluster rather than start it or write their settings into it. The scenario:
 * a running monitor whose directory is deleted and created again by `pgha monitor create` at
 * the same path stops, without rewriting the new monitor's pgha.conf, and the new monitor runs.
 * One monitor per data directory (`monitor.pid`); a monitor.json or keeper.json from before the
 * identifier is recorded at the first start; a keeper whose data directory is swapped for
 * another initdb's reports the refusal as its node's problem, once, and keeps running.
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import getPort from 'get-port';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureOwnedDir, initdb } from '@pgha/postgres';
import { keeperPaths } from '@pgha/keeper';
import { addNode, startMonitor, type TestMonitor, type TestNode } from './helpers/cluster.js';
import { expectOneLineError } from './helpers/cli.js';
import { controldataIdentifier } from './helpers/controldata.js';
import { killKeeper, killPostmaster, logOffset, logRecords, waitForLogMessage, waitGone } from './helpers/crash.js';
import { showState } from './helpers/formation.js';
import { monitorFetch, registerMonitor } from './helpers/monitor-access.js';
import { endAllProcesses, killPid, makeTestDir, postmasterPid, runPgha, startPgha, trackPgdata } from './helpers/processes.js';
import { waitFor } from './helpers/wait-for.js';

const readJson = (path: string): Record<string, unknown> => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
/** Messages of a pino log that match `pattern`. */
const logLines = (file: string, pattern: RegExp): string[] => logRecords(file).map((r) => r.msg).filter((m) => pattern.test(m));

/** Monitor A, whose data directory the first test replaces. */
let monitorA: TestMonitor;
/** Monitor B, created at A's path; the nodes of the keeper test register with it. */
let monitorB: TestMonitor;

beforeAll(async () => {
  monitorA = await startMonitor();
}, 120_000);

afterAll(async () => {
  await endAllProcesses();
});

describe('a monitor whose data directory was replaced', () => {
  it('stops, saying why, and never touches the new directory; the new monitor at the same path runs', async () => {
    const { pgdata, dir } = monitorA;
    const pghaDir = `${pgdata}.pgha`;
    const configA = readJson(join(pghaDir, 'monitor.json'));
    expect(configA.systemIdentifier).toBe(await controldataIdentifier(pgdata));
    const monitorLogA = join(dir, 'monitor.log');

    // The race, made certain: monitor A does not run while its directory is replaced.
    process.kill(monitorA.proc.pid!, 'SIGSTOP');
    let continued = false;
    try {
      const postmaster = killPostmaster(pgdata);
      expect(postmaster).toBeDefined();
      await waitGone(postmaster);
      rmSync(pgdata, { recursive: true, force: true, maxRetries: 5 });
      rmSync(pghaDir, { recursive: true, force: true });
      const pgPortB = await getPort({ host: '127.0.0.1', exclude: [Number(configA.pgPort)] });
      const httpPortB = await getPort({ host: '127.0.0.1', exclude: [pgPortB, Number(new URL(monitorA.url).port)] });
      const created = await runPgha(['monitor', 'create', '--pgdata', pgdata, '--pg-port', String(pgPortB), '--listen', `127.0.0.1:${httpPortB}`]);
      expect(created.exitCode, created.stderr).toBe(0);
      const configB = readJson(join(pghaDir, 'monitor.json'));
      expect(configB.systemIdentifier).toBe(await controldataIdentifier(pgdata));
      expect(configB.systemIdentifier).not.toBe(configA.systemIdentifier);

      process.kill(monitorA.proc.pid!, 'SIGCONT');
      continued = true;
      await waitFor('monitor A to exit', () => monitorA.proc.exitCode !== null, { timeoutMs: 30_000 });
      expect(monitorA.proc.exitCode).toBe(1);
      const [refusal] = logLines(monitorLogA, /^the monitor stops/);
      expect(refusal).toBeDefined();
      expect(refusal).toContain(`${pgdata} holds another cluster: its database system identifier is ${configB.systemIdentifier}, not ${configA.systemIdentifier} (this monitor's, recorded in ${join(pghaDir, 'monitor.json')})`);
      // Nothing of A's in the new directory: no Postgres started, pgha.conf keeps B's port.
      expect(postmasterPid(pgdata)).toBeUndefined();
      expect(readFileSync(join(pgdata, 'pgha.conf'), 'utf8')).toContain(`port = ${pgPortB}\n`);
      expect(readJson(join(pghaDir, 'monitor.json'))).toEqual(configB);

      // Monitor B, with its monitor.json as a pgha from before this change wrote it: no identifier.
      const { systemIdentifier, ...withoutIdentifier } = configB;
      writeFileSync(join(pghaDir, 'monitor.json'), `${JSON.stringify(withoutIdentifier, null, 2)}\n`);
      const url = `https://127.0.0.1:${httpPortB}`;
      const authTokenFile = join(pghaDir, 'auth-token');
      const caFile = join(pghaDir, 'tls', 'ca.crt');
      registerMonitor({ url, authTokenFile, caFile });
      const monitorLogB = join(dir, 'monitor-b.log');
      const proc = startPgha(['monitor', 'run', '--pgdata', pgdata], { logFile: monitorLogB });
      monitorB = { url, dir, pgdata, proc, authTokenFile, caFile };
      await waitFor('monitor B', async () => (await monitorFetch(`${url}/health`).catch(() => undefined))?.ok, { timeoutMs: 60_000 });
      expect(logLines(monitorLogB, new RegExp(`^recorded the data directory's database system identifier ${systemIdentifier} in ${join(pghaDir, 'monitor.json')}`))).toHaveLength(1);
      expect(readJson(join(pghaDir, 'monitor.json')).systemIdentifier).toBe(systemIdentifier);
      expect((await showState(url)).length).toBe(0);
    } finally {
      if (!continued) killPid(monitorA.proc.pid, 'SIGCONT');
    }
  });

  it('refuses a second monitor run on a running monitor\'s data directory, naming its pid, and the first goes on', async () => {
    const r = await runPgha(['monitor', 'run', '--pgdata', monitorB.pgdata]);
    expectOneLineError(r, new RegExp(`^pgha: error: a monitor already runs for ${monitorB.pgdata} \\(pid ${monitorB.proc.pid}, pid file ${monitorB.pgdata}\\.pgha/monitor\\.pid\\); one monitor runs per data directory`));
    expect(r.exitCode).toBe(1);
    expect(monitorB.proc.exitCode).toBeNull();
    expect((await monitorFetch(`${monitorB.url}/health`)).ok).toBe(true);
    expect(readFileSync(`${monitorB.pgdata}.pgha/monitor.pid`, 'utf8')).toBe(`${monitorB.proc.pid}\n`);
  });
});

describe('a monitor on its own data directory', () => {
  it('restarts its own Postgres when it dies, and a monitor run after a crash replaces the stale pid file', async () => {
    const killed = killPostmaster(monitorB.pgdata);
    expect(killed).toBeDefined();
    await waitFor("monitor B's Postgres restarted", () => {
      const pid = postmasterPid(monitorB.pgdata);
      return pid !== undefined && pid !== killed;
    }, { timeoutMs: 30_000 });
    await waitFor('monitor B serving from its store', async () => (await showState(monitorB.url).catch(() => undefined)) !== undefined, { timeoutMs: 30_000 });

    const crashed = monitorB.proc.pid!;
    killPid(crashed, 'SIGKILL');
    await waitGone(crashed);
    const logFile = join(monitorB.dir, 'monitor-b.log');
    const from = logOffset(logFile);
    monitorB.proc = startPgha(['monitor', 'run', '--pgdata', monitorB.pgdata], { logFile });
    await waitForLogMessage(logFile, new RegExp(`^replaced the stale pid file ${monitorB.pgdata}\\.pgha/monitor\\.pid: pid ${crashed} is not running`), from, { timeoutMs: 30_000 });
    await waitFor('monitor B again', async () => (await monitorFetch(`${monitorB.url}/health`).catch(() => undefined))?.ok, { timeoutMs: 60_000 });
    expect(readFileSync(`${monitorB.pgdata}.pgha/monitor.pid`, 'utf8')).toBe(`${monitorB.proc.pid}\n`);
  });
});

describe('a keeper whose data directory was replaced by another cluster', () => {
  let node: TestNode;

  it('records the identifier of its initdb, and at its first start when keeper.json has none', async () => {
    node = await addNode(monitorB, 'node1', { extraArgs: ['--no-ssl'] });
    await waitFor('node1 single', async () => (await showState(monitorB.url)).find((r) => r.name === 'node1' && r.reported_state === 'single' && r.goal_state === 'single'), { timeoutMs: 120_000, intervalMs: 250 });
    const configFile = keeperPaths(node.pgdata).config;
    const identifier = await controldataIdentifier(node.pgdata);
    expect(readJson(configFile).systemIdentifier).toBe(identifier);

    // A keeper.json from before this change: the next keeper run records the identifier.
    killKeeper(node);
    await waitGone(node.keeper.pid);
    const { systemIdentifier: _, ...withoutIdentifier } = readJson(configFile);
    writeFileSync(configFile, `${JSON.stringify(withoutIdentifier, null, 2)}\n`);
    const logFile = join(monitorB.dir, 'node1.keeper.log');
    const from = logOffset(logFile);
    node.keeper = startPgha(['keeper', 'run', '--pgdata', node.pgdata], { logFile });
    await waitForLogMessage(logFile, new RegExp(`^recorded the data directory's database system identifier ${identifier} in ${configFile} at the first start on this data directory`), from, { timeoutMs: 30_000 });
    expect(readJson(configFile)).toEqual({ ...withoutIdentifier, systemIdentifier: identifier });
  });

  it('refuses to start it or write into it, shows the problem in pgha show state, and logs it once while it goes on', async () => {
    const configFile = keeperPaths(node.pgdata).config;
    const own = String(readJson(configFile).systemIdentifier);
    const logFile = join(monitorB.dir, 'node1.keeper.log');
    const from = logOffset(logFile);
    // Another cluster, made aside, then swapped in under the running postmaster (which keeps
    // its renamed directory) before that postmaster is killed: the keeper's next start of
    // Postgres at the path meets the other cluster.
    const other = join(makeTestDir(), 'pgdata');
    trackPgdata(other);
    ensureOwnedDir(other);
    await initdb(other);
    const theirs = await controldataIdentifier(other);
    const old = `${node.pgdata}.old`;
    trackPgdata(old);
    renameSync(node.pgdata, old);
    renameSync(other, node.pgdata);
    const postmaster = killPostmaster(old);
    expect(postmaster).toBeDefined();
    await waitGone(postmaster);

    const expected = `refusing to start Postgres: ${node.pgdata} holds another cluster: its database system identifier is ${theirs}, not ${own} (node ${readJson(configFile).nodeId} "node1"'s, recorded in ${configFile})`;
    const row = await waitFor('the refusal as node1\'s problem', async () => (await showState(monitorB.url)).find((r) => r.name === 'node1' && r.problem?.startsWith(expected)), { timeoutMs: 30_000, intervalMs: 250 });
    expect(row.problem).toContain("put the node's own data directory back");
    const show = await runPgha(['show', 'state', '--monitor', monitorB.url]);
    expect(show.stdout).toContain(`holds another cluster: its database system identifier is ${theirs}`);

    // It goes on reporting, and the refusal is not logged at every report.
    const reports = async (): Promise<number> => {
      const text = await (await fetch(`${node.httpUrl}/metrics`)).text();
      return Number(/^pgha_monitor_report_duration_seconds_count(?:\{[^}]*\})? (\d+)/m.exec(text)?.[1] ?? Number.NaN);
    };
    const refusals = (): number => logLines(logFile, /refusing to start Postgres/).length;
    // The step that keeps failing becomes a problem of its own after STUCK_GRACE_MS (5 s),
    // logged once too; from then on, nothing about the refusal may be logged again.
    await waitForLogMessage(logFile, /^problem: keeping single fails: refusing to start Postgres/, from, { timeoutMs: 30_000 });
    const before = { reports: await reports(), refusals: refusals() };
    expect(before.refusals).toBeGreaterThanOrEqual(1);
    await waitFor('10 more reports of node1', async () => (await reports()) >= before.reports + 10, { timeoutMs: 30_000, intervalMs: 250 });
    expect(refusals()).toBe(before.refusals);
    expect(logLines(logFile, /^refusing to start Postgres/)).toHaveLength(1);
    expect(node.keeper.exitCode).toBeNull();

    // Nothing started or written in the other cluster's directory.
    expect(postmasterPid(node.pgdata)).toBeUndefined();
    expect(existsSync(join(node.pgdata, 'pgha.conf'))).toBe(false);
    expect(readFileSync(join(node.pgdata, 'postgresql.conf'), 'utf8')).not.toContain('pgha.conf');
    expect(await controldataIdentifier(node.pgdata)).toBe(theirs);
  });
});
