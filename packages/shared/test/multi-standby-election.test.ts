/**
 * Failover with several standbys: which one is promoted. DESIGN.md: "promote only a node at or
 * past the last LSN that synchronous replication acknowledged"; issue 3: the standbys
 * `report_lsn`, the highest candidate priority wins, ties by the most advanced LSN, and a
 * winner behind the most advanced standby goes `fast_forward` first.
 */
import { DEFAULT_FORMATION_SETTINGS, decide, parseLsn, writableGoalHolders, type GroupFacts } from '@pgha/shared';
import { describe, expect, it } from 'vitest';
import { groupFacts, T0, type NodeSpec } from './fact-builders.js';
import { SimulatedGroup } from './simulate.js';

const { nodeUnhealthyTimeoutMs, electionTimeoutMs } = DEFAULT_FORMATION_SETTINGS;
const deadPrimary: NodeSpec = { health: 'bad', keeperSilentMs: nodeUnhealthyTimeoutMs + 1, lsn: '0/7000000' };
const orphan = (spec: NodeSpec = {}): NodeSpec => ({ notStreamingForMs: nodeUnhealthyTimeoutMs + 1, ...spec });

/**
 * Node 1 (the primary) is dead at T0: failover-start sends every secondary to report_lsn; every
 * node but node 1 and those in `silent` keeps reporting, the voters among them reach
 * report_lsn, and the monitor decides (after electionTimeoutMs when a voter is silent).
 * Returns the group after that decision.
 */
function election(facts: GroupFacts, silent: number[] = []): SimulatedGroup {
  const group = new SimulatedGroup(facts).decide('timer');
  expect(group.goal(1)).toBe('demote_timeout');
  const alive = group.facts.nodes.map((n) => n.nodeId).filter((id) => id !== 1 && !silent.includes(id));
  const reportAll = () => alive.forEach((id) => (group.goal(id) === 'report_lsn' ? group.reach(id) : group.report(id)));
  group.advance(100);
  reportAll();
  group.decide('report');
  if (silent.some((id) => group.goal(id) === 'report_lsn')) {
    expect(group.lastAssignments, 'the election waits for every voter until electionTimeoutMs').toEqual([]);
    group.advance(electionTimeoutMs);
    reportAll();
    group.decide('timer');
  }
  return group;
}

/** Nodes assigned prepare_promotion or fast_forward in the last decision. */
function chosen(group: SimulatedGroup): number[] {
  return group.lastAssignments.filter((a) => a.goalState === 'prepare_promotion' || a.goalState === 'fast_forward').map((a) => a.nodeId);
}

