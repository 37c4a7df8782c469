/**
 * The keeper as a service, on a real two-node formation: `pgha keeper status` while it runs
 * and after `pgha keeper stop` (exit codes as `pg_ctl status`'s), the pid file refusing a
 * second `keeper run` and detected stale after a crash, `pgha show systemd` units checked by
 * `systemd-analyze verify`, `pgha keeper set on-role-change` + `pgha keeper reload` changing
 * the hook that the next role change (a switchover) runs, pretty logs on a terminal, and the
 * self-fence running the `demoted` hook only once Postgres has stopped.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keeperPaths } from '@pgha/keeper';
import { addNode, startMonitor, type TestMonitor, type TestNode } from './helpers/cluster.js';
import { expectOneLineError } from './helpers/cli.js';
import { killKeeper, killNode, logOffset, waitForLogMessage, waitGone } from './helpers/crash.js';
import { showState } from './helpers/formation.js';
import { PGHA_BIN, endAllProcesses, killPid, makeTestDir, postmasterPid, runPgha, startPgha, startTracked } from './helpers/processes.js';
import { waitFor } from './helpers/wait-for.js';

let monitor: TestMonitor;
let node1: TestNode;
let node2: TestNode;
/** Every hook run of both nodes appends one line here. */
let trace: string;
let hookScript: string;

/** The hook command of `tag` for the node of `pgdata`: it records the run, with whether Postgres ran at that moment. */
const hookCommand = (tag: string, node: { pgdata: string }): string => `PGDATA=${node.pgdata} TAG=${tag} sh ${hookScript}`;
const traceLines = (): string[] => (existsSync(trace) ? readFileSync(trace, 'utf8').trim().split('\n') : []);
const keeperLog = (node: TestNode): string => join(monitor.dir, `${node.name}.keeper.log`);
const pidFileOf = (node: TestNode): string => join(keeperPaths(node.pgdata).dir, 'keeper.pid');

interface StatusJson {
  keeper: { running: boolean; pid: number | null; stalePidFile: string | null };
  postgres: { running: boolean; pid: number | null; port: number | null };
  node: { name: string; reachedState: string | null; assignedState: string | null };
  onRoleChange: { command: string | null; timeoutMs: number };
}

async function status(node: TestNode): Promise<{ exitCode: number; json: StatusJson }> {
  const r = await runPgha(['keeper', 'status', '--pgdata', node.pgdata, '--json']);
  return { exitCode: r.exitCode, json: JSON.parse(r.stdout) as StatusJson };
}

async function states(): Promise<Record<string, string>> {
  return Object.fromEntries((await showState(monitor.url)).map((r) => [r.name, `${r.reported_state}/${r.goal_state}`]));
}

beforeAll(async () => {
  monitor = await startMonitor();
  trace = join(monitor.dir, 'hooks.trace');
  hookScript = join(monitor.dir, 'hook.sh');
  writeFileSync(hookScript, [
    'pid=$(head -1 "$PGDATA/postmaster.pid" 2>/dev/null)',
    'st=$( [ -n "$pid" ] && awk \'{print $3}\' "/proc/$pid/stat" 2>/dev/null )',
    'if [ -n "$st" ] && [ "$st" != Z ]; then pg=running; else pg=stopped; fi',
    `echo "$TAG $PGHA_NODE_NAME $PGHA_OLD_ROLE>$PGHA_NEW_ROLE state=$PGHA_STATE pg=$pg" >> ${trace}`,
    '',
  ].join('\n'));
  const node = (name: string) => {
    const pgdata = join(monitor.dir, name, 'pgdata');
    return { pgdata, extraArgs: ['--on-role-change', hookCommand('A', { pgdata })] };
  };
  node1 = await addNode(monitor, 'node1', node('node1'));
  await waitFor('node1 single', async () => (await states()).node1 === 'single/single', { timeoutMs: 120_000, intervalMs: 250 });
  node2 = await addNode(monitor, 'node2', node('node2'));
  await waitFor('primary and secondary', async () => {
    const s = await states();
    return s.node1 === 'primary/primary' && s.node2 === 'secondary/secondary';
  }, { timeoutMs: 180_000, intervalMs: 250 });
}, 400_000);

