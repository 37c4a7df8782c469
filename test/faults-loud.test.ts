/**
 * Issue 17, target 1: a loud death is noticed at once, and nothing else looks like one. On a
 * formation whose monitor and nodes each run in their own network namespace (see
 * faults.test.ts), with a writer and the history checker (nothing lost, no dual primary, every
 * goal change explained):
 *
 * - every process of the primary SIGKILLed (keeper and postmaster; the host, its address and
 *   the link stay up, so its ports refuse): the standby takes writes within 1.0 s of the kill;
 * - no failover, and no loud death in the monitor's log, when only the keeper is SIGKILLed,
 *   when the keeper is SIGSTOPped for 1.5 s, when only Postgres is SIGKILLed (the keeper
 *   restarts it in place), when the monitor is restarted, and when the monitor gets no CPU
 *   for 2 s (SIGSTOP).
 *
 * The rule and its witnesses: docs/timeouts.md, "A loud death".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { delay } from '@pgha/postgres';
import type { NetFormation } from './helpers/net-formation.js';
import { netnsAvailability, type SimNetwork } from './helpers/netns.js';
import { instant, showEvents, type HistoryReport } from './helpers/history.js';
import { expectClean, startFaultSuite, type FaultSession } from './helpers/fault-session.js';
import { killKeeper, killNode, killPostmaster, logMessages, logOffset, monitorLogOf, restartKeeper, restartMonitor, waitGone } from './helpers/crash.js';
import { endAllProcesses, killPid } from './helpers/processes.js';
import type { TestNode } from './helpers/cluster.js';

const availability = netnsAvailability();
const skip = !availability.ok && process.env.PGHA_SKIP_NETNS === '1';
const skipReason = availability.ok ? '' : availability.reason;

/** From the restart of what was stopped to one `primary` and the rest `secondary`, in ms (a rewind of the old primary after the loud death). */
const RECOVERY_BOUND_MS = 60_000;

/**
 * How long the formation is watched after a fault that must not fail over, in ms: past the
 * loud-death path (about 0.4 s), past keeper silence (`nodeUnhealthyTimeoutMs`, 2 s) with its
 * probes, and past the standby's `standbyStreamingTimeoutMs` (3 s). There is nothing to poll
 * for: what is checked is that nothing happens in this window.
 */
const OBSERVE_MS = 4_000;

let net: SimNetwork | undefined;
let f: NetFormation;
let s: FaultSession;
const reports: HistoryReport[] = [];


/**
 * Fault `n` that must change nothing: `fault` strikes the primary (and heals), then the
 * formation is watched for {@link OBSERVE_MS}; the primary must be the same, no goal may have
 * changed, and the monitor must have seen no loud death. With `watched`, the monitor must have
 * seen the primary's keeper connections close and tried its ports (its log says why it was not
 * a loud death): the fault reached the rule, which told it from a death.
 */
async function noFailover(n: number, label: string, fault: (primary: TestNode) => Promise<void>, o: { watched: boolean }): Promise<void> {
  const { before, baseline, writer, watcher } = await s.prepare(n);
  const monitorLog = logOffset(monitorLogOf(f.monitor));
  const faultAt = instant();
  await fault(s.node(before.primary.name));
  await delay(OBSERVE_MS);
  const healedAt = instant();
  const report = await s.check(label, { writers: [writer], baseline, faultAt, healedAt, watcher, recoveryBoundMs: RECOVERY_BOUND_MS });
  expectClean(report, reports, 'the heal');
  expect(report.finalPrimary).toBe(before.primary.name);
  expect(report.goalChanges.map((g) => `${g.node} ${g.from} → ${g.to}: ${g.reason}`)).toEqual([]);
  const said = logMessages(monitorLogOf(f.monitor), monitorLog);
  expect(said.filter((m) => m.includes('died loudly'))).toEqual([]);
  const notLoud = said.filter((m) => m.includes(`"${before.primary.name}": its keeper's connections closed, not a loud death`));
  for (const m of notLoud) console.log(`[issue 17] ${label}: ${m}`);
  if (o.watched) expect(notLoud.length, "the monitor saw the primary's keeper connections close").toBeGreaterThan(0);
}

