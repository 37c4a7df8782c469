/**
 * Cases found in review of the issue-3 state machine, each kept as a regression test.
 */
import { DEFAULT_FORMATION_SETTINGS, decide, decideUntilStable, groupNote, synchronousStandbyNames } from '@pgha/shared';
import { describe, expect, it } from 'vitest';
import { groupFacts } from './fact-builders.js';

const { nodeUnhealthyTimeoutMs } = DEFAULT_FORMATION_SETTINGS;

describe('safety regressions', () => {
  it('a switchover does not promote while the draining primary, keeper silent, still answers and has another synchronous standby', () => {
    const facts = groupFacts()
      .primary({ reportedState: 'primary', goalState: 'draining', keeperSilentMs: nodeUnhealthyTimeoutMs + 1, health: 'good', synchronousStandbyNames: 'ANY 1 (pgha_node_2, pgha_node_3)' })
      .standby({ state: 'prepare_promotion' })
      .standby()
      .build();
    expect(decideUntilStable(facts).filter((a) => a.goalState === 'stop_replication')).toEqual([]);
  });

  it('no election starts when every secondary has candidate priority 0, and the note says why', () => {
    const facts = groupFacts()
      .primary({ health: 'bad', keeperSilentMs: nodeUnhealthyTimeoutMs + 1 })
      .standby({ candidatePriority: 0, notStreamingForMs: 1000, streaming: false })
      .standby({ candidatePriority: 0, notStreamingForMs: 1000, streaming: false })
      .build();
    expect(decideUntilStable(facts)).toEqual([]);
    expect(groupNote(facts)?.message).toMatch(/no reporting standby is eligible/);
  });

  it('no failover starts when the monitor hears from no node (the monitor is the one cut off), with 2 standbys as with 1', () => {
    // Found by the chaos run (issue 5, fault 8): isolating the monitor of a 3-node formation for
    // 3.5 s demoted a healthy primary, because "no standby streams from it" held vacuously.
    const silent = { health: 'bad' as const, keeperSilentMs: nodeUnhealthyTimeoutMs + 1, notStreamingForMs: nodeUnhealthyTimeoutMs + 1 };
    for (const standbys of [1, 2]) {
      let b = groupFacts().primary(silent);
      for (let i = 0; i < standbys; i++) b = b.standby(silent);
      expect(decideUntilStable(b.build()), `${standbys} standby(s)`).toEqual([]);
    }
    // As soon as one standby's keeper reports again (not streaming: its primary is gone), the failover starts.
    const heard = groupFacts().primary(silent).standby({ notStreamingForMs: nodeUnhealthyTimeoutMs + 1, streaming: false }).standby(silent).build();
    expect(decide(heard, { type: 'evaluate', cause: 'timer' }).assignments.map((a) => a.goalState)).toContain('demote_timeout');
  });

  it('maintenance is refused on a standby while a failover is unfinished', () => {
    const facts = groupFacts()
      .primary({ reportedState: 'primary', goalState: 'demote_timeout', health: 'bad', keeperSilentMs: nodeUnhealthyTimeoutMs + 1 })
      .standby({ notStreamingForMs: 1000, streaming: false })
      .build();
    const decision = decide(facts, { type: 'enable-maintenance', nodeId: 2, allowFailover: false });
    expect(decision.assignments).toEqual([]);
    expect(decision.refusal).toMatch(/transition is already running|no primary/);
  });

  it('with number_sync_standbys 1, a quorum standby that is catching up stays in synchronous_standby_names: writes wait as configured', () => {
    const facts = groupFacts({ settings: { numberSyncStandbys: 1 } }).primary().standby({ state: 'catchingup' }).build();
    expect(synchronousStandbyNames(facts, 1)).toBe('ANY 1 (pgha_node_2)');
  });

  it('a primary failed while wait_primary is not replaced, and the note says why', () => {
    const facts = groupFacts()
      .primary({ state: 'wait_primary', health: 'bad', keeperSilentMs: nodeUnhealthyTimeoutMs + 1 })
      .standby({ state: 'catchingup', notStreamingForMs: 1000, streaming: false })
      .build();
    expect(decideUntilStable(facts)).toEqual([]);
    expect(groupNote(facts)?.message).toMatch(/synchronous replication off/);
  });

  it('a chosen candidate is not promoted while too few of the synchronous set still report (one fell silent since it was chosen), and the note says why', () => {
    // Found by the property test once loud deaths joined its actions (issue 17): node 3 alone
    // acknowledged the last commits, then died before reporting them; node 2 was chosen by the
    // operator, and its old primary then died. Promoting node 2 would lose those commits; with
    // keeper silence alone the same happened 2 s later.
    const facts = groupFacts()
      .primary({ reportedState: 'primary', goalState: 'draining', diedLoudly: true, synchronousStandbyNames: 'ANY 1 (pgha_node_2, pgha_node_3)' })
      .standby({ state: 'prepare_promotion' })
      .standby({ keeperSilentMs: nodeUnhealthyTimeoutMs + 1, streaming: false, notStreamingForMs: nodeUnhealthyTimeoutMs + 1 })
      .build();
    expect(decideUntilStable(facts).filter((a) => a.goalState === 'stop_replication')).toEqual([]);
    expect(groupNote(facts)?.message).toBe('no promotion: 1 of 2 synchronous standbys reported and 2 are needed to be sure to keep every acknowledged commit (silent: node 3 "node3")');
    // Node 3's keeper reports again, no further than the candidate. The old primary died during
    // its stop, so its last WAL is not known: the election decides, among LSNs reported from
    // now on, and the promotion goes on.
    const old = { reportedState: 'primary', goalState: 'draining', diedLoudly: true, synchronousStandbyNames: 'ANY 1 (pgha_node_2, pgha_node_3)' } as const;
    const heard = groupFacts().primary(old).standby({ state: 'prepare_promotion' }).standby({ streaming: false, notStreamingForMs: 100 }).build();
    expect(decideUntilStable(heard).map((a) => [a.nodeId, a.goalState, a.rule])).toEqual([
      [2, 'report_lsn', 'switchover-election'],
      [3, 'report_lsn', 'switchover-election'],
    ]);
    const voted = groupFacts().primary(old).standby({ state: 'report_lsn' }).standby({ state: 'report_lsn', streaming: false, notStreamingForMs: 100 }).build();
    expect(decideUntilStable(voted).map((a) => [a.nodeId, a.goalState])).toContainEqual([2, 'prepare_promotion']);
  });
});