afterAll(async () => {
  await endAllProcesses();
});

describe('pgha keeper status, and the pid file', () => {
  it('says the keeper and its Postgres run, with their pids and the reached state; exit 0', async () => {
    const { exitCode, json } = await status(node1);
    expect(exitCode).toBe(0);
    expect(json.keeper).toEqual({ running: true, pid: node1.keeper.pid, stalePidFile: null });
    expect(json.postgres).toEqual({ running: true, pid: postmasterPid(node1.pgdata), port: node1.port });
    expect(json.node).toMatchObject({ name: 'node1', reachedState: 'primary', assignedState: 'primary' });
    expect(json.onRoleChange).toEqual({ command: hookCommand('A', node1), timeoutMs: 10_000 });
    const text = await runPgha(['keeper', 'status', '--pgdata', node1.pgdata]);
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toContain(`keeper:         running (pid ${node1.keeper.pid})`);
    expect(text.stdout).toMatch(/postgres:\s+running \(pid \d+, port \d+\)/);
    expect(text.stdout).toMatch(/state:\s+reached primary, assigned primary/);
    expect(readFileSync(pidFileOf(node1), 'utf8')).toBe(`${node1.keeper.pid}\n`);
    expect(statSync(pidFileOf(node1)).mode & 0o777).toBe(0o644);
    // The first role each keeper announced ran the hook given at create time.
    await waitFor('the first hooks', () => traceLines().length >= 2, { timeoutMs: 30_000 });
    expect(traceLines()).toEqual(expect.arrayContaining(['A node1 none>primary state=single pg=running', 'A node2 none>replica state=secondary pg=running']));
  });

  it('refuses a second keeper run on the same data directory, and the first one goes on', async () => {
    const r = await runPgha(['keeper', 'run', '--pgdata', node1.pgdata]);
    expectOneLineError(r, new RegExp(`^pgha: error: a keeper already runs for ${node1.pgdata} \\(pid ${node1.keeper.pid}, pid file .*keeper\\.pid\\); see it with: pgha keeper status`));
    expect(r.exitCode).toBe(1);
    expect((await status(node1)).json.keeper.pid).toBe(node1.keeper.pid);
    expect(readFileSync(pidFileOf(node1), 'utf8')).toBe(`${node1.keeper.pid}\n`);
  });

  it('says "no keeper" with exit 4 for a directory that is not a node', async () => {
    const r = await runPgha(['keeper', 'status', '--pgdata', join(makeTestDir(), 'nothing')]);
    expect(r.exitCode).toBe(4);
    expect(r.stderr).toMatch(/^pgha: error: keeper configuration not found at /);
  });
});

