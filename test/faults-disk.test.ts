/**
 * Fault 7 of issue 5: disk full on a standby. The standby's data directory lives on a small
 * tmpfs the test mounts (and unmounts, even on failure); the test fills it with a ballast
 * file and makes the primary switch WAL segments, so the standby's WAL receiver cannot create
 * its next segment. Checked: the primary keeps acknowledging writes (the monitor moves it to
 * `wait_primary` once the standby stops streaming), the condition reaches the operator
 * (`pgha show state` shows the keeper's problem, `pgha show events` has an event for it), and
 * once the ballast is removed the standby streams again and the formation is back to
 * `primary` + `secondary` with nothing lost and no dual primary.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_FORMATION_SETTINGS } from '@pgha/shared';
import { Probe } from '../bench/lib/probe.js';
import { addNode, startMonitor } from './helpers/cluster.js';
import { FaultSession } from './helpers/fault-session.js';
import { isPrimaryAndSecondaries, queryNode, showState } from './helpers/formation.js';
import { instant, showEvents } from './helpers/history.js';
import { MONITOR_HTTP_PORT, NODE_BASE_PORT, allowNetworkClients, type NetFormation } from './helpers/net-formation.js';
import { createNetwork, netnsAvailability, type SimNetwork } from './helpers/netns.js';
import { endAllProcesses, runPgha } from './helpers/processes.js';
import { waitFor } from './helpers/wait-for.js';

const availability = netnsAvailability();
const skip = !availability.ok && process.env.PGHA_SKIP_NETNS === '1';
const skipReason = availability.ok ? '' : availability.reason;

/** Size of the standby's volume: a fresh data directory takes ~40 MB of it. */
const VOLUME_SIZE = '160m';

let net: SimNetwork | undefined;
let f: NetFormation;
let s: FaultSession;
let mountPoint: string | undefined;

/** Unmounts the standby's volume (lazily: a Postgres still running there lets go when it ends). Idempotent. */
function unmountVolume(): void {
  if (!mountPoint) return;
  try {
    execFileSync('umount', ['-l', mountPoint], { stdio: 'ignore' });
  } catch {
    // not mounted
  }
  mountPoint = undefined;
}

/** Fills the file system of `dir` with `dir/ballast` until no space is left. */
function fill(dir: string): void {
  try {
    execFileSync('dd', ['if=/dev/zero', `of=${join(dir, 'ballast')}`, 'bs=1M'], { stdio: 'ignore' });
  } catch {
    // dd ends with "No space left on device": that is the point
  }
}

