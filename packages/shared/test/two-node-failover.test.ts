import {
  DEFAULT_FORMATION_SETTINGS,
  decide,
  groupPhase,
  parseLsn,
  writableGoalHolders,
} from '@pgha/shared';
import { describe, expect, it } from 'vitest';
import { groupFacts, T0, type NodeSpec } from './fact-builders.js';
import { SimulatedGroup } from './simulate.js';

const { nodeUnhealthyTimeoutMs } = DEFAULT_FORMATION_SETTINGS;
const LSN = parseLsn('0/5000000');

/** What a dead primary machine looks like to the monitor: probe fails, keeper silent. */
const deadPrimary: NodeSpec = { health: 'bad', keeperSilentMs: nodeUnhealthyTimeoutMs + 1 };
/** The standby's WAL receiver lost its upstream when the primary died. */
const orphanStandby: NodeSpec = { notStreamingForMs: nodeUnhealthyTimeoutMs + 1 };

/** Node 1 primary and node 2 secondary at T0, then node 1's machine dies. */
function primaryMachineDies(): SimulatedGroup {
  const group = new SimulatedGroup(groupFacts({ nowMs: T0 }).primary({ lsn: LSN }).standby().build());
  // The machine dies at T0: no more reports or successful probes from node 1.
  return group.set(1, { health: 'bad' }).advance(200).report(2, { upstreamStreaming: false });
}

describe('two-node failover', () => {
  it('the primary dies: demote_timeout + prepare_promotion → stop_replication → wait_primary, old primary demoted', () => {
    const group = primaryMachineDies();

    group.advance(nodeUnhealthyTimeoutMs - 199).report(2).decide('timer');
    expect(group.history.slice(0, 2).map((a) => [a.nodeId, a.goalState, a.rule])).toEqual([
      [1, 'demote_timeout', 'failover-start'],
      [2, 'prepare_promotion', 'failover-start'],
    ]);
    expect(group.history[0]?.reason).toMatch(/Postgres probe fails, keeper silent for \d+ ms, no standby streams/);
    expect(group.history[1]?.reason).toBe('node 2 "node2" wins the election (candidate priority 50, LSN 0/5000000)');
    expect(groupPhase(group.facts)).toBe('failover');
    expect(writableGoalHolders(group.facts)).toEqual([]);

    group.advance(100).reach(2).decide('report');
    expect(group.lastGoals()).toEqual({ 2: 'stop_replication' });
    expect(group.lastRules()).toEqual(['promote-candidate']);
    expect(writableGoalHolders(group.facts)).toEqual([2]);

    group.advance(100).reach(2, { reportedTimeline: 2 }).decide('report');
    expect(group.lastGoals()).toEqual({ 1: 'demoted', 2: 'wait_primary' });
    expect(group.lastRules()).toEqual(['promotion-done']);
    expect(groupPhase(group.facts)).toBe('steady');

    group.advance(100).reach(2).decide('report');
    expect(group.lastAssignments).toEqual([]);
    expect(writableGoalHolders(group.facts)).toEqual([2]);
    expect(group.violations).toEqual([]);
  });

  it('while the dead primary is within nodeUnhealthyTimeoutMs, the monitor waits: it neither fails over nor blames the standby', () => {
    // The monitor decides on every report and probe, so it always sees this window.
    const group = primaryMachineDies();
    while (group.nowMs + 500 <= T0 + nodeUnhealthyTimeoutMs) group.advance(500).report(2).decide('health');
    expect(group.nowMs).toBe(T0 + 1_700);
    expect(group.history).toEqual([]);
    expect([group.goal(1), group.goal(2)]).toEqual(['primary', 'secondary']);

    group.advance(nodeUnhealthyTimeoutMs).report(2).decide('timer');
    expect(group.goal(2)).toBe('prepare_promotion');
  });

  it('the old primary comes back: demoted → catchingup → secondary, and the new primary turns sync on', () => {
    const group = primaryMachineDies().advance(nodeUnhealthyTimeoutMs).report(2).decide('timer');
    group.reach(2).decide().reach(2, { reportedTimeline: 2 }).decide().reach(2).decide();
    expect([group.goal(1), group.goal(2)]).toEqual(['demoted', 'wait_primary']);

    // While node 1 stays away nothing changes.
    group.advance(60_000).report(2).decide('timer');
    expect(group.lastAssignments).toEqual([]);

    // Its keeper returns, reaches demoted (Postgres stopped, so the probe still fails).
    group.advance(100).report(2).reach(1, { postgresRunning: false }).decide('report');
    expect(group.lastGoals()).toEqual({ 1: 'catchingup' });
    expect(group.lastRules()).toEqual(['demoted-rejoin']);

    // pg_rewind, restart as a standby of node 2 on timeline 2.
    group.advance(100).report(2).reach(1, {
      postgresRunning: true, upstreamStreaming: true, reportedTimeline: 2, reportedLsn: group.node(2).reportedLsn,
    }).set(1, { health: 'good' }).decide('report');
    expect(group.lastGoals()).toEqual({ 1: 'secondary' });

    group.advance(100).report(2).reach(1).decide('report');
    expect(group.lastGoals()).toEqual({ 2: 'primary' });
    expect(group.lastRules()).toEqual(['enable-sync']);

    group.advance(100).reach(2).report(1).decide('report');
    expect(group.lastAssignments).toEqual([]);
    expect(group.facts.nodes.map((n) => [n.nodeId, n.reportedState, n.goalState])).toEqual([
      [1, 'secondary', 'secondary'],
      [2, 'primary', 'primary'],
    ]);
    expect(group.violations).toEqual([]);
  });

  it("the primary's keeper reports Postgres down and the probe agrees: failover without waiting for silence", () => {
    const facts = groupFacts({ nowMs: T0 })
      .primary({ health: 'bad', postgresRunning: false })
      .standby({ notStreamingForMs: 100 })
      .build();
    expect(decide(facts).assignments.map((a) => [a.nodeId, a.goalState])).toEqual([
      [1, 'demote_timeout'],
      [2, 'prepare_promotion'],
    ]);
  });

  it('the candidate is promoted even if the old primary never returns; the old primary is never assigned a writable goal again', () => {
    const group = primaryMachineDies().advance(nodeUnhealthyTimeoutMs).report(2).decide('timer');
    for (let i = 0; i < 6; i++) group.advance(100).reach(2).decide();
    expect(group.history.filter((a) => a.nodeId === 1).map((a) => a.goalState)).toEqual(['demote_timeout', 'demoted']);
    expect(group.goal(2)).toBe('wait_primary');
  });

  it('every interrupted prefix of the failover (candidate keeper silent for a while, then back) still converges', () => {
    // As in Patroni's test_quorum.py: replay the sequence, interrupt it after each step.
    const steps = 8;
    for (let cut = 0; cut <= steps; cut++) {
      const group = primaryMachineDies().advance(nodeUnhealthyTimeoutMs).report(2).decide('timer');
      for (let i = 0; i < cut; i++) group.advance(100).reach(2).decide();
      // The candidate's keeper stalls for a while; the monitor keeps deciding on timers.
      for (let i = 0; i < 5; i++) group.advance(1_000).decide('timer');
      for (let i = 0; i < steps; i++) group.advance(100).reach(2).decide();
      expect(group.violations, `cut after ${cut} steps`).toEqual([]);
      expect([group.node(2).reportedState, group.goal(2)], `cut after ${cut} steps`).toEqual(['wait_primary', 'wait_primary']);
      expect(writableGoalHolders(group.facts)).toEqual([2]);
    }
  });
});