describe('pgha show systemd', () => {
  const verify = async (text: string, name: string): Promise<void> => {
    const file = join(makeTestDir(), name);
    writeFileSync(file, text);
    // systemd-analyze comes with Debian's systemd package (252 on this machine's image); it
    // prints a line for every key or value it ignores. Without it, the keys checked above stand.
    if (!existsSync('/usr/bin/systemd-analyze')) {
      console.log(`systemd-analyze not installed: ${name} checked by its keys only`);
      return;
    }
    const r = await runProgram('systemd-analyze', ['verify', file]);
    expect(r, `systemd-analyze verify ${file}`).toEqual({ exitCode: 0, output: '' });
  };

  it("prints a unit for a node's keeper that systemd-analyze verify accepts", async () => {
    const r = await runPgha(['show', 'systemd', '--pgdata', node1.pgdata]);
    expect(r.exitCode, r.stderr).toBe(0);
    const keys = unitKeys(r.stdout);
    // With the keeper's young generation capped and no optimizing compiler (service-command.ts), as `pgha up` runs it.
    expect(keys.ExecStart).toEqual([`${process.execPath} --max-semi-space-size=1 --no-opt ${PGHA_BIN} keeper run --pgdata ${node1.pgdata}`]);
    expect(keys).toMatchObject({
      After: ['network-online.target'],
      Wants: ['network-online.target'],
      Restart: ['always'],
      KillMode: ['process'],
      KillSignal: ['SIGTERM'],
      TimeoutStopSec: ['61'],
      ExecReload: ['/bin/kill -HUP $MAINPID'],
      Environment: ['PGHA_LOG_LEVEL=info'],
      User: ['root'],
      WantedBy: ['multi-user.target'],
    });
    expect(r.stdout).toContain('# Save as /etc/systemd/system/pgha-keeper-node1.service');
    await verify(r.stdout, 'pgha-keeper-node1.service');
  });

  it("prints the monitor's unit for the monitor's data directory, its reload a SIGHUP (the monitor reads its token files again)", async () => {
    const r = await runPgha(['show', 'systemd', '--pgdata', monitor.pgdata]);
    expect(r.exitCode, r.stderr).toBe(0);
    const keys = unitKeys(r.stdout);
    expect(keys.ExecStart).toEqual([`${process.execPath} --max-semi-space-size=16 ${PGHA_BIN} monitor run --pgdata ${monitor.pgdata}`]);
    expect(keys).toMatchObject({ Restart: ['always'], KillMode: ['process'], TimeoutStopSec: ['50'], After: ['network-online.target'] });
    expect(keys.ExecReload).toEqual(['/bin/kill -HUP $MAINPID']);
    await verify(r.stdout, 'pgha-monitor.service');
  });

  it('refuses a directory that is neither', async () => {
    expectOneLineError(await runPgha(['show', 'systemd', '--pgdata', join(makeTestDir(), 'x')]), /is neither a keeper's nor a monitor's data directory/);
  });
});

describe('pgha keeper set on-role-change and pgha keeper reload', () => {
  it('changes the hook of running keepers: the next role change (a switchover) runs the new command', async () => {
    for (const node of [node1, node2]) {
      const set = await runPgha(['keeper', 'set', 'on-role-change', hookCommand('B', node), '--pgdata', node.pgdata]);
      expect(set.exitCode, set.stderr).toBe(0);
      expect(set.stdout).toContain(`the running keeper (pid ${node.keeper.pid}) applies it on: pgha keeper reload --pgdata ${node.pgdata}`);
      expect(JSON.parse(readFileSync(keeperPaths(node.pgdata).config, 'utf8')).onRoleChange).toBe(hookCommand('B', node));
      expect(statSync(keeperPaths(node.pgdata).config).mode & 0o777).toBe(0o600);
      const from = logOffset(keeperLog(node));
      const reload = await runPgha(['keeper', 'reload', '--pgdata', node.pgdata]);
      expect(reload.exitCode, reload.stderr).toBe(0);
      expect(reload.stdout).toMatch(/^sent SIGHUP to the keeper \(pid \d+\)/);
      await waitForLogMessage(keeperLog(node), new RegExp(`^reload: onRoleChange changed from .*TAG=A.* to .*TAG=B`), from, { timeoutMs: 10_000 });
    }
    const before = traceLines().length;
    const r = await runPgha(['perform', 'switchover', '--monitor', monitor.url, '--wait', '120']);
    expect(r.exitCode, r.stderr).toBe(0);
    await waitFor('node2 primary, node1 secondary', async () => {
      const s = await states();
      return s.node2 === 'primary/primary' && s.node1 === 'secondary/secondary';
    }, { timeoutMs: 120_000, intervalMs: 250 });
    await waitFor('the hooks of the switchover', () => traceLines().slice(before).some((l) => l.startsWith('B node1') && l.includes('>replica')), { timeoutMs: 30_000 });
    const runs = traceLines().slice(before);
    expect(runs.every((l) => l.startsWith('B '))).toBe(true);
    expect(runs).toContain('B node2 replica>primary state=wait_primary pg=running');
    // The old primary: demoted (Postgres stopped), then a standby again.
    const old = runs.filter((l) => l.startsWith('B node1'));
    expect(old).toHaveLength(2);
    expect(old[0]).toMatch(/^B node1 primary>demoted state=(draining|demoted) pg=stopped$/);
    expect(old[1]).toBe('B node1 demoted>replica state=catchingup pg=running');
  });

  it('refuses, with a log line, a change that needs a restart, and keeps running as it was', async () => {
    const file = keeperPaths(node1.pgdata).config;
    const original = readFileSync(file, 'utf8');
    const from = logOffset(keeperLog(node1));
    try {
      writeFileSync(file, JSON.stringify({ ...JSON.parse(original), pgPort: node1.port + 1, onRoleChangeTimeoutMs: 7000 }, null, 2));
      expect((await runPgha(['keeper', 'reload', '--pgdata', node1.pgdata])).exitCode).toBe(0);
      await waitForLogMessage(keeperLog(node1), /^reload: refused to apply pgPort: a change there needs a restart of the keeper/, from, { timeoutMs: 10_000 });
      await waitForLogMessage(keeperLog(node1), /^reload: onRoleChangeTimeoutMs changed from \(none\) to 7000$/, from, { timeoutMs: 10_000 });
    } finally {
      writeFileSync(file, original, { mode: 0o600 });
    }
    expect((await status(node1)).json.postgres.port).toBe(node1.port);
  });
});

