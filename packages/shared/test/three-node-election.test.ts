/**
 * The failover election with three or more nodes (issue 3): the standbys `report_lsn`; among the
 * eligible ones (candidate priority > 0, keeper alive, Postgres running) the highest candidate
 * priority wins, ties by the most advanced LSN; a winner behind the most advanced standby goes
 * `fast_forward` first. The election never waits forever on a silent voter: after
 * `electionTimeoutMs` it decides with those that answered, as long as the acknowledged-commit
 * rule holds (commits waited for n of the k synchronous standbys, so k − n + 1 of them must
 * report).
 */
import {
  CANDIDATE_STATES,
  DEFAULT_FORMATION_SETTINGS,
  decide,
  elect,
  groupNote,
  parseLsn,
  writableGoalHolders,
  type FormationSettings,
  type GroupFacts,
  type NodeState,
} from '@pgha/shared';
import { describe, expect, it } from 'vitest';
import { groupFacts, nodeOf, T0, type NodeSpec } from './fact-builders.js';
import { SimulatedGroup } from './simulate.js';

const { nodeUnhealthyTimeoutMs, electionTimeoutMs } = DEFAULT_FORMATION_SETTINGS;
const SILENT = nodeUnhealthyTimeoutMs + 1;
const deadPrimary: NodeSpec = { health: 'bad', keeperSilentMs: SILENT, lsn: '0/7000000' };
const orphan = (spec: NodeSpec = {}): NodeSpec => ({ notStreamingForMs: SILENT, ...spec });

/** The group after the dead primary's failover started (failover-start ran). */
function failoverStarted(facts: GroupFacts): SimulatedGroup {
  const group = new SimulatedGroup(facts).decide('timer');
  expect(group.goal(1)).toBe('demote_timeout');
  return group;
}

/** 100 ms pass; every node but node 1 and `silent` reaches its goal; the monitor decides. */
function round(group: SimulatedGroup, silent: number[] = [], ms = 100): SimulatedGroup {
  group.advance(ms);
  for (const n of group.facts.nodes) if (n.nodeId !== 1 && !silent.includes(n.nodeId)) group.reach(n.nodeId);
  return group.decide('report');
}

/** Runs rounds until a node has settled in wait_primary (or primary), or `max` rounds pass. */
function untilPromoted(group: SimulatedGroup, silent: number[] = [], max = 12): SimulatedGroup {
  for (let i = 0; i < max; i++) {
    round(group, silent);
    const promoted = group.facts.nodes.find((n) => ['wait_primary', 'primary'].includes(n.goalState) && n.reportedState === n.goalState);
    if (promoted) break;
  }
  return group;
}

/** Node ids ever assigned fast_forward, prepare_promotion or stop_replication, in order. */
function candidates(group: SimulatedGroup): Array<[number, NodeState]> {
  return group.history.filter((a) => CANDIDATE_STATES.has(a.goalState)).map((a) => [a.nodeId, a.goalState]);
}

describe('candidate priorities 50/50/0', () => {
  it('the priority-0 standby is the most advanced: the priority-50 one wins, fast-forwards from it first, and is promoted; the 0 one never is', () => {
    const group = failoverStarted(
      groupFacts({ nowMs: T0 })
        .primary({ ...deadPrimary, candidatePriority: 50 })
        .standby(orphan({ candidatePriority: 50, lsn: '0/6000000' }))
        .standby(orphan({ candidatePriority: 0, lsn: '0/6800000' }))
        .build(),
    );
    expect(group.lastGoals()).toEqual({ 1: 'demote_timeout', 2: 'report_lsn', 3: 'report_lsn' });

    round(group);
    expect(group.lastAssignments.map((a) => [a.nodeId, a.goalState, a.rule, a.reason])).toEqual([
      [2, 'fast_forward', 'election',
        'node 2 "node2" wins the election (candidate priority 50, LSN 0/6000000); it first fetches the WAL up to 0/6800000 from node 3 "node3"'],
    ]);

    round(group);
    expect(group.node(2).reportedLsn).toBe(parseLsn('0/6800000'));
    expect(group.lastAssignments.map((a) => [a.nodeId, a.goalState, a.rule])).toEqual([[2, 'prepare_promotion', 'fast-forward-done']]);
    round(group);
    expect(group.lastGoals()).toEqual({ 2: 'stop_replication' });
    round(group);
    expect(group.lastGoals()).toEqual({ 1: 'demoted', 2: 'wait_primary', 3: 'join_secondary' });

    for (let i = 0; i < 4; i++) round(group);
    expect(group.states()).toEqual([
      [1, 'primary', 'demoted'],
      [2, 'primary', 'primary'],
      [3, 'secondary', 'secondary'],
    ]);
    expect(candidates(group)).toEqual([[2, 'fast_forward'], [2, 'prepare_promotion'], [2, 'stop_replication']]);
    expect(group.violations).toEqual([]);
  });

  it('the priority-50 standby is down: nobody is promoted, the priority-0 one never', () => {
    const group = failoverStarted(
      groupFacts({ nowMs: T0 })
        .primary(deadPrimary)
        .standby(orphan({ candidatePriority: 50, lsn: '0/6000000', postgresRunning: false }))
        .standby(orphan({ candidatePriority: 0, lsn: '0/6800000' }))
        .build(),
    );
    for (let i = 0; i < 5; i++) round(group, [], electionTimeoutMs);
    expect(candidates(group)).toEqual([]);
    expect(writableGoalHolders(group.facts)).toEqual([]);
    const result = elect(group.facts, nodeOf(group.facts, 1));
    expect(result).toEqual({ why: 'no promotion: no reporting standby is eligible (candidate priority > 0, keeper alive, Postgres running)' });
  });
});

