/**
 * Fault 6 of issue 5: crashes in the middle of a transition. On a formation whose monitor
 * and nodes each run in their own network namespace (see faults.test.ts), SIGKILL at a
 * precise step of a failover or switchover (found by the keeper's fixed log phrase
 * "FSM transition from X to Y"): the monitor process, the monitor's Postgres, a keeper in
 * `stop_replication`, a new standby's keeper during its base backup. What was killed is then
 * restarted as systemd would (`pgha monitor run`, `pgha keeper run`), and the history checker
 * checks: nothing lost, no dual primary, every goal change explained, one `primary` and the
 * rest `secondary` within {@link RECOVERY_BOUND_MS} of the restart. No manual step.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_BASE_PORT, allowNetworkClients, type NetFormation } from './helpers/net-formation.js';
import { netnsAvailability, type SimNetwork } from './helpers/netns.js';
import { isPrimaryAndSecondaries, queryNode, showState } from './helpers/formation.js';
import { instant, type HistoryReport } from './helpers/history.js';
import { expectClean, startFaultSuite, type FaultSession } from './helpers/fault-session.js';
import { keeperLogOf, killKeeper, killNode, killPostmaster, logOffset, pidsWithArgs, restartKeeper, restartMonitor, transitionStart, waitForLogMessage, waitGone } from './helpers/crash.js';
import { endAllProcesses, killPid, startPgha, trackPgdata } from './helpers/processes.js';
import { waitFor } from './helpers/wait-for.js';
import type { TestNode } from './helpers/cluster.js';
import { DEFAULT_KEEPER_HTTP_PORT } from '@pgha/shared';
import { monitorFetch } from './helpers/monitor-access.js';

const availability = netnsAvailability();
const skip = !availability.ok && process.env.PGHA_SKIP_NETNS === '1';
const skipReason = availability.ok ? '' : availability.reason;

/**
 * From the restart of what was killed to one `primary` and the rest `secondary`, in ms: a
 * rewind or base backup of the old primary, its catch-up, and the primary's move to `primary`
 * take a few seconds each on this machine; the bound leaves room for a loaded CI machine.
 */
const RECOVERY_BOUND_MS = 60_000;

let net: SimNetwork | undefined;
let f: NetFormation;
let s: FaultSession;
const reports: HistoryReport[] = [];


/**
 * A failover (the primary's keeper and postmaster SIGKILLed) in which `crash` strikes as soon
 * as the standby's keeper logs the start of `from → to`; then the old primary's keeper is
 * restarted, and the history checker runs for fault `n` with a recovery bound from that restart.
 */
async function failoverWithCrash(n: number, label: string, from: string, to: string, crash: (standby: TestNode) => Promise<void>): Promise<void> {
  const { before, baseline, writer, watcher } = await s.prepare(n);
  const oldPrimary = s.node(before.primary.name);
  const standby = s.node(before.standby.name);
  const off = logOffset(keeperLogOf(f, standby));

  const faultAt = instant();
  killNode(oldPrimary);
  await waitForLogMessage(keeperLogOf(f, standby), transitionStart(from, to), off, { timeoutMs: 30_000 });
  await crash(standby);
  await restartKeeper(f, oldPrimary);
  const healedAt = instant();

  const report = await s.check(label, { writers: [writer], baseline, faultAt, healedAt, watcher, recoveryBoundMs: RECOVERY_BOUND_MS });
  expectClean(report, reports, 'the restart');
  expect(report.finalPrimary).toBe(before.standby.name);
}

/**
 * Runs `fn`; when it fails, adds the last 40 lines of the monitor's log to the error (what the
 * monitor said meanwhile: once in CI it stopped answering after its Postgres was killed).
 */
async function withMonitorLog<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    let tail: string;
    try {
      tail = readFileSync(join(f.monitor.dir, 'monitor.log'), 'utf8').split('\n').slice(-40).join('\n');
    } catch {
      tail = '(no monitor log)';
    }
    if (err instanceof Error) err.message += `\nthe monitor's log, last lines:\n${tail}`;
    throw err;
  }
}

