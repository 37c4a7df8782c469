/**
 * Issue 15: moving a formation from one monitor on its own Postgres to three monitors on etcd
 * without restarting any Postgres node, as docs/monitor-ha.md ("From one monitor on Postgres to
 * monitors on etcd") tells an operator: stop the old monitor; `pgha monitor create --store …
 * --from-monitor OLD` for the first new monitor, `--join` for the others; `pgha keeper set
 * monitor URL,URL,URL` and `pgha keeper reload` on each node. A writer runs throughout.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import getPort from 'get-port';
import { afterAll, expect, it } from 'vitest';
import type { EventRow, NodeStateRow } from '@pgha/shared';
import { Probe, idsOn } from '../bench/lib/probe.js';
import { addNode, startMonitor } from './helpers/cluster.js';
import { expectOneLineError } from './helpers/cli.js';
import { waitGone } from './helpers/crash.js';
import { startEtcd } from './helpers/etcd.js';
import { startEtcdMonitors, waitForLeader } from './helpers/etcd-monitors.js';
import { isPrimaryAndSecondaries, showState } from './helpers/formation.js';
import { HistoryProbe, dualPrimaryWindows, showEvents } from './helpers/history.js';
import { endAllProcesses, killPid, makeTestDir, postmasterPid, runPgha } from './helpers/processes.js';
import { waitFor } from './helpers/wait-for.js';

const TABLE = 'move_history';

afterAll(async () => {
  await endAllProcesses();
});

/** What a user compares of a node before and after the move. */
function nodeView(rows: readonly NodeStateRow[]): { node_id: number; name: string; host: string; port: number; reported_state: string; goal_state: string }[] {
  return rows.map(({ node_id, name, host, port, reported_state, goal_state }) => ({ node_id, name, host, port, reported_state, goal_state })).sort((a, b) => a.node_id - b.node_id);
}

/** An event without its id (ids change in the move). */
function eventView(e: EventRow): Omit<EventRow, 'event_id'> {
  const { event_id: _id, ...rest } = e;
  return rest;
}

