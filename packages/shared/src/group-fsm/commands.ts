/**
 * Operator commands on a group, pure: each returns the goal assignments it makes or the
 * reason it is refused (a refused command changes nothing). Source: pg_auto_failover's
 * `perform_failover`, `perform_promotion`, `start_maintenance`, `stop_maintenance` and
 * `remove_node`, and the refusals its users know ("no candidate", "already in progress").
 */
import { MAINTENANCE_STATES, TRANSITION_IN_PROGRESS_STATES, type NodeState } from '../states.js';
import { describeWinner, elect } from './election.js';
import type { GroupFacts, NodeFacts, OperatorEvent, PlannedAssignment } from './facts.js';
import { hasWritableGoal, isCurrentState, keeperIsAlive, postgresIsDown, primaryHasFailed, quorumStandbys, standbyIsHealthy, writableNode } from './guards.js';
import { startElection } from './plans.js';

/**
 * What a command yields: its assignments (the state machine adds the command's rule id, its
 * event `type`), or why it is refused.
 */
export type CommandOutcome = { assignments: PlannedAssignment[]; note?: string } | { refusal: string };

function describe(node: NodeFacts): string {
  return `node ${node.nodeId} "${node.name}"`;
}

function assign(node: NodeFacts, goalState: NodeState, reason: string): PlannedAssignment {
  return { nodeId: node.nodeId, goalState, reason };
}

function transitionInProgress(facts: GroupFacts): string | undefined {
  const busy = facts.nodes.find((n) => TRANSITION_IN_PROGRESS_STATES.has(n.goalState) || n.reportedState !== n.goalState);
  return busy ? `a transition is already running: ${describe(busy)} is ${busy.reportedState} with goal ${busy.goalState}; wait for it to finish (pgha show state)` : undefined;
}

/**
 * A planned switchover to `target` (or to the election's winner): the primary, healthy and
 * running with synchronous replication on, goes to `outgoingGoal` (`draining`, or
 * `prepare_maintenance`) and stops; the candidate promotes once it has stopped.
 */
function planSwitchover(facts: GroupFacts, outgoingGoal: NodeState, target?: NodeFacts, forced = false): CommandOutcome {
  const busy = transitionInProgress(facts);
  if (busy) return { refusal: busy };
  const primary = writableNode(facts);
  if (!primary) return { refusal: 'the group has no primary' };
  if (primary.goalState !== 'primary') {
    return { refusal: `${describe(primary)} is ${primary.goalState}: no standby is synchronous, so a switchover could lose writes; wait until a standby is secondary` };
  }
  if (!keeperIsAlive(facts, primary) || postgresIsDown(facts, primary) || !primary.postgresRunning) {
    return {
      refusal: forced
        ? `${describe(primary)} has not failed (its Postgres still answers) but its keeper cannot stop it: a switchover needs its keeper, and a failover could leave it taking writes; restart its keeper (pgha keeper run)`
        : `${describe(primary)} is unhealthy: use pgha perform failover`,
    };
  }
  const pool = (target ? [target] : facts.nodes).filter((n) => n.nodeId !== primary.nodeId && isCurrentState(n, 'secondary') && standbyIsHealthy(facts, n));
  const result = elect(facts, undefined, pool);
  if ('why' in result) {
    return { refusal: target ? `${describe(target)} cannot be promoted: it must be a healthy secondary with candidate priority > 0` : 'no standby can be promoted: a healthy secondary with candidate priority > 0 is needed' };
  }
  return {
    assignments: [
      assign(primary, outgoingGoal, `${describe(primary)} stops for a ${outgoingGoal === 'prepare_maintenance' ? 'maintenance' : 'switchover'} to ${describe(result.winner)} (operator)`),
      assign(result.winner, 'prepare_promotion', `${describeWinner(result)} (operator)`),
    ],
  };
}

/**
 * Plans an operator command against the group's facts.
 *
 * @returns the assignments, or `{refusal}` with the reason the command cannot be done now.
 */
