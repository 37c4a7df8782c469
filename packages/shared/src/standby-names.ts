import { quorumStandbys } from './group-fsm/guards.js';
import type { GroupFacts } from './group-fsm/facts.js';
import { nodeApplicationName } from './settings.js';
import { FOLLOWING_STATES } from './states.js';

/**
 * The `synchronous_standby_names` a primary applies in `primary`/`apply_settings`:
 * `ANY n (pgha_node_2, pgha_node_3)` over the standbys with replication quorum whose goal is
 * `secondary`, with n = max(1, number_sync_standbys); empty when there is no such standby.
 * With number_sync_standbys ≥ 1 the list also keeps quorum standbys that are catching up, so
 * that writes wait for them as configured instead of going on without a synchronous copy.
 * Source: pg_auto_failover's `pgautofailover.synchronous_standby_names()`.
 *
 * ### Examples
 * ```ts
 * synchronousStandbyNames(facts, 1) // 'ANY 1 (pgha_node_2)'
 * ```
 */
export function synchronousStandbyNames(facts: GroupFacts, primaryId: number): string {
  const nss = facts.settings.numberSyncStandbys;
  // With number_sync_standbys ≥ 1, writes wait as configured: a quorum standby that is
  // catching up (after a failure) stays in the list, so commits wait until it is back.
  const standbys = nss > 0
    ? facts.nodes.filter((n) => n.nodeId !== primaryId && n.replicationQuorum && FOLLOWING_STATES.has(n.goalState))
    : quorumStandbys(facts, primaryId);
  if (standbys.length === 0) return '';
  const n = Math.min(standbys.length, Math.max(1, nss));
  return `ANY ${n} (${standbys.map((s) => nodeApplicationName(s.nodeId)).join(', ')})`;
}

/**
 * Whether a `synchronous_standby_names` value (as a primary reports it; null or undefined:
 * none) lists node `nodeId` by its application name. Used by `maintenance-ready` and by
 * `drop-node`'s refusal.
 */
export function listsNode(value: string | null | undefined, nodeId: number): boolean {
  return parseSynchronousStandbyNames(value ?? '').names.includes(nodeApplicationName(nodeId));
}

/** What {@link parseSynchronousStandbyNames} reads from a `synchronous_standby_names` value. */
export interface StandbyNamesSetting {
  /** The number of standbys commits wait for, when the value gives one (`ANY 2 (…)`, `FIRST 1 (…)`, `2 (…)`). */
  count: number | undefined;
  /** The standby names listed, unquoted, in order (`pgha_node_2`, …; `*` as is). */
  names: string[];
}

/**
 * Reads a `synchronous_standby_names` value, as Postgres accepts it: `[FIRST|ANY] num
 * (name [, ...])` or a bare list `name [, ...]` (names optionally double-quoted). The one
 * reader of the setting: the election reads which standbys a primary counted on and how many,
 * maintenance whether a standby is still in the list. Pure, never throws.
 * Source: PostgreSQL's `syncrep_gram.y`.
 *
 * ### Examples
 * ```ts
 * parseSynchronousStandbyNames('ANY 1 (pgha_node_2, "pgha_node_3")') // { count: 1, names: ['pgha_node_2', 'pgha_node_3'] }
 * parseSynchronousStandbyNames('') // { count: undefined, names: [] }
 * ```
 */
export function parseSynchronousStandbyNames(value: string): StandbyNamesSetting {
  const m = /^\s*(?:(?:ANY|FIRST)\s+)?(\d+)\s*\((.*)\)\s*$/is.exec(value);
  const list = m ? m[2]! : value;
  const names = list
    .split(',')
    .map((n) => n.trim().replace(/^"(.*)"$/, '$1').replace(/""/g, '"'))
    .filter((n) => n !== '');
  return { count: m ? Number(m[1]) : undefined, names };
}