describe('ranking', () => {
  it('equal candidate priorities: the most advanced LSN wins, no fast_forward needed', () => {
    const group = failoverStarted(
      groupFacts({ nowMs: T0 }).primary(deadPrimary).standby(orphan({ lsn: '0/6000000' })).standby(orphan({ lsn: '0/6100000' })).build(),
    );
    round(group);
    expect(group.lastGoals()).toEqual({ 3: 'prepare_promotion' });
  });

  it('a higher candidate priority wins over a more advanced standby; ties among the highest are broken by LSN', () => {
    const group = failoverStarted(
      groupFacts({ nowMs: T0 })
        .primary(deadPrimary)
        .standby(orphan({ candidatePriority: 90, lsn: '0/6000000' }))
        .standby(orphan({ candidatePriority: 90, lsn: '0/6200000' }))
        .standby(orphan({ candidatePriority: 30, lsn: '0/6800000' }))
        .build(),
    );
    round(group);
    expect(group.lastGoals()).toEqual({ 3: 'fast_forward' });
    untilPromoted(group);
    expect(group.facts.nodes.filter((n) => n.goalState === 'wait_primary').map((n) => [n.nodeId, n.reportedLsn])).toEqual([[3, parseLsn('0/6800000')]]);
    expect(group.violations).toEqual([]);
  });
});

describe('election timeout', () => {
  it('one of three voters silent, number_sync_standbys 2 (k=3, n=2: 2 must report): decides after electionTimeoutMs without it', () => {
    const group = failoverStarted(
      groupFacts({ nowMs: T0, settings: { numberSyncStandbys: 2 } })
        .primary(deadPrimary)
        .standby(orphan({ lsn: '0/6000000' }))
        .standby(orphan({ lsn: '0/6400000' }))
        .standby(orphan({ lsn: '0/5000000', keeperSilentMs: SILENT }))
        .build(),
    );
    expect(group.lastGoals()).toEqual({ 1: 'demote_timeout', 2: 'report_lsn', 3: 'report_lsn', 4: 'report_lsn' });
    round(group, [4]);
    expect(group.lastAssignments, 'waits for node 4 first').toEqual([]);
    round(group, [4], electionTimeoutMs - 200);
    expect(group.lastAssignments, 'still within electionTimeoutMs').toEqual([]);
    round(group, [4], 100);
    expect(group.lastAssignments.map((a) => [a.nodeId, a.goalState, a.rule, a.reason])).toEqual([
      [3, 'prepare_promotion', 'election',
        `node 3 "node3" wins the election (candidate priority 50, LSN 0/6400000) (decided after ${electionTimeoutMs} ms without node 4 "node4")`],
    ]);
    untilPromoted(group, [4]);
    expect(writableGoalHolders(group.facts)).toEqual([3]);
    expect(group.violations).toEqual([]);
  });

  it('one of three voters silent without replication quorum (k=2, n=1: 2 must report): decides after electionTimeoutMs', () => {
    const group = failoverStarted(
      groupFacts({ nowMs: T0 })
        .primary(deadPrimary)
        .standby(orphan({ lsn: '0/6000000' }))
        .standby(orphan({ lsn: '0/6400000' }))
        .standby({ lsn: '0/6800000', keeperSilentMs: SILENT, replicationQuorum: false })
        .build(),
    );
    round(group, [4]);
    expect(group.lastAssignments).toEqual([]);
    round(group, [4], electionTimeoutMs);
    expect(group.lastGoals()).toEqual({ 3: 'prepare_promotion' });
  });

  it('number_sync_standbys 0, two quorum standbys, one silent: k=2, n=1 needs k−n+1 = 2 reporting → no election, even long after electionTimeoutMs, and elect() says why', () => {
    const group = failoverStarted(
      groupFacts({ nowMs: T0 })
        .primary(deadPrimary)
        .standby(orphan({ lsn: '0/6400000' }))
        .standby({ lsn: '0/6000000', keeperSilentMs: SILENT })
        .build(),
    );
    for (let i = 0; i < 6; i++) round(group, [3], electionTimeoutMs);
    expect(candidates(group)).toEqual([]);
    expect(elect(group.facts, nodeOf(group.facts, 1))).toEqual({
      why: 'no promotion: 1 of 2 synchronous standbys reported and 2 are needed to be sure to keep every acknowledged commit (silent: node 3 "node3")',
    });

    // Node 3 comes back: the election completes, and node 2 (more advanced) wins.
    round(group);
    expect(group.lastGoals()).toEqual({ 2: 'prepare_promotion' });
    expect(group.violations).toEqual([]);
  });

  it('the timeout counts from the latest goal change among the voters', () => {
    const settings: Partial<FormationSettings> = { numberSyncStandbys: 2 };
    const facts = (latestAgoMs: number) =>
      groupFacts({ nowMs: T0, settings })
        .primary({ ...deadPrimary, reportedState: 'primary', goalState: 'demote_timeout' })
        .standby(orphan({ state: 'report_lsn', goalChangedAgoMs: electionTimeoutMs + 1_000 }))
        .standby(orphan({ state: 'report_lsn', goalChangedAgoMs: latestAgoMs }))
        .standby({ reportedState: 'secondary', goalState: 'report_lsn', keeperSilentMs: SILENT, goalChangedAgoMs: electionTimeoutMs + 1_000 })
        .build();
    expect(decide(facts(electionTimeoutMs - 1)).assignments).toEqual([]);
    expect(decide(facts(electionTimeoutMs)).assignments.map((a) => [a.nodeId, a.goalState])).toEqual([[2, 'prepare_promotion']]);
  });

  it('without goalChangedMs only "every voter answered" decides', () => {
    const facts = groupFacts({ nowMs: T0 + 600_000, settings: { numberSyncStandbys: 2 } })
      .primary({ ...deadPrimary, reportedState: 'primary', goalState: 'demote_timeout' })
      .standby(orphan({ state: 'report_lsn' }))
      .standby(orphan({ state: 'report_lsn' }))
      .standby({ reportedState: 'secondary', goalState: 'report_lsn', keeperSilentMs: SILENT })
      .build();
    expect(decide(facts).assignments).toEqual([]);
  });
});

