/**
 * The self-fence in the record, on loopback: a primary whose monitor and standby stop answering
 * (both SIGSTOPped: the keeper's reports get no answer, its standby no longer replies) fences
 * itself; its keeper is restarted while fenced and the monitor is still away; once the monitor
 * answers again, `pgha show events` holds exactly one `keeper-self-fenced` event for the fence,
 * saying when (the time the keeper's log gives), why, the state before, and how long the monitor
 * was unreachable; the keeper forgets the fence once recorded, and the formation recovers.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keeperPaths } from '@pgha/keeper';
import { addPrimaryAndStandby, startMonitor, type TestMonitor, type TestNode } from './helpers/cluster.js';
import { killKeeper, logOffset, logRecords, waitForLogMessage, waitGone, type LogRecord } from './helpers/crash.js';
import { isPrimaryAndSecondaries, showState } from './helpers/formation.js';
import { showEvents } from './helpers/history.js';
import { descendantPids, endAllProcesses, killPid, postmasterPid, runPgha, startPgha } from './helpers/processes.js';
import { waitFor } from './helpers/wait-for.js';

let monitor: TestMonitor;
let node1: TestNode;
let node2: TestNode;

const keeperLog = (node: TestNode): string => join(monitor.dir, `${node.name}.keeper.log`);

/** The first record of pino log `file` after byte `from` whose message starts with `prefix`. */
const logLine = (file: string, from: number, prefix: string): LogRecord | undefined => logRecords(file, from).find((r) => r.msg.startsWith(prefix));

/** A duration as formatDurationMs prints it (`2385 ms`, `12 s`, `1 min 5 s`), in ms (whole seconds are ±500 ms). */
function parseDuration(text: string): number {
  const m = /^(?:(\d+) min )?(\d+) (ms|s)$/.exec(text);
  if (!m) throw new Error(`not a duration: ${text}`);
  return Number(m[1] ?? 0) * 60_000 + Number(m[2]) * (m[3] === 'ms' ? 1 : 1000);
}

beforeAll(async () => {
  monitor = await startMonitor();
  [node1, node2] = await addPrimaryAndStandby(monitor);
}, 240_000);

afterAll(async () => {
  await endAllProcesses();
});

describe('the self-fence in the events', () => {
  it('is one keeper-self-fenced event, written once the monitor answers again, also when the keeper restarted while fenced', async () => {
    const rows = await showState(monitor.url);
    expect(rows.find((r) => r.name === 'node1')?.reported_state).toBe('primary');
    const nodeId = rows.find((r) => r.name === 'node1')!.node_id;
    const from = logOffset(keeperLog(node1));
    const paused: number[] = [];
    const pause = (pid: number | undefined): void => {
      if (pid === undefined) return;
      killPid(pid, 'SIGSTOP');
      paused.push(pid);
    };
    let pausedAtMs = 0;
    let monitorBackAtMs = 0;
    try {
      // The standby stops replying (keeper, postmaster and every backend, the WAL receiver
      // among them), then the monitor stops answering.
      const standbyPostmaster = postmasterPid(node2.pgdata);
      for (const pid of [node2.keeper.pid, standbyPostmaster, ...(standbyPostmaster ? descendantPids(standbyPostmaster) : [])]) pause(pid);
      pausedAtMs = Date.now();
      pause(monitor.proc.pid);
      await waitForLogMessage(keeperLog(node1), /^Self-fenced: Postgres stopped after \d+ ms/, from, { timeoutMs: 30_000 });
      expect(postmasterPid(node1.pgdata)).toBeUndefined();
      expect(JSON.parse(readFileSync(keeperPaths(node1.pgdata).state, 'utf8'))).toMatchObject({ currentState: 'demote_timeout', selfFence: { fromState: 'primary', postgresStopped: true } });

      // A keeper restarted while fenced, the monitor still away: it still has the fence to tell.
      const pid = node1.keeper.pid;
      killKeeper(node1);
      await waitGone(pid);
      const restartedAt = logOffset(keeperLog(node1));
      node1.keeper = startPgha(['keeper', 'run', '--pgdata', node1.pgdata], { logFile: keeperLog(node1) });
      await waitForLogMessage(keeperLog(node1), /^monitor unreachable/, restartedAt, { timeoutMs: 30_000 });

      killPid(monitor.proc.pid, 'SIGCONT');
      monitorBackAtMs = Date.now();
      await waitForLogMessage(keeperLog(node1), /^the monitor recorded the self-fence of /, from, { timeoutMs: 30_000 });
    } finally {
      for (const pid of paused) killPid(pid, 'SIGCONT');
    }
    await waitFor('primary and secondary again', async () => isPrimaryAndSecondaries(await showState(monitor.url)), { timeoutMs: 120_000, intervalMs: 250 });

    const fenced = logLine(keeperLog(node1), from, 'Self-fenced')!;
    const fencedAtMs = fenced.fencedAtMs as number;
    expect(fencedAtMs).toBeGreaterThan(pausedAtMs);
    const events = (await showEvents(monitor.url)).filter((e) => e.rule === 'keeper-self-fenced');
    expect(events).toHaveLength(1);
    const [event] = events;
    console.log(`[self-fence] the event: ${event!.reason}`);
    expect(event).toMatchObject({ node_id: nodeId, node_name: 'node1', reported_state: 'demote_timeout', rule: 'keeper-self-fenced' });
    const at = new Date(fencedAtMs).toISOString().replace('T', ' ').replace('Z', ' UTC');
    const m = new RegExp(
      `^node ${nodeId} "node1" fenced itself at ${at.replace(/\./g, '\\.')} \\(network partition: monitor last answered (\\d+) ms ago \\(networkPartitionTimeoutMs 1000 ms\\) and .*\\): ` +
        'it was primary and had not heard the monitor for (\\d+) ms; Postgres stopped; the monitor was unreachable for (.+)$',
    ).exec(event!.reason);
    expect(m, event!.reason).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(1000);
    expect(Number(m![2])).toBeGreaterThanOrEqual(Number(m![1]));
    // From the last answered report (sent before the pause) to the report that reached the
    // monitor when it came back (sent at most a report timeout, 1000 ms, before).
    const unreachableMs = parseDuration(m![3]!);
    expect(unreachableMs).toBeGreaterThanOrEqual(monitorBackAtMs - pausedAtMs - 1500);
    expect(unreachableMs).toBeLessThan(Date.now() - pausedAtMs + 2_500);
    // No fractional number anywhere in the record.
    expect(event!.reason).not.toMatch(/\d\.\d+ ms/);

    // Recorded: the keeper has forgotten it, and its reports since wrote nothing more.
    expect(JSON.parse(readFileSync(keeperPaths(node1.pgdata).state, 'utf8')).selfFence).toBeUndefined();
    const text = await runPgha(['show', 'events', '--monitor', monitor.url]);
    expect(text.stdout.split('\n').filter((l) => l.includes('fenced itself at'))).toHaveLength(1);
  });
});
