import { quorumStandbys } from './group-fsm/guards.js';
import type { GroupFacts } from './group-fsm/facts.js';
import { nodeApplicationName } from './settings.js';

/**
 * The `synchronous_standby_names` a primary applies in `primary`/`apply_settings`:
 * `ANY n (pgha_node_2, pgha_node_3)` over the standbys with replication quorum whose goal is
 * `secondary`, with n = max(1, number_sync_standbys); empty when there is no such standby.
 * Source: pg_auto_failover's `pgautofailover.synchronous_standby_names()`.
 *
 * ### Examples
 * ```ts
 * synchronousStandbyNames(facts, 1) // 'ANY 1 (pgha_node_2)'
 * ```
 */
export function synchronousStandbyNames(facts: GroupFacts, primaryId: number): string {
  const standbys = quorumStandbys(facts, primaryId);
  if (standbys.length === 0) return '';
  const n = Math.min(standbys.length, Math.max(1, facts.settings.numberSyncStandbys));
  return `ANY ${n} (${standbys.map((s) => nodeApplicationName(s.nodeId)).join(', ')})`;
}