describe.skipIf(skip)(skip ? `crash faults (skipped: ${skipReason})` : 'fault 6: crashes mid-transition (monitor + 2 nodes, then a third, each in its own network namespace)', () => {
  beforeAll(async () => {
    ({ net, f, s } = await startFaultSuite(availability, ['monitor', 'node1', 'node2', 'node3'], ['node1', 'node2']));
  }, 300_000);

  afterAll(async () => {
    await endAllProcesses();
    await net?.destroy();
    for (const r of reports) console.log(`[fault 6] ${r.fault}: recovery ${r.recoveryMs} ms, lost ${r.lost.length}, dual-primary windows ${r.dualPrimaryWindows.length}, goal changes ${r.goalChanges.length}`);
  });

  it('monitor SIGKILLed during a failover (standby in prepare_promotion), restarted: the failover completes', () =>
    failoverWithCrash(61, 'fault 6a: monitor killed during a failover', 'secondary', 'prepare_promotion', async () => {
      killPid(f.monitor.proc.pid, 'SIGKILL');
      await restartMonitor(f);
    }));

  it('monitor SIGKILLed during a switchover (old primary draining), restarted: the switchover completes', async () => {
    const { before, baseline, writer, watcher } = await s.prepare(62);
    const oldPrimary = s.node(before.primary.name);
    const off = logOffset(keeperLogOf(f, oldPrimary));

    const faultAt = instant();
    const res = await monitorFetch(`${f.monitor.url}/v1/formations/default/switchover`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(200);
    await waitForLogMessage(keeperLogOf(f, oldPrimary), transitionStart('primary', 'draining'), off, { timeoutMs: 30_000 });
    killPid(f.monitor.proc.pid, 'SIGKILL');
    await restartMonitor(f);
    const healedAt = instant();

    const report = await s.check('fault 6b: monitor killed during a switchover', { writers: [writer], baseline, faultAt, healedAt, watcher, recoveryBoundMs: RECOVERY_BOUND_MS });
    expectClean(report, reports, 'the restart');
    expect(report.finalPrimary).toBe(before.standby.name);
  });

  it("the monitor's Postgres SIGKILLed during a failover: the monitor restarts it and the failover completes", () =>
    withMonitorLog(() =>
      failoverWithCrash(63, "fault 6c: monitor's Postgres killed during a failover", 'secondary', 'prepare_promotion', async () => {
        expect(killPostmaster(f.monitor.pgdata)).toBeDefined();
      })));

  it("the promoted standby's keeper SIGKILLed during stop_replication, restarted: the promotion completes", () =>
    failoverWithCrash(64, 'fault 6d: keeper killed during stop_replication', 'prepare_promotion', 'stop_replication', async (standby) => {
      killKeeper(standby);
      await restartKeeper(f, standby);
    }));

  it("a new standby's keeper SIGKILLed during its base backup (catchingup), restarted: the standby joins", async () => {
    const { before, baseline, writer, watcher } = await s.prepare(65);
    // Enough data that pg_basebackup runs for a while (~300 MB).
    await queryNode(before.primary, "create table if not exists ballast as select g, repeat('x', 1000) as pad from generate_series(1, 300000) g");
    const pgdata = join(f.monitor.dir, 'node3', 'pgdata');
    trackPgdata(pgdata);
    const log = join(f.monitor.dir, 'node3.keeper.log');
    const create = startPgha(['keeper', 'create', 'postgres', '--monitor', f.monitor.url, '--pgdata', pgdata, '--pg-port', String(NODE_BASE_PORT + 3), '--name', 'node3', '--hostname', net!.host('node3').addr, '--auth', 'trust'], { logFile: log, netns: net!.netns('node3') });
    // Its keeper's HTTP server is at the default port (keeper create without --http-listen).
    const node3: TestNode = { name: 'node3', host: net!.host('node3').addr, pgdata, port: NODE_BASE_PORT + 3, httpUrl: `https://${net!.host('node3').addr}:${DEFAULT_KEEPER_HTTP_PORT}`, keeper: create };

    const faultAt = instant();
    const tmp = `${pgdata}.basebackup`;
    await waitFor('pg_basebackup to be copying', () => pidsWithArgs('pg_basebackup', tmp).length > 0 && existsSync(join(tmp, 'base')) && readdirSync(join(tmp, 'base')).length > 0, { timeoutMs: 60_000, intervalMs: 10 });
    const orphans = pidsWithArgs('pg_basebackup', tmp);
    killKeeper(node3);
    await waitGone(create.pid);
    // systemd restarts the unit: `pgha keeper run`, as `keeper create` wrote keeper.json first.
    f.nodes.push(node3);
    await restartKeeper(f, node3);
    const healedAt = instant();

    const report = await s.check('fault 6e: keeper killed during a base backup', { writers: [writer], baseline, faultAt, healedAt, watcher, recoveryBoundMs: RECOVERY_BOUND_MS });
    expectClean(report, reports, 'the restart');
    const rows = await showState(f.monitor.url);
    expect(isPrimaryAndSecondaries(rows)).toBe(true);
    expect(rows.map((r) => r.name).sort()).toEqual(['node1', 'node2', 'node3']);
    expect(existsSync(tmp), 'no leftover <pgdata>.basebackup').toBe(false);
    expect(orphans.filter((p) => pidsWithArgs('pg_basebackup', tmp).includes(p)), 'no pg_basebackup left running from the killed keeper').toEqual([]);
    await allowNetworkClients(node3, net!.cidr);
    expect(Number((await queryNode<{ n: string }>(node3, 'select count(*) as n from ballast'))[0]!.n)).toBe(300000);
  });
});
