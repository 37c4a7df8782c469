/**
 * Replication slot names (`nodeSlotName`, `nodeIdOfSlotName`): the primary drops the slots of
 * nodes no longer in its group only when their name is exactly one pgha makes, so an
 * operator's slot, however close its name, is never taken for one.
 */
import { describe, expect, it } from 'vitest';
import { nodeIdOfSlotName, nodeSlotName } from '../src/index.js';

describe('nodeIdOfSlotName', () => {
  it('reads back the node id of every name nodeSlotName makes', () => {
    for (const nodeId of [0, 1, 7, 42, 123_456]) expect(nodeIdOfSlotName(nodeSlotName(nodeId))).toBe(nodeId);
  });

  it('is undefined for any other name, however close', () => {
    for (const slot of ['operator_archive', 'pgha_node_', 'pgha_node_03', 'pgha_node_3_old', 'xpgha_node_3', 'PGHA_NODE_3', 'pgha_node_-3', 'pgha_node_3 ', 'pgha_node_1e3', `pgha_node_${'9'.repeat(16)}`]) {
      expect(nodeIdOfSlotName(slot), slot).toBeUndefined();
    }
  });
});
