/**
 * A switchover on three nodes (`ANY 1` of two quorum standbys) on real Postgres: the candidate
 * is promoted once it reports the old primary's shutdown checkpoint, and when it cannot (its
 * WAL receiver hangs, so the other standby alone acknowledged the last commits), an election
 * among LSNs reported after the old primary stopped decides: nothing acknowledged is lost
 * (docs/timeouts.md, "Switchover").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addNode, startMonitor, uriOf, type TestMonitor, type TestNode } from './helpers/cluster.js';
import { startEtcdMonitors, waitForLeader } from './helpers/etcd-monitors.js';
import { connectWritable, isPrimaryAndSecondaries, queryNode, showState, Writer } from './helpers/formation.js';
import { endAllProcesses, killPid, runPgha } from './helpers/processes.js';
import { waitFor } from './helpers/wait-for.js';

let monitor: TestMonitor;
/** Every monitor's URL: one, or three on etcd. */
let monitorUrls: string[];
let nodes: TestNode[];
const env = (): Record<string, string> => ({ PGHA_MONITOR: monitorUrls.join(',') });

interface EventRow {
  node_name: string;
  new_goal_state: string;
  rule: string;
  reason: string;
}

async function eventsSince(count: number): Promise<EventRow[]> {
  return (JSON.parse((await runPgha(['show', 'events', '--json', '--count', String(count)], env())).stdout) as EventRow[]);
}

async function settled(): Promise<void> {
  await waitFor('one primary and two secondaries', async () => isPrimaryAndSecondaries(await showState(monitor.url)), { timeoutMs: 120_000, intervalMs: 250 });
}

/** The node that is the primary (`primary` or `wait_primary`, reached), once there is one. */
async function primaryNode(): Promise<TestNode> {
  const row = await waitFor('a primary', async () => (await showState(monitor.url)).find((r) => /^(wait_)?primary$/.test(r.goal_state) && r.reported_state === r.goal_state), { timeoutMs: 60_000 });
  return nodes.find((n) => n.name === row.name)!;
}

/** Writes through the formation while `during` runs; returns the acknowledged ids missing on the primary afterwards. */
async function writesAround(table: string, during: () => Promise<void>): Promise<{ missing: number[]; acks: number; gapMs: number }> {
  const client = await connectWritable(uriOf(nodes));
  await client!.query(`create table ${table} (id bigint primary key)`);
  await client!.end();
  const writer = new Writer(uriOf(nodes), table);
  writer.start();
  const startedAt = performance.now();
  try {
    await waitFor('writes before', () => writer.acks.length >= 30);
    await during();
    const primary = await primaryNode();
    await waitFor('writes on the new primary', () => writer.acks.filter((a) => a.port === primary.port).length >= 20, { timeoutMs: 60_000 });
  } finally {
    await writer.stop();
  }
  const primary = await primaryNode();
  const ids = new Set((await queryNode<{ id: string }>(primary.port, `select id from ${table}`)).map((x) => Number(x.id)));
  return { missing: writer.acks.filter((a) => !ids.has(a.id)).map((a) => a.id), acks: writer.acks.length, gapMs: writer.maxGapMs(startedAt) };
}

/** Starts one monitor on its own Postgres, or three on etcd, and three nodes of candidate priority 50. */
async function setUp(onEtcd: boolean): Promise<void> {
  if (onEtcd) {
    const group = await startEtcdMonitors();
    monitor = group.monitors[0]!;
    monitorUrls = group.urls;
  } else {
    monitor = await startMonitor();
    monitorUrls = [monitor.url];
  }
  nodes = [];
  for (const name of ['a', 'b', 'c']) nodes.push(await addNode(monitor, name, { candidatePriority: 50, monitors: monitorUrls }));
  if (onEtcd) await waitForLeader(monitorUrls);
  await settled();
}

/** A switchover to a standby that streams: promoted on the old primary's shutdown checkpoint. */
async function provenSwitchover(label: string): Promise<void> {
  const old = await primaryNode();
  const candidate = nodes.find((n) => n !== old)!;
  const result = await writesAround('proven', async () => {
    const r = await runPgha(['perform', 'promotion', '--name', candidate.name], env());
    expect(r.exitCode, r.stderr).toBe(0);
  });
  console.log(`[switchover, 3 nodes, ${label}] ${result.acks} writes acknowledged, longest gap ${result.gapMs.toFixed(0)} ms`);
  expect(result.missing).toEqual([]);
  expect((await primaryNode()).name).toBe(candidate.name);
  const events = await eventsSince(30);
  expect(events.some((e) => e.node_name === candidate.name && e.new_goal_state === 'stop_replication' && e.rule === 'promote-candidate')).toBe(true);
  expect(events.filter((e) => e.rule === 'switchover-election')).toEqual([]);
  await settled();
}

describe('a switchover on three nodes, one monitor', () => {
  beforeAll(() => setUp(false), 300_000);
  afterAll(() => endAllProcesses());

  it('promotes the candidate on the old primary shutdown checkpoint, without an election, losing nothing', () => provenSwitchover('one monitor'));

  it('a candidate whose WAL receiver hangs while the other standby acknowledges alone: not promoted short of those commits; once it resumes, the switchover ends losing nothing', async () => {
    const old = await primaryNode();
    const candidate = nodes.find((n) => n !== old)!;
    const [receiver] = await queryNode<{ pid: number }>(candidate.port, 'select pid from pg_stat_wal_receiver');
    expect(receiver, 'the candidate streams').toBeDefined();
    let resumed = false;
    const resume = (): void => {
      if (!resumed) killPid(receiver!.pid, 'SIGCONT');
      resumed = true;
    };
    try {
      const result = await writesAround('unproven', async () => {
        // The receiver stops taking WAL but still says it streams; ANY 1 commits on the other standby alone.
        killPid(receiver!.pid, 'SIGSTOP');
        const count = async (): Promise<number> => Number((await queryNode<{ n: string }>(old.port, 'select count(*) as n from unproven'))[0]!.n);
        const before = await count();
        await waitFor('commits the candidate lacks', async () => (await count()) >= before + 20);
        const command = runPgha(['perform', 'promotion', '--name', candidate.name, '--wait', '120'], env());
        // The monitor does not promote it short of the old primary's shutdown checkpoint; its
        // receiver still says it streams, so after electionTimeoutMs an election decides.
        const held = await waitFor('the election', async () => (await eventsSince(10)).find((e) => e.rule === 'switchover-election' && e.node_name === candidate.name), { timeoutMs: 30_000 });
        console.log(`[switchover, receiver stopped] ${held.rule}: ${held.reason}`);
        expect((await showState(monitor.url)).find((r) => r.name === candidate.name)!.goal_state).not.toMatch(/stop_replication|primary/);
        resume();
        const r = await command;
        // The election may promote the other standby, which has the last commits: the command says so.
        if (r.exitCode !== 0) expect(r.stderr).toMatch(new RegExp(`pgha: error: the monitor promoted \\S+ instead of ${candidate.name}`));
      });
      expect(result.missing).toEqual([]);
      expect((await primaryNode()).name).not.toBe(old.name);
    } finally {
      resume();
    }
    await settled();
  });
});

describe('a switchover on three nodes, three monitors on etcd', () => {
  beforeAll(() => setUp(true), 300_000);
  afterAll(() => endAllProcesses());

  it('promotes the candidate on the old primary shutdown checkpoint, without an election, losing nothing', () => provenSwitchover('three monitors on etcd'));
});