describe('choosing the standby to promote', () => {
  it('with two or more secondaries, failover-start sends each to report_lsn and promotes nobody yet', () => {
    const facts = groupFacts().primary(deadPrimary).standby(orphan({ lsn: '0/6000000' })).standby(orphan({ lsn: '0/6500000' })).build();
    const decision = decide(facts);
    expect(decision.assignments.map((a) => [a.nodeId, a.goalState, a.rule])).toEqual([
      [1, 'demote_timeout', 'failover-start'],
      [2, 'report_lsn', 'failover-start'],
      [3, 'report_lsn', 'failover-start'],
    ]);
    expect(decision.assignments[1]?.reason).toBe('node 2 "node2" reports its LSN for the election');
    expect(writableGoalHolders(facts)).toEqual([1]);
  });

  it('equal candidate priorities: the most advanced standby wins, whatever its node id', () => {
    const group = election(
      groupFacts({ nowMs: T0 })
        .primary(deadPrimary)
        .standby(orphan({ lsn: '0/6000000' }))
        .standby(orphan({ lsn: '0/6500000' }))
        .standby(orphan({ lsn: '0/6400000' }))
        .build(),
    );
    expect(group.lastGoals()).toEqual({ 3: 'prepare_promotion' });
    expect(group.lastRules()).toEqual(['election']);
    expect(group.lastAssignments[0]?.reason).toBe('node 3 "node3" wins the election (candidate priority 50, LSN 0/6500000)');
    expect(group.violations).toEqual([]);
  });

  it('the highest candidate priority wins; equal priorities and LSNs: the lowest node id', () => {
    const byPriority = election(
      groupFacts().primary(deadPrimary)
        .standby(orphan({ lsn: '0/6000000', candidatePriority: 50 }))
        .standby(orphan({ lsn: '0/6000000', candidatePriority: 90 }))
        .build(),
    );
    expect(chosen(byPriority)).toEqual([3]);
    const byNodeId = election(groupFacts().primary(deadPrimary).standby(orphan({ lsn: '0/6000000' })).standby(orphan({ lsn: '0/6000000' })).build());
    expect(chosen(byNodeId)).toEqual([2]);
  });

  it('a standby that is not eligible (catchingup, priority 0, Postgres down, keeper silent) is never chosen', () => {
    // All at the same LSN; each would win on priority if it were eligible.
    const group = election(
      groupFacts({ nowMs: T0 })
        .primary(deadPrimary)
        .standby(orphan({ lsn: '0/6000000', candidatePriority: 100, state: 'catchingup' }))
        .standby(orphan({ lsn: '0/6000000', candidatePriority: 0 }))
        .standby(orphan({ lsn: '0/6000000', candidatePriority: 100, postgresRunning: false }))
        // Not a quorum standby: it cannot hold the only copy of an acknowledged commit.
        .standby({ lsn: '0/6000000', candidatePriority: 100, keeperSilentMs: nodeUnhealthyTimeoutMs + 1, replicationQuorum: false })
        .standby(orphan({ lsn: '0/6000000', candidatePriority: 10 }))
        .build(),
      [5],
    );
    expect(group.goal(2), 'a catchingup standby is no voter').toBe('catchingup');
    expect(group.lastGoals()).toEqual({ 6: 'prepare_promotion' });
    expect(group.lastAssignments[0]?.reason).toMatch(/decided after 5000 ms without node 5 "node5"/);
    expect(group.violations).toEqual([]);
  });

  it('after promotion the old primary is demoted and the other standbys join_secondary → secondary; sync back on', () => {
    const group = election(
      groupFacts({ nowMs: T0 }).primary(deadPrimary).standby(orphan({ lsn: '0/6000000' })).standby(orphan({ lsn: '0/5000000' })).build(),
    );
    expect(group.lastGoals()).toEqual({ 2: 'prepare_promotion' });

    group.advance(100).reach(2).report(3).decide();
    expect(group.lastGoals()).toEqual({ 2: 'stop_replication' });
    expect(group.lastRules()).toEqual(['promote-candidate']);

    group.advance(100).reach(2, { reportedTimeline: 2 }).report(3).decide();
    expect(group.lastGoals()).toEqual({ 1: 'demoted', 2: 'wait_primary', 3: 'join_secondary' });
    expect(group.lastRules()).toEqual(['promotion-done']);
    expect(group.lastAssignments.find((a) => a.nodeId === 3)?.reason).toBe('node 3 "node3" follows the new primary node 2 "node2"');

    // node 3 re-points once node 2 has settled in wait_primary.
    group.advance(100).reach(2).reach(3).decide();
    expect(group.lastGoals()).toEqual({ 3: 'secondary' });
    expect(group.lastRules()).toEqual(['standby-caught-up']);
    group.advance(100).report(2).reach(3).decide();
    expect(group.lastGoals()).toEqual({ 2: 'primary' });
    group.advance(100).reach(2).report(3).decide();
    expect(group.lastAssignments).toEqual([]);
    expect(group.states()).toEqual([
      [1, 'primary', 'demoted'],
      [2, 'primary', 'primary'],
      [3, 'secondary', 'secondary'],
    ]);
    expect(writableGoalHolders(group.facts)).toEqual([2]);
    expect(group.violations).toEqual([]);
  });
});

