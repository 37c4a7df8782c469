/**
 * Monitors on etcd, fault 5 of issue 15: the leading monitor cut off from etcd by the network
 * while keepers still reach it. Every host in its own network namespace (netns.ts): etcd's
 * three members on host `etcd`, monitors on `m1`..`m3`, nodes on `node1` and `node2`; the test
 * process writes from the root namespace. The cut is a route on the monitor's side towards
 * etcd only: keepers, the other monitors and the test process still reach the cut monitor.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Probe } from '../bench/lib/probe.js';
import { addNode, type TestMonitor, type TestNode } from './helpers/cluster.js';
import { leaderUrl, monitorsView, startEtcdMonitors, waitForLeader, type EtcdMonitors } from './helpers/etcd-monitors.js';
import { startEtcd } from './helpers/etcd.js';
import { isPrimaryAndSecondaries, showState } from './helpers/formation.js';
import { HistoryProbe, dualPrimaryWindows, showEvents, takeBaseline, unexplainedGoalChanges } from './helpers/history.js';
import { logOffset, waitForLogMessage } from './helpers/crash.js';
import { NODE_BASE_PORT, allowNetworkClients } from './helpers/net-formation.js';
import { createNetwork, netnsAvailability, type SimNetwork } from './helpers/netns.js';
import { endAllProcesses } from './helpers/processes.js';
import { delay, waitFor } from './helpers/wait-for.js';
import { monitorFetch } from './helpers/monitor-access.js';

const availability = netnsAvailability();
const skip = !availability.ok && process.env.PGHA_SKIP_NETNS === '1';
const skipReason = availability.ok ? '' : availability.reason;

const TABLE = 'ha_partition';
/** The monitors' lease TTL (`DEFAULT_LEASE_TTL_S`), ms. */
const LEASE_TTL_MS = 2000;
const MONITOR_HOSTS = ['m1', 'm2', 'm3'] as const;

let net: SimNetwork | undefined;
let g: EtcdMonitors;
let nodes: TestNode[];
let list: string;

describe.skipIf(skip)(skip ? `monitor cut off from etcd (skipped: ${skipReason})` : 'fault 5: the leading monitor cut off from etcd (every host in its own network namespace)', () => {
  beforeAll(async () => {
    if (!availability.ok) throw new Error(`${availability.reason}. Set PGHA_SKIP_NETNS=1 to skip the fault tests on such a machine.`);
    net = await createNetwork(['etcd', ...MONITOR_HOSTS, 'node1', 'node2']);
    const etcd = await startEtcd({ members: 3, tls: true, clientCertAuth: true, host: net.host('etcd').addr, netns: net.netns('etcd') });
    g = await startEtcdMonitors({ etcd, hosts: MONITOR_HOSTS.map((h) => ({ addr: net!.host(h).addr, netns: net!.netns(h) })) });
    list = g.urls.join(',');
    nodes = [];
    for (const [i, name] of ['node1', 'node2'].entries()) {
      const node = await addNode(g.monitors[0]!, name, { hostname: net.host(name).addr, netns: net.netns(name), port: NODE_BASE_PORT + i + 1, monitors: g.urls });
      await allowNetworkClients(node, net.cidr);
      nodes.push(node);
    }
    await waitFor('one primary and one secondary', async () => isPrimaryAndSecondaries(await showState(list)), { timeoutMs: 120_000, intervalMs: 250 });
    await Probe.createTable(nodes.map((n) => ({ host: n.host, port: n.port })), TABLE);
  }, 300_000);

  afterAll(async () => {
    await endAllProcesses();
    await net?.destroy();
  });

  it('stops deciding and answers 503 within the lease TTL, keepers follow another monitor, no failover of the healthy primary; after the heal it serves again', async () => {
    const leaderAtStart = await waitForLeader(g.urls);
    const cut: TestMonitor = g.monitors.find((m) => m.url === leaderAtStart)!;
    const cutHost = MONITOR_HOSTS[g.monitors.indexOf(cut)]!;
    const others = g.urls.filter((u) => u !== cut.url);
    const baseline = await takeBaseline(list);
    const probe = new HistoryProbe('writer', nodes.map((n) => ({ host: n.host, port: n.port })), TABLE, 1, { queryTimeoutMs: 30_000 });
    probe.start();
    try {
      await waitFor('the writer to write', () => probe.acks.length >= 20, { timeoutMs: 30_000, intervalMs: 20 });
      const keeperLogs = nodes.map((n) => join(g.monitors[0]!.dir, `${n.name}.keeper.log`));
      const offsets = keeperLogs.map(logOffset);
      const t0 = performance.now();
      await net!.cut(cutHost, 'etcd');

      // The cut monitor answers 503 (its lease may have expired) within the TTL.
      await waitFor('the cut monitor to answer 503', async () => (await monitorFetch(`${cut.url}/health`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined))?.status === 503, { timeoutMs: 10_000, intervalMs: 50 });
      const refusedAfterMs = performance.now() - t0;
      expect(refusedAfterMs, `503 after ${refusedAfterMs.toFixed(0)} ms`).toBeLessThan(LEASE_TTL_MS + 500);
      // Another monitor leads, and every keeper talks to another monitor.
      const next = await waitFor('another monitor to lead', () => leaderUrl(others).catch(() => undefined), { timeoutMs: 10_000, intervalMs: 100 });
      expect(next).not.toBe(cut.url);
      for (const [i, file] of keeperLogs.entries()) {
        await waitForLogMessage(file, new RegExp(`^now talking to the monitor at (${others.map((u) => u.replace(/[.]/g, '\\.')).join('|')}) instead of ${cut.url.replace(/[.]/g, '\\.')}`), offsets[i]!, { timeoutMs: 10_000 });
      }
      // Long past nodeUnhealthyTimeoutMs after the new leader's gain: a failover would have started.
      await delay(5000);
      const acks = probe.acks.filter((a) => a.atMs >= t0 - 1000);
      let gap = 0;
      for (let i = 1; i < acks.length; i++) gap = Math.max(gap, acks[i]!.atMs - acks[i - 1]!.atMs);
      expect(gap, 'longest pause of the writer').toBeLessThan(1000);
    } finally {
      await net!.heal();
      await probe.stop();
    }
    const rows = await showState(list);
    const primary = rows.find((r) => r.goal_state === 'primary')!;
    const { idsOn } = await import('../bench/lib/probe.js');
    const present = await idsOn({ host: primary.host, port: primary.port }, TABLE);
    expect(probe.acks.filter((a) => !present.has(a.id)).map((a) => a.id)).toEqual([]);
    expect(dualPrimaryWindows(probe.acks)).toEqual([]);
    const events = await showEvents(list);
    expect(unexplainedGoalChanges(baseline, events, rows)).toEqual([]);
    expect(events.filter((e) => e.event_id > baseline.eventId && e.old_goal_state !== e.new_goal_state)).toEqual([]);
    // Healed: the cut monitor serves again, and one monitor leads.
    await waitFor('the cut monitor to serve again', async () => (await monitorFetch(`${cut.url}/health`).catch(() => undefined))?.ok, { timeoutMs: 30_000, intervalMs: 200 });
    const view = await monitorsView(g.urls);
    expect(view.monitors.filter((m) => m.reachable)).toHaveLength(3);
    expect(view.monitors.filter((m) => m.leads.some((l) => l.formation === 'default'))).toHaveLength(1);
  });
});
