/**
 * Monitors on etcd, faults 1–4, 6 and 7 of issue 15, on real processes: a 3-member etcd
 * cluster (TLS, client certificates), three monitors on it, two Postgres nodes whose keepers
 * know the three monitors, and a writer that records every acknowledged insert. Each test kills
 * or pauses something, then checks what a user would: who leads, what the writer saw (nothing
 * acknowledged lost, never two servers acknowledging at once), which goals changed and why.
 * What a test kills is started again before the next one.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Probe, idsOn } from '../bench/lib/probe.js';
import type { TestMonitor, TestNode } from './helpers/cluster.js';
import { addNode } from './helpers/cluster.js';
import { leaderUrl, monitorLog, monitorsView, runEtcdMonitor, startEtcdMonitors, waitForLeader, type EtcdMonitors } from './helpers/etcd-monitors.js';
import { isPrimaryAndSecondaries, showState } from './helpers/formation.js';
import { HistoryProbe, dualPrimaryWindows, showEvents, takeBaseline, unexplainedGoalChanges, type FaultBaseline } from './helpers/history.js';
import { killNode, logMessages, logOffset, transitionStart, waitForLogMessage, waitGone } from './helpers/crash.js';
import { PGHA_BIN, endAllProcesses, killPid, runPgha, startPgha, startTracked, trackPid } from './helpers/processes.js';
import { delay, waitFor } from './helpers/wait-for.js';
import { monitorFetch, withMonitorCredentials } from './helpers/monitor-access.js';
import { createInterface } from 'node:readline';
import type { EventRow, NodeStateRow } from '@pgha/shared';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';

const TABLE = 'ha_history';
/** The monitors' lease TTL (`DEFAULT_LEASE_TTL_S`), ms. */
const LEASE_TTL_MS = 2000;

let g: EtcdMonitors;
let nodes: TestNode[];
let list: string;
/** Writers still running (a failed test leaves its own; the next test must not share ids with it). */
const running = new Set<HistoryProbe>();

const keeperLog = (node: TestNode): string => join(g.monitors[0]!.dir, `${node.name}.keeper.log`);

/** The monitor that leads `default` now. */
async function leader(): Promise<TestMonitor> {
  const url = await waitForLeader(g.urls);
  return g.monitors.find((m) => m.url === url)!;
}

/** SIGKILLs a monitor (as a host dying would) and waits until its process is gone. */
async function killMonitor(m: TestMonitor): Promise<void> {
  killPid(m.proc.pid, 'SIGKILL');
  await waitGone(m.proc.pid);
}

/** Starts a monitor of the group again, as systemd would, and waits until it answers. */
async function restartMonitor(m: TestMonitor): Promise<void> {
  const i = g.monitors.indexOf(m);
  const again = runEtcdMonitor(m.dir, m.pgdata, `monitor-${i + 1}`, m.url, m.authTokenFile);
  g.monitors[i] = again;
  await waitFor(`monitor ${m.url} back`, async () => (await monitorFetch(`${m.url}/health`).catch(() => undefined))?.ok, { timeoutMs: 60_000 });
}

/** Starts a node's keeper again after a crash (it restarts Postgres, rejoining as a standby). */
async function restartKeeper(node: TestNode): Promise<void> {
  await waitGone(node.keeper.pid);
  node.keeper = startPgha(['keeper', 'run', '--pgdata', node.pgdata], { logFile: keeperLog(node) });
}

/** The node whose goal is primary now, and the other. */
async function roles(): Promise<{ primary: TestNode; standby: TestNode }> {
  const rows = await showState(list);
  const primary = nodes.find((n) => n.name === rows.find((r) => r.goal_state === 'primary')!.name)!;
  return { primary, standby: nodes.find((n) => n !== primary)! };
}

async function healthy(timeoutMs = 120_000): Promise<void> {
  await waitFor('one primary and one secondary', async () => isPrimaryAndSecondaries(await showState(list)), { timeoutMs, intervalMs: 200 });
}