describe('promotion never goes below an acknowledged commit', () => {
  it('a more advanced standby whose keeper comes back after the election: the candidate fetches its WAL (fast_forward) before promoting', () => {
    // Node 3 is an asynchronous standby, so the election need not wait for it past
    // electionTimeoutMs; node 2 wins. Before node 2 promotes, node 3's keeper reports more WAL.
    const group = election(
      groupFacts({ nowMs: T0 })
        .primary(deadPrimary)
        .standby(orphan({ lsn: '0/6000000' }))
        .standby({ lsn: '0/5000000', keeperSilentMs: nodeUnhealthyTimeoutMs + 1, replicationQuorum: false })
        .build(),
      [3],
    );
    expect(group.lastGoals()).toEqual({ 2: 'prepare_promotion' });

    group.advance(100).reach(2).reach(3, { reportedLsn: parseLsn('0/6800000'), upstreamStreaming: false }).decide('report');
    expect(group.lastGoals(), 'node 2 must not promote below node 3').toEqual({ 2: 'fast_forward' });
    expect(group.lastRules()).toEqual(['candidate-behind']);

    group.advance(100).reach(2).report(3).decide('report');
    expect(group.node(2).reportedLsn).toBe(parseLsn('0/6800000'));
    expect(group.lastGoals()).toEqual({ 2: 'prepare_promotion' });
    expect(group.lastRules()).toEqual(['fast-forward-done']);
    group.advance(100).reach(2).report(3).decide('report');
    expect(group.lastGoals()).toEqual({ 2: 'stop_replication' });
    expect(group.violations).toEqual([]);
  });

  it('a voter that answers before electionTimeoutMs takes part: the more advanced one wins', () => {
    const group = new SimulatedGroup(
      groupFacts({ nowMs: T0 })
        .primary(deadPrimary)
        .standby(orphan({ lsn: '0/6000000' }))
        .standby({ lsn: '0/5000000', keeperSilentMs: nodeUnhealthyTimeoutMs + 1, replicationQuorum: false })
        .build(),
    ).decide('timer');
    group.advance(100).reach(2).decide();
    expect(group.lastAssignments).toEqual([]);
    group.advance(electionTimeoutMs - 200).report(2).reach(3, { reportedLsn: parseLsn('0/6800000') }).decide();
    expect(group.lastGoals()).toEqual({ 3: 'prepare_promotion' });
    expect(group.violations).toEqual([]);
  });

  it('a quorum standby whose keeper is silent holds the election, even after electionTimeoutMs: it may have the only copy of a commit', () => {
    const group = election(
      groupFacts({ nowMs: T0 })
        .primary(deadPrimary)
        .standby(orphan({ lsn: '0/6000000' }))
        .standby({ lsn: '0/5000000', keeperSilentMs: nodeUnhealthyTimeoutMs + 1 })
        .build(),
      [3],
    );
    expect(group.lastAssignments).toEqual([]);
    group.advance(60_000).report(2).decide('timer');
    expect(group.history.filter((a) => ['prepare_promotion', 'fast_forward', 'stop_replication'].includes(a.goalState))).toEqual([]);
  });

  it('promote-candidate re-checks: a candidate whose priority was set to 0 meanwhile is not promoted', () => {
    const facts = groupFacts()
      .primary({ ...deadPrimary, reportedState: 'primary', goalState: 'demote_timeout' })
      .standby(orphan({ state: 'prepare_promotion', candidatePriority: 0, lsn: '0/6000000' }))
      .standby(orphan({ lsn: '0/6000000' }))
      .build();
    const decision = decide(facts);
    expect(decision.assignments.filter((a) => a.goalState === 'stop_replication')).toEqual([]);
    expect(decision.assignments.map((a) => [a.nodeId, a.goalState, a.rule])).toEqual([[2, 'secondary', 'candidate-changed']]);
  });

  it('a quorum standby that is unreachable but last reported more WAL than the candidate blocks the promotion', () => {
    // synchronous_standby_names was ANY 1 (pgha_node_2, pgha_node_3): a commit acknowledged by
    // node 3 alone is lost if node 2 is promoted. The monitor even knows node 3 had more WAL.
    const facts = groupFacts({ nowMs: T0 })
      .primary({ health: 'bad', postgresRunning: false, lsn: '0/7000000' })
      .standby({ lsn: '0/5000000', notStreamingForMs: 1_000 })
      .standby({ lsn: '0/6000000', health: 'bad', keeperSilentMs: nodeUnhealthyTimeoutMs + 1 })
      .build();
    const decision = decide(facts, { type: 'evaluate', cause: 'health' });
    expect(decision.assignments.filter((a) => a.goalState === 'prepare_promotion' || a.goalState === 'stop_replication')).toEqual([]);
  });

  it('a more advanced priority-0 quorum standby: the candidate fetches its WAL (fast_forward) and promotes at or past its LSN', () => {
    const group = election(
      groupFacts({ nowMs: T0 })
        .primary(deadPrimary)
        .standby(orphan({ lsn: '0/6000000' }))
        .standby(orphan({ lsn: '0/6800000', candidatePriority: 0 }))
        .build(),
    );
    expect(group.lastGoals()).toEqual({ 2: 'fast_forward' });
    for (let i = 0; i < 4; i++) group.advance(100).reach(2).report(3).decide();
    const promotions = group.history.filter((a) => a.goalState === 'stop_replication');
    expect(promotions.map((a) => a.nodeId)).toEqual([2]);
    expect(group.node(2).reportedLsn >= parseLsn('0/6800000')).toBe(true);
    expect(group.violations).toEqual([]);
  });
});