describe('no failover when it would be unsafe or unnecessary', () => {
  const cases: Array<[string, () => ReturnType<ReturnType<typeof groupFacts>['build']>]> = [
    ["only the primary's keeper crashed (keeper silent, Postgres answers the probe)", () =>
      groupFacts().primary({ keeperSilentMs: 60_000 }).standby().build()],
    ["the primary's keeper is silent and the standby lost streaming, but the probe still succeeds", () =>
      groupFacts().primary({ keeperSilentMs: 60_000 }).standby(orphanStandby).build()],
    ['the probe fails but a standby still streams from the primary', () =>
      groupFacts().primary(deadPrimary).standby().build()],
    ['the probe result is unknown', () =>
      groupFacts().primary({ ...deadPrimary, health: 'unknown' }).standby(orphanStandby).build()],
    ['the primary ran in wait_primary (synchronous replication off: it may have acknowledged writes alone)', () =>
      groupFacts().primary({ ...deadPrimary, state: 'wait_primary' }).standby(orphanStandby).build()],
    ['the primary was told wait_primary but had not reported it yet', () =>
      groupFacts().primary({ ...deadPrimary, reportedState: 'primary', goalState: 'wait_primary' }).standby(orphanStandby).build()],
    ['the only standby has candidate priority 0', () =>
      groupFacts().primary(deadPrimary).standby({ ...orphanStandby, candidatePriority: 0 }).build()],
    ['the only standby is still catchingup', () =>
      groupFacts().primary(deadPrimary).standby({ ...orphanStandby, state: 'catchingup' }).build()],
    ['the only standby was assigned secondary but has not reached it', () =>
      groupFacts().primary(deadPrimary).standby({ ...orphanStandby, reportedState: 'catchingup', goalState: 'secondary' }).build()],
    ["the standby's own keeper is silent too", () =>
      groupFacts().primary(deadPrimary).standby({ ...orphanStandby, keeperSilentMs: nodeUnhealthyTimeoutMs + 1 }).build()],
    ["the standby's Postgres is not running", () =>
      groupFacts().primary(deadPrimary).standby({ ...orphanStandby, postgresRunning: false }).build()],
  ];

  it.each(cases)('%s', (_label, build) => {
    const facts = build();
    const decision = decide(facts, { type: 'evaluate', cause: 'health' });
    const promoted = decision.assignments.filter((a) => a.goalState === 'prepare_promotion' || a.goalState === 'stop_replication');
    expect(promoted).toEqual([]);
    expect(decision.rule).not.toBe('failover-start');
    expect(decision.assignments.find((a) => a.nodeId === 1 && a.goalState === 'demote_timeout')).toBeUndefined();
  });
});