/** A writer on the formation, started and writing; the ids of test `n` are its own. */
async function startWriter(n: number): Promise<HistoryProbe> {
  const probe = new HistoryProbe('writer', nodes.map((node) => ({ host: node.host, port: node.port })), TABLE, n * 10_000_000 + 1, { queryTimeoutMs: 30_000 });
  running.add(probe);
  probe.start();
  await waitFor('the writer to write', () => probe.acks.length >= 20, { timeoutMs: 30_000, intervalMs: 20 });
  return probe;
}

/** Longest gap between consecutive acknowledgements after `fromMs`, ms. */
function maxGapMs(probe: HistoryProbe, fromMs: number): number {
  const acks = probe.acks.filter((a) => a.atMs >= fromMs - 1000);
  let gap = 0;
  for (let i = 1; i < acks.length; i++) gap = Math.max(gap, acks[i]!.atMs - acks[i - 1]!.atMs);
  return gap;
}

/**
 * Stops the writer and checks: no acknowledged insert missing on the final primary, never two
 * servers acknowledging at once, every goal change explained by an event.
 *
 * @returns the goal changes since `baseline` (events whose goal changed).
 */
async function checkWrites(probe: HistoryProbe, baseline: FaultBaseline): Promise<{ goalChanges: string[]; finalPrimary: string }> {
  await probe.stop();
  running.delete(probe);
  const rows = await showState(list);
  const primary = rows.find((r) => r.goal_state === 'primary' || r.goal_state === 'wait_primary')!;
  const present = await idsOn({ host: primary.host, port: primary.port }, TABLE);
  const lost = probe.acks.filter((a) => !present.has(a.id)).map((a) => a.id);
  expect(lost, 'acknowledged inserts missing on the final primary').toEqual([]);
  expect(dualPrimaryWindows(probe.acks), 'two servers acknowledging at once').toEqual([]);
  const events = await showEvents(list);
  expect(unexplainedGoalChanges(baseline, events, rows)).toEqual([]);
  const goalChanges = events.filter((e) => e.event_id > baseline.eventId && e.old_goal_state !== e.new_goal_state).map((e) => `${e.node_name} ${e.old_goal_state}→${e.new_goal_state}`);
  return { goalChanges, finalPrimary: primary.name };
}

beforeAll(async () => {
  g = await startEtcdMonitors();
  list = g.urls.join(',');
  const node1 = await addNode(g.monitors[0]!, 'node1', { monitors: g.urls });
  const node2 = await addNode(g.monitors[0]!, 'node2', { monitors: g.urls });
  nodes = [node1, node2];
  await healthy();
  await Probe.createTable(nodes.map((n) => ({ host: n.host, port: n.port })), TABLE);
}, 240_000);

afterEach(async () => {
  for (const probe of running) await probe.stop();
  running.clear();
});

afterAll(async () => {
  await endAllProcesses();
});

