import { parseSynchronousStandbyNames, synchronousStandbyNames } from '@pgha/shared';
import { describe, expect, it } from 'vitest';
import { groupFacts } from './fact-builders.js';

describe('synchronous_standby_names', () => {
  it('one quorum secondary: ANY 1 (its application name)', () => {
    const facts = groupFacts().primary().standby().build();
    expect(synchronousStandbyNames(facts, 1)).toBe('ANY 1 (pgha_node_2)');
  });

  it('number_sync_standbys 0 still waits for one standby (n = max(1, number_sync_standbys))', () => {
    const facts = groupFacts({ settings: { numberSyncStandbys: 0 } }).primary().standby().standby().build();
    expect(synchronousStandbyNames(facts, 1)).toBe('ANY 1 (pgha_node_2, pgha_node_3)');
  });

  it('number_sync_standbys 2 over three quorum secondaries: ANY 2', () => {
    const facts = groupFacts({ settings: { numberSyncStandbys: 2 } }).primary().standby().standby().standby().build();
    expect(synchronousStandbyNames(facts, 1)).toBe('ANY 2 (pgha_node_2, pgha_node_3, pgha_node_4)');
  });

  it('only standbys with replication quorum whose goal is secondary are listed', () => {
    const facts = groupFacts()
      .primary()
      .standby({ replicationQuorum: false })
      .standby({ state: 'catchingup' })
      .standby()
      .standby({ reportedState: 'catchingup', goalState: 'secondary' })
      .build();
    expect(synchronousStandbyNames(facts, 1)).toBe('ANY 1 (pgha_node_4, pgha_node_5)');
  });

  it('is computed for whichever node is primary, leaving that node out', () => {
    const facts = groupFacts().standby({ nodeId: 1 }).primary({ nodeId: 2 }).standby({ nodeId: 3 }).build();
    expect(synchronousStandbyNames(facts, 2)).toBe('ANY 1 (pgha_node_1, pgha_node_3)');
  });

  it('is empty when no standby qualifies (synchronous replication off)', () => {
    expect(synchronousStandbyNames(groupFacts().single().build(), 1)).toBe('');
    expect(synchronousStandbyNames(groupFacts().primary({ state: 'wait_primary' }).standby({ state: 'catchingup' }).build(), 1)).toBe('');
    expect(synchronousStandbyNames(groupFacts().primary().standby({ replicationQuorum: false }).build(), 1)).toBe('');
  });
});

describe('parseSynchronousStandbyNames: the one reader of the setting', () => {
  it.each([
    ['ANY 1 (pgha_node_2)', 1, ['pgha_node_2']],
    ['ANY 2 (pgha_node_2, pgha_node_3)', 2, ['pgha_node_2', 'pgha_node_3']],
    ['any 1 ("pgha_node_2", "odd""name")', 1, ['pgha_node_2', 'odd"name']],
    ['FIRST 1 (a, b)', 1, ['a', 'b']],
    ['2 (a,b,c)', 2, ['a', 'b', 'c']],
    ['a, b', undefined, ['a', 'b']],
    ['*', undefined, ['*']],
    ['', undefined, []],
    ['   ', undefined, []],
  ] as const)('%j → count %s, names %j', (value, count, names) => {
    expect(parseSynchronousStandbyNames(value)).toEqual({ count, names });
  });

  it('reads back what synchronousStandbyNames writes', () => {
    const written = 'ANY 2 (pgha_node_2, pgha_node_3, pgha_node_4)';
    expect(parseSynchronousStandbyNames(written)).toEqual({ count: 2, names: ['pgha_node_2', 'pgha_node_3', 'pgha_node_4'] });
  });
});
