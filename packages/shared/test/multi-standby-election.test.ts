/**
 * Failover with several standbys: which one is promoted. DESIGN.md: "promote only a node at or
 * past the last LSN that synchronous replication acknowledged; with several standbys, the most
 * advanced eligible one".
 */
import { DEFAULT_FORMATION_SETTINGS, decide, lsn, parseLsn, writableGoalHolders } from '@pgha/shared';
import { describe, expect, it } from 'vitest';
import { groupFacts, T0, type NodeSpec } from './fact-builders.js';
import { SimulatedGroup } from './simulate.js';

const { nodeUnhealthyTimeoutMs } = DEFAULT_FORMATION_SETTINGS;
const deadPrimary: NodeSpec = { health: 'bad', keeperSilentMs: nodeUnhealthyTimeoutMs + 1, lsn: '0/7000000' };
const orphan = (spec: NodeSpec = {}): NodeSpec => ({ notStreamingForMs: nodeUnhealthyTimeoutMs + 1, ...spec });

function promoted(facts: ReturnType<ReturnType<typeof groupFacts>['build']>): number[] {
  return decide(facts).assignments.filter((a) => a.goalState === 'prepare_promotion').map((a) => a.nodeId);
}

describe('choosing the standby to promote', () => {
  it('the most advanced promotable standby, whatever its node id', () => {
    const facts = groupFacts()
      .primary(deadPrimary)
      .standby(orphan({ lsn: '0/6000000' }))
      .standby(orphan({ lsn: '0/6500000' }))
      .standby(orphan({ lsn: '0/6400000' }))
      .build();
    expect(promoted(facts)).toEqual([3]);
  });

  it('equal LSNs: the higher candidate priority, then the lower node id', () => {
    expect(promoted(groupFacts().primary(deadPrimary).standby(orphan({ lsn: '0/6000000', candidatePriority: 50 }))
      .standby(orphan({ lsn: '0/6000000', candidatePriority: 90 })).build())).toEqual([3]);
    expect(promoted(groupFacts().primary(deadPrimary).standby(orphan({ lsn: '0/6000000' }))
      .standby(orphan({ lsn: '0/6000000' })).build())).toEqual([2]);
  });

  it('a standby that is not promotable (catchingup, priority 0, Postgres down, keeper silent) is never chosen', () => {
    // All at the same LSN, each would win the tie-break on priority or node id if it were eligible.
    const facts = groupFacts()
      .primary(deadPrimary)
      .standby(orphan({ lsn: '0/6000000', candidatePriority: 100, state: 'catchingup' }))
      .standby(orphan({ lsn: '0/6000000', candidatePriority: 0 }))
      .standby(orphan({ lsn: '0/6000000', candidatePriority: 100, pgIsRunning: false }))
      // Not a quorum standby: it cannot hold the only copy of an acknowledged commit.
      .standby({ lsn: '0/6000000', candidatePriority: 100, keeperSilentMs: nodeUnhealthyTimeoutMs + 1, replicationQuorum: false })
      .standby(orphan({ lsn: '0/6000000', candidatePriority: 10 }))
      .build();
    expect(promoted(facts)).toEqual([6]);
  });

  it('the other standbys follow the new primary after promotion (catchingup), the old primary is demoted', () => {
    const group = new SimulatedGroup(
      groupFacts({ nowMs: T0 }).primary(deadPrimary).standby(orphan({ lsn: '0/6000000' })).standby(orphan({ lsn: '0/5000000' })).build(),
    ).decide('timer');
    expect(group.lastGoals()).toEqual({ 1: 'demote_timeout', 2: 'prepare_promotion' });
    group.reach(2).report(3).decide().reach(2, { reportedTimeline: 2 }).report(3).decide();
    expect(group.facts.nodes.map((n) => n.goalState)).toEqual(['demoted', 'wait_primary', 'catchingup']);
    expect(writableGoalHolders(group.facts)).toEqual([2]);
    expect(group.violations).toEqual([]);
  });
});