describe('pgha keeper stop', () => {
  it('stops the keeper and its Postgres, runs the "stopped" hook, removes the pid file; status then exits 3', async () => {
    const pid = node1.keeper.pid!;
    const postmaster = postmasterPid(node1.pgdata);
    const r = await runPgha(['keeper', 'stop', '--pgdata', node1.pgdata, '--wait', '90']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^keeper stopped \\(pid ${pid}\\) and Postgres stopped, in \\d+ (ms|s)`));
    await waitGone(pid);
    await waitGone(postmaster);
    expect(existsSync(pidFileOf(node1))).toBe(false);
    expect(traceLines()).toContain('B node1 replica>stopped state=secondary pg=stopped');
    const { exitCode, json } = await status(node1);
    expect(exitCode).toBe(3);
    expect(json.keeper).toEqual({ running: false, pid: null, stalePidFile: null });
    expect(json.postgres).toEqual({ running: false, pid: null, port: null });
    const text = await runPgha(['keeper', 'status', '--pgdata', node1.pgdata]);
    expect(text.stdout).toMatch(/keeper:\s+not running\n/);
    expect(text.stdout).toMatch(/postgres:\s+not running\n/);
    const again = await runPgha(['keeper', 'stop', '--pgdata', node1.pgdata]);
    expect(again).toMatchObject({ exitCode: 3, stderr: `pgha: no keeper runs for ${node1.pgdata}` });
    expect((await runPgha(['keeper', 'reload', '--pgdata', node1.pgdata])).exitCode).toBe(3);
  });

  it('detects a stale pid file (a pid that runs something else), and a keeper run replaces it', async () => {
    writeFileSync(pidFileOf(node1), `${process.pid}\n`);
    const { exitCode, json } = await status(node1);
    expect(exitCode).toBe(3);
    expect(json.keeper.running).toBe(false);
    expect(json.keeper.stalePidFile).toMatch(new RegExp(`^pid ${process.pid} runs something else`));
    // On a terminal the keeper logs in colour, pretty, not JSON.
    const screen = join(monitor.dir, 'node1.terminal.log');
    const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
    const onTerminal = startTracked('script', ['-qfec', [process.execPath, PGHA_BIN, 'keeper', 'run', '--pgdata', node1.pgdata].map(quote).join(' '), screen], { env: { TERM: 'xterm' } });
    const running = await waitFor('the keeper on a terminal', async () => {
      const s = await status(node1);
      return s.exitCode === 0 && s.json.postgres.running ? s.json : undefined;
    }, { timeoutMs: 60_000 });
    expect(running.keeper.pid).not.toBe(onTerminal.pid);
    const shown = await waitFor('the pretty start line', () => {
      const out = readFileSync(screen, 'utf8');
      return /\d\d:\d\d:\d\d\.\d{3}\S*\s+\S*INFO\S*.*keeper of node \d+ "node1" starting/.test(out) ? out : undefined;
    }, { timeoutMs: 30_000 });
    expect(shown).toContain('\u001b['); // colours
    expect(shown).toMatch(/WARN\S*.*replaced the stale pid file .*: pid \d+ runs something else/);
    expect(shown).not.toMatch(/^\{"level"/m);
    await waitFor('node1 secondary again', async () => (await states()).node1 === 'secondary/secondary', { timeoutMs: 120_000, intervalMs: 250 });
    const stop = await runPgha(['keeper', 'stop', '--pgdata', node1.pgdata, '--wait', '90']);
    expect(stop.exitCode, stop.stderr).toBe(0);
    await waitFor('script to end with its keeper', () => onTerminal.exitCode !== null, { timeoutMs: 30_000 });
  });

  it('after a keeper crash, the pid file is stale (its pid is gone) while Postgres runs on', async () => {
    node1.keeper = startPgha(['keeper', 'run', '--pgdata', node1.pgdata], { logFile: keeperLog(node1) });
    await waitFor('node1 secondary', async () => (await status(node1)).exitCode === 0 && (await states()).node1 === 'secondary/secondary', { timeoutMs: 120_000, intervalMs: 250 });
    const pid = node1.keeper.pid!;
    killKeeper(node1);
    await waitGone(pid);
    const { exitCode, json } = await status(node1);
    expect(exitCode).toBe(3);
    expect(json.keeper).toEqual({ running: false, pid, stalePidFile: `pid ${pid} is not running` });
    expect(json.postgres.running).toBe(true);
    node1.keeper = startPgha(['keeper', 'run', '--pgdata', node1.pgdata], { logFile: keeperLog(node1) });
    await waitFor('the restarted keeper', async () => (await status(node1)).json.keeper.pid === node1.keeper.pid, { timeoutMs: 30_000 });
    await waitForLogMessage(keeperLog(node1), /^replaced the stale pid file .*: pid \d+ is not running$/, 0, { timeoutMs: 10_000 });
    await waitFor('node1 secondary', async () => (await states()).node1 === 'secondary/secondary', { timeoutMs: 120_000, intervalMs: 250 });
  });
});

describe('the self-fence', () => {
  it('runs the "demoted" hook once Postgres has stopped, never before', async () => {
    const from = logOffset(keeperLog(node2));
    const before = traceLines().length;
    // Cut the primary off from everything: the monitor and the standby die.
    killPid(monitor.proc.pid, 'SIGKILL');
    killNode(node1);
    await waitForLogMessage(keeperLog(node2), /^Self-fenced: Postgres stopped after \d+ ms/, from, { timeoutMs: 30_000 });
    await waitFor('the demoted hook', () => traceLines().slice(before).some((l) => l.startsWith('B node2')), { timeoutMs: 30_000 });
    expect(traceLines().slice(before)).toEqual(['B node2 primary>demoted state=demote_timeout pg=stopped']);
    await waitForLogMessage(keeperLog(node2), /^role-change hook primary → demoted exited 0/, from, { timeoutMs: 10_000 });
  });
});

/** Runs a program to completion: exit code and stdout+stderr together. */
async function runProgram(file: string, args: string[]): Promise<{ exitCode: number; output: string }> {
  const { execa } = await import('execa');
  const r = await execa(file, args, { reject: false, all: true, timeout: 60_000 });
  return { exitCode: r.exitCode ?? -1, output: String(r.all ?? '').trim() };
}

/** The `Key=value` lines of a unit file, by key (comments and section headers left out). */
function unitKeys(text: string): Record<string, string[]> {
  const keys: Record<string, string[]> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) (keys[m[1]!] ??= []).push(m[2]!);
  }
  return keys;
}