describe.skipIf(skip)(skip ? `disk full (skipped: ${skipReason})` : "fault 7: disk full on a standby's data directory (tmpfs volume)", () => {
  beforeAll(async () => {
    if (!availability.ok) throw new Error(`${availability.reason}. Set PGHA_SKIP_NETNS=1 to skip the fault tests on such a machine.`);
    net = await createNetwork(['monitor', 'node1', 'node2']);
    const monitor = await startMonitor({ host: net.host('monitor').addr, netns: net.netns('monitor'), httpPort: MONITOR_HTTP_PORT });
    const node1 = await addNode(monitor, 'node1', { hostname: net.host('node1').addr, netns: net.netns('node1'), port: NODE_BASE_PORT + 1 });
    await allowNetworkClients(node1, net.cidr);
    const vol = join(monitor.dir, 'node2-volume');
    mkdirSync(vol, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${VOLUME_SIZE},mode=0755`, 'pgha-test-volume', vol]);
    mountPoint = vol;
    const node2 = await addNode(monitor, 'node2', { hostname: net.host('node2').addr, netns: net.netns('node2'), port: NODE_BASE_PORT + 2, pgdata: join(vol, 'pgdata') });
    await allowNetworkClients(node2, net.cidr);
    await waitFor('one primary and one secondary', async () => isPrimaryAndSecondaries(await showState(monitor.url)), { timeoutMs: 120_000, intervalMs: 250 });
    f = { net, monitor, nodes: [node1, node2], hosts: [node1, node2].map((n) => ({ host: n.host, port: n.port })) };
    s = new FaultSession(f, 'history');
    await Probe.createTable(f.hosts, 'history');
  }, 300_000);

  afterAll(async () => {
    unmountVolume();
    await endAllProcesses();
    await net?.destroy();
  });

  it('the primary keeps taking writes, the full disk shows in show state and show events, and the standby rejoins once space is freed', async () => {
    const { before, baseline, writer, watcher } = await s.prepare(7);
    expect(before.standby.name).toBe('node2');
    const vol = mountPoint!;

    const faultAt = instant();
    fill(vol);
    // New WAL segments for the standby to create, on a full file system: one switch every 2 s at
    // most (each is a 16 MB segment the standby replays once space is back, on its 160 MiB volume).
    let switchedAt = -Infinity;
    await waitFor('the primary in wait_primary', async () => {
      if (performance.now() - switchedAt >= 2000) {
        switchedAt = performance.now();
        await queryNode(before.primary, 'select pg_switch_wal()').catch(() => undefined);
      }
      const rows = await showState(f.monitor.url);
      return rows.some((r) => r.name === before.primary.name && r.goal_state === 'wait_primary' && r.reported_state === 'wait_primary');
    }, { timeoutMs: 60_000, intervalMs: 500 });
    const waitPrimaryMs = performance.now() - faultAt.atMs;
    const problemRow = await waitFor('the standby to report its problem', async () => (await showState(f.monitor.url)).find((r) => r.name === 'node2' && r.problem), { timeoutMs: 30_000, intervalMs: 250 });
    expect(problemRow.problem).toMatch(/no space left on device/i);
    const shown = await runPgha(['show', 'state'], { PGHA_MONITOR: f.monitor.url });
    expect(shown.stdout).toMatch(/Problem on node2: .*no space left on device/i);
    const events = await showEvents(f.monitor.url, 50);
    expect(events.some((e) => e.node_name === 'node2' && e.rule === 'keeper-problem' && /no space left on device/i.test(e.reason))).toBe(true);
    const acksAtWaitPrimary = writer.acks.length;
    await waitFor('writes on the primary in wait_primary', () => writer.acks.length >= acksAtWaitPrimary + 50, { timeoutMs: 30_000 });
    const gapMs = writer.maxGapMs(faultAt.atMs);

    const healedAt = instant();
    rmSync(join(vol, 'ballast'), { force: true });
    const report = await s.check('fault 7: disk full on a standby', { writers: [writer], baseline, faultAt, healedAt, watcher, recoveryBoundMs: 60_000 });
    console.log(`[fault 7] primary in wait_primary ${waitPrimaryMs.toFixed(0)} ms after the disk filled; longest write gap ${gapMs.toFixed(0)} ms; problem shown: "${problemRow.problem}"`);
    expect(report.lost).toEqual([]);
    expect(report.dualPrimaryWindows).toEqual([]);
    expect(report.unexplained).toEqual([]);
    expect(report.recovered).toBe(true);
    expect(report.finalPrimary).toBe(before.primary.name);
    expect(report.servers).toHaveLength(1);
    // standbyStreamingTimeoutMs and a few report rounds, with room for a busy machine.
    expect(gapMs).toBeLessThan(DEFAULT_FORMATION_SETTINGS.standbyStreamingTimeoutMs + 10_000);
    // On a timeout, the message names each node's problem still shown (the last try's).
    await waitFor('the problem to clear', async () => {
      // A restartpoint recycles the WAL the standby replayed while catching up (what an operator
      // would run, rather than wait for checkpoint_timeout), so the freed space stays free.
      await queryNode(before.standby, 'checkpoint').catch(() => undefined);
      const left = (await showState(f.monitor.url)).filter((r) => r.problem !== null);
      if (left.length > 0) throw new Error(left.map((r) => `${r.name} (${r.reported_state}/${r.goal_state}): ${r.problem}`).join('; '));
      return true;
    }, { timeoutMs: 30_000, intervalMs: 250 });
    expect((await showEvents(f.monitor.url, 50)).some((e) => e.node_name === 'node2' && e.rule === 'keeper-problem-cleared')).toBe(true);
  });
});