describe('the promotion never goes below a synchronously acknowledged commit', () => {
  /**
   * The old primary ran with ANY 1 (pgha_node_2, pgha_node_3, pgha_node_4); its last
   * acknowledged commit, 0/6800000, reached node 4 only. Node 2 has the highest priority.
   */
  const ACKED = parseLsn('0/6800000');
  function lastCommitOnNode4(node4: NodeSpec = {}): GroupFacts {
    return groupFacts({ nowMs: T0 })
      .primary({ ...deadPrimary, synchronousStandbyNames: 'ANY 1 (pgha_node_2, pgha_node_3, pgha_node_4)' })
      .standby(orphan({ candidatePriority: 100, lsn: '0/6000000' }))
      .standby(orphan({ candidatePriority: 50, lsn: '0/6400000' }))
      .standby(orphan({ candidatePriority: 0, lsn: ACKED, ...node4 }))
      .build();
  }

  it('the winner fetches the commit from the priority-0 standby that has it before it promotes', () => {
    const group = untilPromoted(failoverStarted(lastCommitOnNode4()));
    const promotions = group.history.filter((a) => a.goalState === 'stop_replication').map((a) => a.nodeId);
    expect(promotions).toEqual([2]);
    expect(group.node(2).reportedLsn >= ACKED).toBe(true);
    expect(group.history.map((a) => [a.nodeId, a.goalState, a.rule]).filter(([id]) => id === 2)).toEqual([
      [2, 'report_lsn', 'failover-start'],
      [2, 'fast_forward', 'election'],
      [2, 'prepare_promotion', 'fast-forward-done'],
      [2, 'stop_replication', 'promote-candidate'],
      [2, 'wait_primary', 'promotion-done'],
    ]);
    expect(group.violations).toEqual([]);
  });

  it('the standby with the commit is silent: no promotion, whatever the timeout (k=3, n=1: all 3 must report)', () => {
    const group = failoverStarted(lastCommitOnNode4({ keeperSilentMs: SILENT }));
    for (let i = 0; i < 5; i++) round(group, [4], electionTimeoutMs);
    expect(candidates(group)).toEqual([]);
  });

  it('a standby the old primary still named (it had not applied the change yet) counts as synchronous too', () => {
    // Node 4 left the synchronous set for maintenance, but the old primary last reported names
    // that still include it: a commit may be on node 4 alone.
    const named = (names: string, lsn4: NodeSpec['lsn'] = ACKED) =>
      groupFacts({ nowMs: T0 })
        .primary({ ...deadPrimary, reportedState: 'primary', goalState: 'demote_timeout', synchronousStandbyNames: names })
        .standby(orphan({ state: 'report_lsn', lsn: '0/6000000' }))
        .standby(orphan({ state: 'report_lsn', lsn: '0/6400000' }))
        .standby({ state: 'maintenance', lsn: lsn4, keeperSilentMs: SILENT })
        .build();
    expect(decide(named('ANY 1 (pgha_node_2, pgha_node_3, pgha_node_4)')).assignments).toEqual([]);
    // No longer named, but past every reporting standby: what it acknowledged before it left
    // may be on it alone (the random histories found that loss).
    const ahead = decide(named('ANY 1 (pgha_node_2, pgha_node_3)'));
    expect(ahead.assignments).toEqual([]);
    expect(groupNote(named('ANY 1 (pgha_node_2, pgha_node_3)'))?.message).toMatch(/node 4 "node4" is in maintenance with WAL up to .*, past every reporting standby \(node 3 "node3" at 0\/6400000\).*pgha maintenance disable --name node4/);
    // Not past them: it holds nothing they lack.
    expect(decide(named('ANY 1 (pgha_node_2, pgha_node_3)', '0/6400000')).assignments.map((a) => [a.nodeId, a.goalState])).toEqual([[3, 'prepare_promotion']]);
  });

  it('a standby dropped after the old primary\'s last report, still in its synchronous_standby_names, counts as a silent member', () => {
    const facts = groupFacts({ nowMs: T0 })
      .primary({ ...deadPrimary, reportedState: 'primary', goalState: 'demote_timeout', synchronousStandbyNames: 'ANY 1 (pgha_node_2, pgha_node_7)' })
      .standby(orphan({ state: 'report_lsn', lsn: '0/6000000' }))
      .build();
    const d = decide(facts);
    expect(d.assignments).toEqual([]);
    expect(groupNote(facts)?.message).toMatch(/1 of 2 synchronous standbys reported and 2 are needed .*node 7 \(dropped, still in the old primary's synchronous_standby_names\)/);
  });

  it('the n of ANY n is the smaller of what the old primary reported and what the formation says', () => {
    const facts = (names: string) =>
      groupFacts({ nowMs: T0, settings: { numberSyncStandbys: 2 } })
        .primary({ ...deadPrimary, reportedState: 'primary', goalState: 'demote_timeout', synchronousStandbyNames: names })
        .standby(orphan({ state: 'report_lsn', lsn: '0/6000000', goalChangedAgoMs: electionTimeoutMs }))
        .standby(orphan({ state: 'report_lsn', lsn: '0/6400000', goalChangedAgoMs: electionTimeoutMs }))
        .standby({ reportedState: 'secondary', goalState: 'report_lsn', lsn: ACKED, keeperSilentMs: SILENT, goalChangedAgoMs: electionTimeoutMs })
        .build();
    // ANY 1: a commit may be on node 4 alone: all three must report.
    expect(decide(facts('ANY 1 (pgha_node_2, pgha_node_3, pgha_node_4)')).assignments).toEqual([]);
    // ANY 2: every commit is on two of the three, so on node 2 or node 3.
    expect(decide(facts('ANY 2 (pgha_node_2, pgha_node_3, pgha_node_4)')).assignments.map((a) => [a.nodeId, a.goalState])).toEqual([[3, 'prepare_promotion']]);
  });

  it('every interrupted prefix: the winner\'s keeper stalls at any step, then returns; it still promotes at or past the commit', () => {
    const steps = 6;
    const rules = new Set<string>();
    for (let cut = 0; cut <= steps; cut++) {
      const group = failoverStarted(lastCommitOnNode4());
      for (let i = 0; i < cut; i++) round(group);
      // Node 2's keeper stalls (others report); the election may move on without it.
      for (let i = 0; i < 3; i++) round(group, [2], 1_000);
      untilPromoted(group);
      const promoted = writableGoalHolders(group.facts).map((id) => group.node(id));
      expect(promoted.length, `cut after ${cut} rounds`).toBe(1);
      expect(promoted[0]!.reportedLsn >= ACKED, `cut after ${cut} rounds`).toBe(true);
      expect(promoted[0]!.candidatePriority, `cut after ${cut} rounds`).toBeGreaterThan(0);
      expect(group.violations, `cut after ${cut} rounds`).toEqual([]);
      for (const a of group.history) rules.add(a.rule);
    }
    // Some cuts stall the candidate itself: it loses its candidacy and the election runs again.
    expect(rules).toContain('candidate-changed');
  });
});