describe.skipIf(skip)(skip ? `loud deaths (skipped: ${skipReason})` : 'issue 17: a loud death fails over within 1 s, and nothing else looks like one (monitor + 2 nodes, each in its own network namespace)', () => {
  beforeAll(async () => {
    ({ net, f, s } = await startFaultSuite(availability, ['monitor', 'node1', 'node2'], ['node1', 'node2']));
  }, 300_000);

  afterAll(async () => {
    await endAllProcesses();
    await net?.destroy();
    for (const r of reports) console.log(`[issue 17] ${r.fault}: longest write gap ${r.maxWriteGapMs.toFixed(0)} ms, lost ${r.lost.length}, dual-primary windows ${r.dualPrimaryWindows.length}, goal changes ${r.goalChanges.length}`);
  });

  it('every process of the primary SIGKILLed, host up: the standby takes writes within 1.0 s of the kill, nothing lost, and the old primary rejoins', async () => {
    const { before, baseline, writer, watcher } = await s.prepare(171);
    const oldPrimary = s.node(before.primary.name);
    const standby = s.node(before.standby.name);
    const faultAt = instant();
    killNode(oldPrimary);
    const writesBackMs = await new Promise<number>((resolve, reject) => {
      const deadline = faultAt.atMs + 30_000;
      const poll = (): void => {
        const first = writer.acks.find((a) => a.addr === standby.host && a.atMs > faultAt.atMs);
        if (first) resolve(first.atMs - faultAt.atMs);
        else if (performance.now() > deadline) reject(new Error(`no write acknowledged by ${standby.name} within 30 s of the kill`));
        else setTimeout(poll, 10);
      };
      poll();
    });
    await restartKeeper(f, oldPrimary);
    const healedAt = instant();
    const report = await s.check('issue 17a: loud death of the primary', { writers: [writer], baseline, faultAt, healedAt, watcher, recoveryBoundMs: RECOVERY_BOUND_MS });
    expectClean(report, reports, 'the heal');
    expect(report.finalPrimary).toBe(standby.name);
    const failover = (await showEvents(f.monitor.url, 50)).find((e) => e.event_id > baseline.eventId && e.node_name === oldPrimary.name && e.new_goal_state === 'demote_timeout');
    expect(failover?.reason).toMatch(/failed: died loudly: .* no standby streams from it$/);
    console.log(`[issue 17] loud death: kill → first write acknowledged by the new primary ${writesBackMs.toFixed(0)} ms`);
    expect(writesBackMs).toBeLessThan(1_000);
  });

  it("the primary's keeper SIGKILLed (Postgres runs on), restarted later: no failover", () =>
    noFailover(172, "issue 17b: primary's keeper killed", async (primary) => {
      killKeeper(primary);
      await waitGone(primary.keeper.pid);
      await delay(OBSERVE_MS);
      await restartKeeper(f, primary);
    }, { watched: true }));

  it("the primary's keeper SIGSTOPped for 1.5 s: no failover", () =>
    noFailover(173, "issue 17c: primary's keeper paused 1.5 s", async (primary) => {
      killPid(primary.keeper.pid, 'SIGSTOP');
      await delay(1_500);
      killPid(primary.keeper.pid, 'SIGCONT');
    }, { watched: false }));

  it("the primary's Postgres SIGKILLed, its keeper alive: the keeper restarts it in place, no failover", () =>
    noFailover(174, "issue 17d: primary's Postgres killed", async (primary) => {
      expect(killPostmaster(primary.pgdata)).toBeDefined();
    }, { watched: false }));

  it('the monitor restarted (SIGTERM, then `pgha monitor run`): no failover', () =>
    noFailover(175, 'issue 17e: monitor restarted', async () => {
      killPid(f.monitor.proc.pid, 'SIGTERM');
      await restartMonitor(f);
    }, { watched: false }));

  it('the monitor starved of CPU for 2 s (SIGSTOP, then SIGCONT): no failover', () =>
    noFailover(176, 'issue 17f: monitor starved 2 s', async () => {
      killPid(f.monitor.proc.pid, 'SIGSTOP');
      await delay(2_000);
      killPid(f.monitor.proc.pid, 'SIGCONT');
    }, { watched: true }));
});