it(
  'a formation moves from a monitor on Postgres to three monitors on etcd: same nodes, states, goals and events; a switchover works; no write lost; no Postgres restarted',
  async () => {
    const old = await startMonitor();
    const node1 = await addNode(old, 'node1');
    const node2 = await addNode(old, 'node2');
    const nodes = [node1, node2];
    await waitFor('primary and secondary', async () => isPrimaryAndSecondaries(await showState(old.url)), { timeoutMs: 120_000, intervalMs: 250 });
    const hosts = nodes.map((n) => ({ host: n.host, port: n.port }));
    await Probe.createTable(hosts, TABLE);
    const writer = new HistoryProbe('writer', hosts, TABLE, 1, { queryTimeoutMs: 30_000 });
    writer.start();
    try {
      await waitFor('the writer to write', () => writer.acks.length >= 20, { timeoutMs: 30_000, intervalMs: 20 });
      const etcd = await startEtcd({ members: 3, tls: true, clientCertAuth: true });
      const tls = etcd.tls!;
      const storeArgs = ['--store', etcd.storeUri('/pgha'), '--store-ca-file', tls.caFile, '--store-cert-file', tls.clientCertFile, '--store-key-file', tls.clientKeyFile];

      // Bad input, each one line and nothing written: the old monitor runs (its pid and how to
      // stop it), no monitor there, --join with it.
      const refusedAt = join(makeTestDir(), 'pgdata');
      const refused = await runPgha(['monitor', 'create', '--pgdata', refusedAt, '--listen', `127.0.0.1:${await getPort({ host: '127.0.0.1' })}`, ...storeArgs, '--from-monitor', old.pgdata]);
      expectOneLineError(refused, new RegExp(`runs \\(pid ${old.proc.pid}.*kill -TERM ${old.proc.pid}`));
      expect(existsSync(`${refusedAt}.pgha/monitor.json`)).toBe(false);
      const nowhere = await runPgha(['monitor', 'create', '--pgdata', refusedAt, '--listen', `127.0.0.1:${await getPort({ host: '127.0.0.1' })}`, ...storeArgs, '--from-monitor', join(refusedAt, 'none')]);
      expectOneLineError(nowhere, /there is no monitor at .*none/);
      const withJoin = await runPgha(['monitor', 'create', '--pgdata', refusedAt, '--listen', `127.0.0.1:${await getPort({ host: '127.0.0.1' })}`, ...storeArgs, '--join', '--from-monitor', old.pgdata]);
      expectOneLineError(withJoin, /does not go with --join/);
      expect(existsSync(`${refusedAt}.pgha/monitor.json`)).toBe(false);

      const before = nodeView(await showState(old.url));
      const oldEvents = await showEvents(old.url);
      expect(oldEvents.length).toBeGreaterThan(0);
      const postmasters = nodes.map((n) => postmasterPid(n.pgdata));
      expect(postmasters.every((p) => p !== undefined)).toBe(true);
      const acksBeforeMove = writer.acks.length;

      // 1. Stop the old monitor (its nodes keep running, nothing fails over).
      killPid(old.proc.pid, 'SIGTERM');
      await waitGone(old.proc.pid, 30_000);
      // 2–3. The first new monitor copies its store (the prefix is still empty: the refusal wrote
      // nothing); the others join.
      const g = await startEtcdMonitors({ etcd, fromMonitor: old.pgdata });
      const list = g.urls.join(',');
      // The old monitor's Postgres ran only for the copy.
      expect(postmasterPid(old.pgdata)).toBeUndefined();
      // 4. Every node's keeper to the new monitors, without a restart.
      for (const n of nodes) {
        const set = await runPgha(['keeper', 'set', 'monitor', list, '--pgdata', n.pgdata]);
        expect(set.exitCode, set.stderr).toBe(0);
        const reload = await runPgha(['keeper', 'reload', '--pgdata', n.pgdata]);
        expect(reload.exitCode, reload.stderr).toBe(0);
      }

      // Keepers report to the new leader: after its grace (every node heard at the gain), each
      // node's last report stays recent.
      const leader = await waitForLeader(g.urls);
      const ledSince = Date.now();
      await waitFor(
        'both keepers reporting to the new leader',
        async () => Date.now() - ledSince > 4000 && (await showState(leader)).every((r) => r.last_report_ago_ms !== null && r.last_report_ago_ms < 1500),
        { timeoutMs: 60_000, intervalMs: 250 },
      );
      // The same nodes, states and goals through every new monitor.
      for (const url of g.urls) expect(nodeView(await showState(url))).toEqual(before);
      // The old events, in order (new ids), then whatever came after.
      const newEvents = await showEvents(list);
      expect(newEvents.slice(0, oldEvents.length).map(eventView)).toEqual(oldEvents.map(eventView));
      // Postgres was never restarted, and the writer went on.
      expect(nodes.map((n) => postmasterPid(n.pgdata))).toEqual(postmasters);
      await waitFor('writes after the move', () => writer.acks.length > acksBeforeMove + 50, { timeoutMs: 30_000, intervalMs: 50 });

      // A switchover through the new monitors.
      const primaryBefore = before.find((r) => r.goal_state === 'primary')!.name;
      const sw = await runPgha(['perform', 'switchover', '--wait', '120', '--monitor', list]);
      expect(sw.exitCode, sw.stderr).toBe(0);
      await waitFor('primary and secondary after the switchover', async () => isPrimaryAndSecondaries(await showState(list)), { timeoutMs: 120_000, intervalMs: 250 });
      const after = await showState(list);
      const primaryAfter = after.find((r) => r.goal_state === 'primary')!;
      expect(primaryAfter.name).not.toBe(primaryBefore);
      const acksAtSwitchover = writer.acks.length;
      await waitFor('writes after the switchover', () => writer.acks.length > acksAtSwitchover + 20, { timeoutMs: 60_000, intervalMs: 50 });

      await writer.stop();
      const present = await idsOn({ host: primaryAfter.host, port: primaryAfter.port }, TABLE);
      expect(writer.acks.filter((a) => !present.has(a.id)).map((a) => a.id), 'acknowledged inserts missing on the final primary').toEqual([]);
      expect(dualPrimaryWindows(writer.acks), 'two servers acknowledging at once').toEqual([]);
    } finally {
      await writer.stop();
    }
  },
  420_000,
);