describe('monitors on etcd', () => {
  it('pgha show monitors lists three monitors, one leading the formation, and three healthy etcd members, one the raft leader', async () => {
    const r = await runPgha(['show', 'monitors', '--json', '--monitor', list]);
    expect(r.exitCode, r.stderr).toBe(0);
    const view = JSON.parse(r.stdout) as Awaited<ReturnType<typeof monitorsView>>;
    expect(view.monitors).toHaveLength(3);
    expect(view.monitors.every((m) => m.reachable && m.store === 'etcd')).toBe(true);
    expect(view.monitors.filter((m) => m.leads.some((l) => l.formation === 'default'))).toHaveLength(1);
    expect(view.monitors.every((m) => m.lease_left_ms! > 0)).toBe(true);
    expect(view.etcd).toHaveLength(3);
    expect(view.etcd.every((e) => e.healthy && e.db_size_bytes! > 0)).toBe(true);
    expect(view.etcd.filter((e) => e.leader)).toHaveLength(1);
    const table = await runPgha(['show', 'monitors', '--monitor', list]);
    expect(table.stdout).toMatch(/default/);
  });

  it("the formation's state at any monitor is the leader's: every keeper heard from within nodeUnhealthyTimeoutMs, and show state says the same at each", async () => {
    const leader = await waitForLeader(g.urls);
    for (const url of g.urls) {
      const res = await monitorFetch(`${url}/v1/formations/default/state`);
      expect(res.status).toBe(200);
      const rows = (await res.json()) as NodeStateRow[];
      // Only the leader hears the keepers: another monitor's store has each node as last written.
      expect(res.headers.get('x-pgha-state-from-store')).toBeNull();
      expect(res.headers.get('x-pgha-leader')).toBe(url === leader ? null : leader);
      expect(rows.map((r) => r.last_report_ago_ms !== null && r.last_report_ago_ms < 2000)).toEqual([true, true]);
      expect(isPrimaryAndSecondaries(await showState(url))).toBe(true);
    }
  });

  it('1. the leading monitor SIGKILLed: another leads within the lease TTL + 1 s, no goal changes, writes never stop', async () => {
    const baseline = await takeBaseline(list);
    const probe = await startWriter(1);
    const old = await leader();
    const t0 = performance.now();
    await killMonitor(old);
    const others = g.urls.filter((u) => u !== old.url);
    const next = await waitFor('another monitor to lead', async () => {
      const url = await leaderUrl(others).catch(() => undefined);
      return url && url !== old.url ? url : undefined;
    }, { timeoutMs: 10_000, intervalMs: 50 });
    const tookMs = performance.now() - t0;
    expect(tookMs, `a new leader (${next}) after ${tookMs.toFixed(0)} ms`).toBeLessThan(LEASE_TTL_MS + 1000);
    // Longer than nodeUnhealthyTimeoutMs after the new leader's gain: a failover would have started.
    await delay(4000);
    const { goalChanges } = await checkWrites(probe, baseline);
    expect(goalChanges).toEqual([]);
    expect(maxGapMs(probe, t0), 'longest pause of the writer').toBeLessThan(1000);
    await restartMonitor(old);
  });

  it('the leading monitor SIGKILLed while the primary is wait_primary (its standby down): the primary does not fence itself, writes never stop', async () => {
    await healthy();
    const { primary, standby } = await roles();
    killNode(standby);
    let old: TestMonitor | undefined;
    try {
      await waitFor('the primary in wait_primary', async () => (await showState(list)).find((r) => r.name === primary.name)?.reported_state === 'wait_primary', { timeoutMs: 30_000, intervalMs: 100 });
      const baseline = await takeBaseline(list);
      const probe = await startWriter(11);
      old = await leader();
      const t0 = performance.now();
      const since = logOffset(keeperLog(primary));
      await killMonitor(old);
      // networkPartitionTimeoutMs (1 s) is shorter than the lease TTL (2 s): without an answer
      // while no monitor leads, the primary would fence itself here.
      await waitForLeader(g.urls.filter((u) => u !== old!.url));
      await delay(3000);
      const { goalChanges } = await checkWrites(probe, baseline);
      expect(goalChanges).toEqual([]);
      expect(maxGapMs(probe, t0), 'longest pause of the writer').toBeLessThan(1000);
      expect((await showState(list)).find((r) => r.name === primary.name)?.reported_state).toBe('wait_primary');
      expect(logMessages(keeperLog(primary), since).join('\n')).not.toMatch(/self-fence|network partition/);
    } finally {
      if (old) await restartMonitor(old);
      await restartKeeper(standby);
    }
    await healthy();
  });

  it('2. the leading monitor SIGKILLed between prepare_promotion and stop_replication of a failover: the failover completes, nothing lost, never two primaries', async () => {
    await healthy();
    const baseline = await takeBaseline(list);
    const { primary, standby } = await roles();
    const probe = await startWriter(2);
    const old = await leader();
    const off = logOffset(keeperLog(standby));
    killNode(primary);
    await waitForLogMessage(keeperLog(standby), transitionStart('secondary', 'prepare_promotion'), off, { timeoutMs: 30_000 });
    await killMonitor(old);
    await waitFor('writes back on the standby', () => probe.acks.some((a) => a.port === standby.port), { timeoutMs: 30_000, intervalMs: 50 });
    await restartKeeper(primary);
    await healthy();
    const { finalPrimary } = await checkWrites(probe, baseline);
    expect(finalPrimary).toBe(standby.name);
    await restartMonitor(old);
  });

  it('3. the leading monitor and the primary node SIGKILLed at the same instant: writes back on the standby, nothing lost', async () => {
    await healthy();
    const baseline = await takeBaseline(list);
    const { primary, standby } = await roles();
    const probe = await startWriter(3);
    const old = await leader();
    const t0 = performance.now();
    killPid(old.proc.pid, 'SIGKILL');
    killNode(primary);
    const back = await waitFor('writes back on the standby', () => probe.acks.find((a) => a.port === standby.port && a.atMs > t0), { timeoutMs: 30_000, intervalMs: 20 });
    const backMs = back.atMs - t0;
    // The target of issue 15 is 6 s; the bound here leaves room for a loaded CI machine.
    expect(backMs, `writes back after ${backMs.toFixed(0)} ms`).toBeLessThan(15_000);
    await waitGone(old.proc.pid);
    await restartKeeper(primary);
    await healthy();
    const { finalPrimary } = await checkWrites(probe, baseline);
    expect(finalPrimary).toBe(standby.name);
    await restartMonitor(old);
  });

  it('4. the leading monitor paused past its lease, another decides, then resumed: it logs that it lost the leadership, answers 503 until it has a new lease, and no keeper acts on it', async () => {
    await healthy();
    const baseline = await takeBaseline(list);
    const probe = await startWriter(4);
    const old = await leader();
    const off = logOffset(monitorLog(old));
    killPid(old.proc.pid, 'SIGSTOP');
    try {
      const others = g.urls.filter((u) => u !== old.url);
      await waitFor('another monitor to lead', async () => ((await leaderUrl(others).catch(() => undefined)) ?? '') !== '', { timeoutMs: 10_000, intervalMs: 50 });
      // The new leader decides: a switchover while the old one sleeps.
      const sw = await runPgha(['perform', 'switchover', '--wait', '120', '--monitor', others.join(',')]);
      expect(sw.exitCode, sw.stderr).toBe(0);
    } finally {
      killPid(old.proc.pid, 'SIGCONT');
    }
    await waitForLogMessage(monitorLog(old), /lost the (etcd lease|leadership of formation "default")/, off, { timeoutMs: 10_000 });
    // Give the resumed monitor time to act on anything it had under way.
    await delay(3000);
    await healthy();
    const { goalChanges } = await checkWrites(probe, baseline);
    // Only the switchover's changes, each explained by the new leader's events (checked above).
    expect(goalChanges.length).toBeGreaterThan(0);
    const view = await monitorsView(g.urls);
    expect(view.monitors.filter((m) => m.leads.some((l) => l.formation === 'default'))).toHaveLength(1);
  });

  it('event streams and metrics at any monitor, across a leader change: show events --follow misses and repeats no event, every monitor counts the switchovers', async () => {
    await healthy();
    const since = (await showEvents(list, 1)).at(-1)?.event_id ?? 0;
    const args = ['show', 'events', '--follow', '--json', '--count', '1', '--monitor', list];
    const followLog = join(g.monitors[0]!.dir, 'events-follow.log');
    const follow = startTracked(process.execPath, [PGHA_BIN, ...args], { pipeStdout: true, logFile: followLog, env: withMonitorCredentials(args, {}) });
    const seen: number[] = [];
    let started = false;
    createInterface({ input: follow.stdout! }).on('line', (line) => {
      try {
        const id = (JSON.parse(line) as EventRow).event_id;
        started = true;
        if (id > since) seen.push(id);
      } catch {
        // not an event line
      }
    });
    const switchover = async (monitors: readonly string[]): Promise<void> => {
      const sw = await runPgha(['perform', 'switchover', '--wait', '120', '--monitor', monitors.join(',')]);
      expect(sw.exitCode, sw.stderr).toBe(0);
      await healthy();
    };
    // `--count 1` starts with the last event when it connects: connected before anything happens.
    await waitFor('the stream to show the last event', () => started, { timeoutMs: 30_000 });
    await switchover(g.urls);
    await waitFor('the stream to show the first switchover', () => seen.length > 0, { timeoutMs: 30_000 });
    const old = await leader();
    await killMonitor(old);
    const others = g.urls.filter((u) => u !== old.url);
    await waitFor('another monitor to lead', () => leaderUrl(others).catch(() => undefined), { timeoutMs: 10_000, intervalMs: 50 });
    await switchover(others);
    const all = (await showEvents(list)).filter((e) => e.event_id > since).map((e) => e.event_id);
    await waitFor('the stream to show every event', () => seen.length >= all.length, { timeoutMs: 30_000 }).catch((err: Error) => {
      throw new Error(`${err.message}: events ${all.join(',')}; the stream showed ${seen.join(',')}; its stderr: ${readFileSync(followLog, 'utf8').trim()}`);
    });
    killPid(follow.pid, 'SIGTERM');
    expect(seen).toEqual(all);
    await restartMonitor(old);
    for (const url of g.urls) {
      const text = await (await monitorFetch(`${url}/metrics`)).text();
      const switchovers = Number(/^pgha_switchovers_total\{formation="default"\} (\d+)/m.exec(text)?.[1] ?? 0);
      expect(switchovers, `pgha_switchovers_total at ${url}`).toBeGreaterThanOrEqual(2);
    }
  });

  it('6. the etcd raft leader SIGKILLed during a switchover: the switchover completes, no failover', async () => {
    await healthy();
    const baseline = await takeBaseline(list);
    const { primary } = await roles();
    const probe = await startWriter(6);
    const view = await monitorsView(g.urls);
    const raftLeader = g.etcd.members.find((m) => view.etcd.find((e) => e.leader)!.client_urls.includes(m.clientUrl))!;
    const off = logOffset(keeperLog(primary));
    const sw = runPgha(['perform', 'switchover', '--wait', '120', '--monitor', list]);
    // Once the switchover is under way: the primary's keeper has started to drain it.
    await waitForLogMessage(keeperLog(primary), transitionStart('primary', 'draining'), off, { timeoutMs: 30_000 });
    killPid(raftLeader.pid, 'SIGKILL');
    try {
      const result = await sw;
      expect(result.exitCode, result.stderr).toBe(0);
      await healthy();
      const { finalPrimary } = await checkWrites(probe, baseline);
      expect(finalPrimary).not.toBe(primary.name);
    } finally {
      trackPid(g.etcd.restartMember(raftLeader.name).pid);
    }
    await waitFor('three healthy etcd members', async () => (await monitorsView(g.urls)).etcd.filter((e) => e.healthy).length === 3, { timeoutMs: 30_000 });
  });

  it('7. etcd quorum lost (2 of 3 members down): no goal changes, writes go on, operator commands refused with a clear error; all resumes with quorum', async () => {
    await healthy();
    const baseline = await takeBaseline(list);
    const probe = await startWriter(7);
    const [a, b] = g.etcd.members.slice(0, 2) as [(typeof g.etcd.members)[0], (typeof g.etcd.members)[0]];
    const t0 = performance.now();
    killPid(a.pid, 'SIGKILL');
    killPid(b.pid, 'SIGKILL');
    try {
      // Past the lease TTL: every monitor lost its lease and answers 503.
      await delay(LEASE_TTL_MS + 2000);
      const sw = await runPgha(['perform', 'switchover', '--wait', '10', '--monitor', list]);
      expect(sw.exitCode).not.toBe(0);
      expect(sw.stderr.trim().split('\n')).toHaveLength(1);
      expect(sw.stderr).toMatch(/no monitor answered: .*(etcd|lease|store)/);
      await delay(3000);
      expect(maxGapMs(probe, t0), 'longest pause of the writer while etcd had no quorum').toBeLessThan(1000);
    } finally {
      trackPid(g.etcd.restartMember(a.name).pid);
      trackPid(g.etcd.restartMember(b.name).pid);
    }
    await waitForLeader(g.urls, 'default', 60_000);
    await delay(3000);
    const { goalChanges } = await checkWrites(probe, baseline);
    expect(goalChanges).toEqual([]);
    const sw = await runPgha(['perform', 'switchover', '--wait', '120', '--monitor', list]);
    expect(sw.exitCode, sw.stderr).toBe(0);
    await healthy();
  });
});