export function planCommand(facts: GroupFacts, event: OperatorEvent): CommandOutcome {
  const node = 'nodeId' in event ? facts.nodes.find((n) => n.nodeId === event.nodeId) : undefined;
  if ('nodeId' in event && !node) return { refusal: `node ${event.nodeId} is not in formation "${facts.formation}" group ${facts.groupId}` };

  switch (event.type) {
    case 'perform-switchover':
      return planSwitchover(facts, 'draining');

    case 'perform-failover': {
      const primary = writableNode(facts);
      if (primary && primary.goalState === 'primary' && primaryHasFailed(facts, primary)) {
        const out = startElection(facts, primary, { goal: 'demote_timeout', reason: `${describe(primary)} has failed; failover requested by the operator` });
        if (!out) {
          const result = elect(facts, primary);
          return { refusal: 'why' in result ? result.why : 'no standby can be promoted' };
        }
        return { assignments: out };
      }
      return planSwitchover(facts, 'draining', undefined, true);
    }

    case 'perform-promotion': {
      if (hasWritableGoal(node!)) return { assignments: [], note: `${describe(node!)} is already the primary` };
      if (node!.candidatePriority === 0) return { refusal: `${describe(node!)} has candidate priority 0 (never promote); set a higher one first with pgha set node candidate-priority` };
      return planSwitchover(facts, 'draining', node);
    }

    case 'enable-maintenance': {
      const n = node!;
      if (MAINTENANCE_STATES.has(n.goalState)) return { refusal: `${describe(n)} is already in maintenance` };
      if (hasWritableGoal(n)) {
        if (!event.allowFailover) return { refusal: `${describe(n)} is the primary: pass --allow-failover to switch over first, then enter maintenance` };
        return planSwitchover(facts, 'prepare_maintenance');
      }
      if ((n.goalState !== 'secondary' && n.goalState !== 'catchingup') || n.reportedState !== n.goalState) {
        return { refusal: `${describe(n)} is ${n.reportedState} (goal ${n.goalState}): maintenance applies to the primary or to a standby that has reached secondary or catchingup` };
      }
      const busy = facts.nodes.find((o) => o.nodeId !== n.nodeId && TRANSITION_IN_PROGRESS_STATES.has(o.goalState));
      if (busy) return { refusal: `a transition is already running: ${describe(busy)} has goal ${busy.goalState}; wait for it to finish (pgha show state)` };
      const primary = writableNode(facts);
      if (!primary) return { refusal: 'the group has no primary: maintenance on a standby waits until it has one' };
      const others = primary ? quorumStandbys(facts, primary.nodeId).filter((s) => s.nodeId !== n.nodeId && standbyIsHealthy(facts, s)) : [];
      if (facts.settings.numberSyncStandbys > others.length) {
        return { refusal: `number_sync_standbys is ${facts.settings.numberSyncStandbys} and only ${others.length} other healthy synchronous standbys would be left: writes would block; lower it first (pgha set formation number-sync-standbys)` };
      }
      return { assignments: [assign(n, 'wait_maintenance', `${describe(n)} leaves synchronous replication for maintenance (operator)`)] };
    }

    case 'disable-maintenance': {
      const n = node!;
      if (n.goalState !== 'maintenance' && n.goalState !== 'wait_maintenance') return { refusal: `${describe(n)} is not in maintenance (it is ${n.goalState})` };
      return { assignments: [assign(n, 'catchingup', `${describe(n)} leaves maintenance and catches up with the primary (operator)`)] };
    }

    case 'drop-node': {
      const n = node!;
      if (hasWritableGoal(n) && facts.nodes.some((o) => o.nodeId !== n.nodeId)) {
        return { refusal: `${describe(n)} is the primary and other nodes depend on it: switch over first (pgha perform switchover), then drop it` };
      }
      const busy = facts.nodes.find((o) => o.nodeId !== n.nodeId && TRANSITION_IN_PROGRESS_STATES.has(o.goalState) && o.goalState !== 'wait_standby');
      if (busy) return { refusal: `a transition is already running: ${describe(busy)} has goal ${busy.goalState}; drop the node once it is done` };
      return { assignments: [assign(n, 'dropped', `${describe(n)} is dropped from the formation (operator)`)] };
    }
  }
}
