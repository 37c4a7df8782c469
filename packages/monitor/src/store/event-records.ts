/**
 * Every kind of event the monitor writes, built here and written by the one writer
 * (`EventWriter.append`): a goal assignment, a note about a node that keeps its goal, an event
 * about a whole formation. Pure.
 *
 * Source: pg_auto_failover's `pgautofailover.event` rows, written by `LogAndNotifyMessage`
 * with each goal change.
 */
import { selfFenceSentence, type Assignment, type NodeReport, type NodeState } from '@pgha/shared';
import type { EventRecord, NewEvent, NodeRecord, RecordedReport } from './records.js';

/** Rule id of the event written for a settings change. */
export const SETTINGS_CHANGED_RULE = 'settings-changed';
/** Rule id of the event written when a formation is created. */
export const FORMATION_CREATED_RULE = 'formation-created';
/** Rule id of the event written when a formation is dropped. */
export const FORMATION_DROPPED_RULE = 'formation-dropped';
/** Rule id of the event written when a dropped node's record is deleted. */
export const NODE_REMOVED_RULE = 'node-removed';
/** Rule id of the note written when a group is held up for a new reason (`groupNote`). */
export const GROUP_NOTE_RULE = 'group-note';
/** Rule id of the event of a keeper's self-fence (one per fence). */
export const SELF_FENCED_RULE = 'keeper-self-fenced';
/** Rule id of the event of a problem a keeper reports (`NodeReport.problem`). */
export const KEEPER_PROBLEM_RULE = 'keeper-problem';
/** Rule id of the event of the end of a problem a keeper reported. */
export const KEEPER_PROBLEM_CLEARED_RULE = 'keeper-problem-cleared';
/** Rule id of the event written when a keeper replaced its node token (`pgha keeper rotate-token`). */
export const NODE_TOKEN_ROTATED_RULE = 'node-token-rotated';
/** `nodeId` and `nodeName` of events about a whole formation rather than one node. */
export const FORMATION_EVENT_NODE = { nodeId: 0, nodeName: '(formation)' } as const;

/**
 * An event about one node: its states as they are, unless `newGoalState` says what its goal
 * becomes.
 */
export function nodeEvent(node: NodeRecord, rule: string, reason: string, newGoalState: NodeState = node.goalState): NewEvent {
  return {
    formationId: node.formationId,
    groupId: node.groupId,
    nodeId: node.nodeId,
    nodeName: node.name,
    reportedState: node.reportedState,
    oldGoalState: node.goalState,
    newGoalState,
    reportedLsn: node.reportedLsn,
    rule,
    reason,
  };
}

/** An event about a whole formation ({@link FORMATION_EVENT_NODE}, no states). */
export function formationEvent(formationId: string, rule: string, reason: string): NewEvent {
  return { formationId, groupId: 0, ...FORMATION_EVENT_NODE, reportedState: '', oldGoalState: '', newGoalState: '', reportedLsn: '0/0', rule, reason };
}

/**
 * The events of assignments, in their order: each from the node's goal before it (a node may be
 * assigned more than once by `decideUntilStable`). Assignments of nodes not in `nodes` are
 * left out.
 */
export function assignmentEvents(nodes: readonly NodeRecord[], assignments: readonly Assignment[]): NewEvent[] {
  const goals = new Map<number, NodeState>(nodes.map((n) => [n.nodeId, n.goalState]));
  const events: NewEvent[] = [];
  for (const a of assignments) {
    const node = nodes.find((n) => n.nodeId === a.nodeId);
    if (!node) continue;
    events.push({ ...nodeEvent(node, a.rule, a.reason, a.goalState), oldGoalState: goals.get(a.nodeId)! });
    goals.set(a.nodeId, a.goalState);
  }
  return events;
}

/**
 * The events a recorded report writes besides any decision, about its node as recorded:
 *
 * - its self-fence (`NodeReport.selfFence`) when newer than the last one recorded: one event
 *   per fence, however often its keeper sends it (retried or racing reports are serialised by
 *   the group lock);
 * - a problem it reports, or the end of one, as a note (the goal stays).
 */
export function reportEvents(recorded: RecordedReport, report: NodeReport): NewEvent[] {
  if (!recorded.recorded) return [];
  const { node, before } = recorded;
  const who = `node ${node.nodeId} "${node.name}"`;
  const events: NewEvent[] = [];
  const fence = report.selfFence;
  if (fence && (before.lastSelfFenceAt === null || new Date(before.lastSelfFenceAt).getTime() < fence.fencedAtMs)) {
    events.push(nodeEvent(node, SELF_FENCED_RULE, `${who} ${selfFenceSentence(fence)}`));
  }
  const problem = report.problem ?? null;
  if (problem !== before.reportedProblem) {
    events.push(
      problem === null
        ? nodeEvent(node, KEEPER_PROBLEM_CLEARED_RULE, `${who} reports no problem any more (it reported: ${before.reportedProblem})`)
        : nodeEvent(node, KEEPER_PROBLEM_RULE, `${who} reports a problem: ${problem}`),
    );
  }
  return events;
}

/**
 * Which events count as a failover or a switchover for the metrics, each counted on the
 * outgoing primary's event (one per operation):
 *
 * - a **failover**: rule `failover-start` taking the primary to `demote_timeout` (the monitor
 *   found it failed), or rule `perform-failover` on the primary (`pgha perform failover`);
 * - a **switchover**: rules `perform-switchover`, `perform-promotion` and `enable-maintenance`
 *   taking the primary to `draining` or `prepare_maintenance`.
 *
 * Data, so that an adapter can count them where the events are (the Postgres adapter in SQL).
 */
export const OPERATION_EVENTS: readonly { kind: 'failover' | 'switchover'; rules: readonly string[]; newGoalStates: readonly NodeState[] }[] = [
  { kind: 'failover', rules: ['failover-start'], newGoalStates: ['demote_timeout'] },
  { kind: 'failover', rules: ['perform-failover'], newGoalStates: ['demote_timeout', 'draining'] },
  { kind: 'switchover', rules: ['perform-switchover', 'perform-promotion', 'enable-maintenance'], newGoalStates: ['draining', 'prepare_maintenance'] },
];

/** The operation an event counts as ({@link OPERATION_EVENTS}), if any. */
export function operationKindOf(e: Pick<EventRecord, 'rule' | 'newGoalState'>): 'failover' | 'switchover' | undefined {
  return OPERATION_EVENTS.find((o) => o.rules.includes(e.rule) && (o.newGoalStates as readonly string[]).includes(e.newGoalState))?.kind;
}