describe('promotion never goes below an acknowledged commit', () => {
  it('promote-candidate re-checks: a more advanced secondary whose keeper came back in time is not passed over', () => {
    // At failover-start node 3's keeper was silent (node 3 is an asynchronous standby, so the
    // election need not wait for it), so node 2 was chosen. Before node 2 promotes, node 3's
    // keeper reports: it is a promotable secondary at a higher LSN.
    const group = new SimulatedGroup(
      groupFacts({ nowMs: T0 })
        .primary(deadPrimary)
        .standby(orphan({ lsn: '0/6000000' }))
        .standby({ lsn: '0/5000000', keeperSilentMs: nodeUnhealthyTimeoutMs + 1, replicationQuorum: false })
        .build(),
    ).decide('timer');
    expect(group.lastGoals()).toEqual({ 1: 'demote_timeout', 2: 'prepare_promotion' });

    group.advance(100).reach(2).report(3, { reportedLsn: parseLsn('0/6800000'), upstreamStreaming: false }).decide('report');
    expect(group.violations).toEqual([]);
    expect(group.goal(2), 'node 2 must not promote below node 3').toBe('secondary');
    expect(group.goal(3), 'node 3 is elected instead').toBe('prepare_promotion');
  });

  it('a quorum standby whose keeper is silent holds the election: it may have the only copy of a commit', () => {
    const facts = groupFacts({ nowMs: T0 })
      .primary(deadPrimary)
      .standby(orphan({ lsn: '0/6000000' }))
      .standby({ lsn: '0/5000000', keeperSilentMs: nodeUnhealthyTimeoutMs + 1 })
      .build();
    expect(decide(facts).assignments).toEqual([]);
  });

  it('promote-candidate re-checks: a candidate whose priority was set to 0 meanwhile is not promoted', () => {
    const facts = groupFacts()
      .primary({ ...deadPrimary, reportedState: 'primary', goalState: 'demote_timeout' })
      .standby(orphan({ state: 'prepare_promotion', candidatePriority: 0, lsn: '0/6000000' }))
      .standby(orphan({ lsn: '0/6000000' }))
      .build();
    expect(decide(facts).assignments.filter((a) => a.goalState === 'stop_replication')).toEqual([]);
  });

  it('a quorum standby that is unreachable but last reported more WAL than the candidate blocks the promotion', () => {
    // synchronous_standby_names was ANY 1 (pgha_node_2, pgha_node_3): a commit acknowledged by
    // node 3 alone is lost if node 2 is promoted. The monitor even knows node 3 had more WAL.
    const facts = groupFacts({ nowMs: T0 })
      .primary({ health: 'bad', pgIsRunning: false, lsn: '0/7000000' })
      .standby({ lsn: '0/5000000', notStreamingForMs: 1_000 })
      .standby({ lsn: '0/6000000', health: 'bad', keeperSilentMs: nodeUnhealthyTimeoutMs + 1 })
      .build();
    const decision = decide(facts, { type: 'evaluate', cause: 'health' });
    expect(decision.assignments.filter((a) => a.goalState === 'prepare_promotion' || a.goalState === 'stop_replication')).toEqual([]);
  });

  it('a more advanced priority-0 quorum standby: the candidate does not promote below its LSN (DESIGN: fast_forward first)', () => {
    const group = new SimulatedGroup(
      groupFacts({ nowMs: T0 })
        .primary(deadPrimary)
        .standby(orphan({ lsn: '0/6000000' }))
        .standby(orphan({ lsn: '0/6800000', candidatePriority: 0 }))
        .build(),
    ).decide('timer');
    for (let i = 0; i < 4; i++) group.advance(100).reach(2).report(3).decide();
    const promotedAt = group.history.filter((a) => a.goalState === 'stop_replication').map((a) => group.node(a.nodeId).reportedLsn);
    for (const at of promotedAt) expect(at >= lsn(parseLsn('0/6800000')), `promoted at ${at}`).toBe(true);
  });
});
