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

  it('maintenance is refused on a standby while a failover is unfinished', () => {
    const facts = groupFacts()
      .primary({ reportedState: 'primary', goalState: 'demote_timeout', health: 'bad', keeperSilentMs: nodeUnhealthyTimeoutMs + 1 })
      .standby({ notStreamingForMs: 1000, streaming: false })
      .build();
    const decision = decide(facts, { type: 'enable_maintenance', nodeId: 2, allowFailover: false });
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
});
