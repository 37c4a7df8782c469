import { describe, expect, it } from 'vitest';
import type { NodeState } from '@pgha/shared';
import { quorumStandbyCount } from '../src/formation/settings-changes.js';

const node = (nodeId: number, goalState: NodeState, replicationQuorum = true) => ({ nodeId, goalState, replicationQuorum });

describe('quorumStandbyCount: the standbys that can acknowledge commits for number_sync_standbys', () => {
  it('counts the nodes other than the primary that have replication quorum, whatever their state', () => {
    expect(quorumStandbyCount([node(1, 'primary'), node(2, 'secondary')])).toBe(1);
    expect(quorumStandbyCount([node(1, 'wait_primary'), node(2, 'catchingup'), node(3, 'secondary')])).toBe(2);
    expect(quorumStandbyCount([node(1, 'primary'), node(2, 'secondary', false), node(3, 'secondary')])).toBe(1);
  });

  it("does not count the primary's own replication quorum", () => {
    expect(quorumStandbyCount([node(1, 'primary', true), node(2, 'secondary', false)])).toBe(0);
    expect(quorumStandbyCount([node(1, 'single')])).toBe(0);
  });

  it('without a single writable node, counts all quorum nodes but the one that will be primary', () => {
    expect(quorumStandbyCount([])).toBe(0);
    expect(quorumStandbyCount([node(1, 'init'), node(2, 'init')])).toBe(1);
    expect(quorumStandbyCount([node(1, 'demote_timeout'), node(2, 'prepare_promotion'), node(3, 'secondary')])).toBe(2);
  });
});
