/**
 * The end of a dropped node: its record deleted with an event saying why (its keeper confirmed
 * `dropped`, or it is not running). Source: pg_auto_failover's `remove_node`.
 */
import { NODE_REMOVED_RULE, nodeEvent } from '../store/event-records.js';
import type { NodeRecord } from '../store/records.js';
import type { StoreTransaction } from '../store/store-port.js';

/** Deletes a dropped node's record (its credentials go with it), with its event, in `tx`. */
export async function removeNode(tx: StoreTransaction, node: NodeRecord, reason: string): Promise<void> {
  await tx.events.append([nodeEvent(node, NODE_REMOVED_RULE, reason, 'dropped')]);
  await tx.nodes.remove(node.nodeId);
}
