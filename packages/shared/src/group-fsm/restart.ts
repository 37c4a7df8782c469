/**
 * When the monitor accepts a restart of a node's Postgres (`pgha perform restart`): only while
 * the whole group is healthy, so that a restart never takes a second node down. Pure.
 * Source: Patroni's `patronictl restart` (refused while the member is not running, one member
 * at a time with `--pending`) and CloudNativePG's rolling update (replicas one at a time, each
 * ready again before the next, the primary last by switchover).
 */
import { formatDurationMs } from '../duration.js';
import { SERVING_STATES } from '../states.js';
import type { GroupFacts, NodeFacts } from './facts.js';
import { isStreaming, keeperIsAlive, postgresIsDown, restartingOnRequest } from './guards.js';

function describe(n: NodeFacts): string {
  return `node ${n.nodeId} "${n.name}"`;
}

/**
 * Why the group cannot restart a node now, in one sentence for the operator; undefined when
 * it can. The group is healthy when no other restart is under way
 * ({@link restartingOnRequest}), every node has reached its goal, that goal is `primary`,
 * `single` or `secondary` (not maintenance, not a failover or a standby being added), every
 * keeper reports and every Postgres runs, and every `secondary` streams from the primary.
 *
 * @param nodeId - the node to restart (a node of `facts`).
 *
 * ### Examples
 * ```ts
 * restartRefusal(facts, 2) // undefined: primary and secondaries at their goals, streaming
 * restartRefusal(facts, 2) // 'node 3 "node3" is maintenance (goal maintenance): a restart needs every node primary or secondary …'
 * ```
 */
export function restartRefusal(facts: GroupFacts, nodeId: number): string | undefined {
  if (!facts.nodes.some((n) => n.nodeId === nodeId)) return `node ${nodeId} is not in group ${facts.groupId}`;
  const restarting = facts.nodes.find((n) => restartingOnRequest(facts, n));
  if (restarting) {
    return `${describe(restarting)} is restarting (asked ${formatDurationMs(facts.nowMs - restarting.restartRequestedMs!)} ago): restart one node at a time, when it streams again`;
  }
  for (const n of facts.nodes) {
    if (n.reportedState !== n.goalState || !SERVING_STATES.has(n.goalState)) {
      const fix = n.goalState === 'maintenance' ? `; end it first: pgha maintenance disable --name ${n.name}` : '; wait until the formation settles (pgha show state)';
      return `${describe(n)} is ${n.reportedState} (goal ${n.goalState}): a restart needs every node primary, single or secondary at its goal, so that it never takes a second node down${fix}`;
    }
    if (!keeperIsAlive(facts, n)) return `${describe(n)}'s keeper has not reported for ${n.lastReportMs === null ? 'ever' : formatDurationMs(facts.nowMs - n.lastReportMs)}: a restart needs every node up`;
    if (!n.postgresRunning || postgresIsDown(facts, n)) return `${describe(n)}'s Postgres is not running: a restart needs every node up`;
    if (n.goalState === 'secondary' && !isStreaming(facts, n)) return `${describe(n)} does not stream from the primary: a restart needs every standby streaming`;
  }
  return undefined;
}
