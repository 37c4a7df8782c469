/**
 * Operator commands on a group, pure: each returns the goal assignments it makes or the
 * reason it is refused (a refused command changes nothing). Source: pg_auto_failover's
 * `perform_failover`, `perform_promotion`, `start_maintenance`, `stop_maintenance` and
 * `remove_node`, and the refusals its users know ("no candidate", "already in progress").
 */
import { formatLsn } from '../lsn.js';
import { listsNode } from '../standby-names.js';
import { ELECTORATE_STATES, MAINTENANCE_STATES, OUTGOING_PRIMARY_STATES, TRANSITION_IN_PROGRESS_STATES, type NodeState } from '../states.js';
import { describeWinner, elect } from './election.js';
import type { GroupFacts, NodeFacts, OperatorEvent, PlannedAssignment } from './facts.js';
import { hasWritableGoal, isCurrentState, keeperIsAlive, postgresIsDown, primaryHasFailed, quorumStandbys, standbyIsHealthy, writableNode } from './guards.js';
import { startElection } from './plans.js';

/**
 * Why dropping standby `n` could lose a commit acknowledged under synchronous replication, if
 * it could: some other quorum standby that an election may count (see `ELECTORATE_STATES`)
 * could lack a commit that `n` alone acknowledged. Two cases:
 * - the primary still lists `n` in the `synchronous_standby_names` it reports: until it
 *   applies a list without `n`, commits may wait for `n` alone (with `ANY 1 (…)`, while the
 *   others lag); `pgha maintenance enable` takes it out of that list first, and the election
 *   then keeps its WAL in view (a node in maintenance past every reporting standby stops it);
 * - `n` reported WAL past every other such standby (on the same timeline or a later one).
 * A group without another such standby loses nothing: its commits are on the primary too, and
 * no election could run without a quorum standby.
 */
function mayHoldLoneCommits(facts: GroupFacts, n: NodeFacts): string | undefined {
  const others = facts.nodes.filter((o) => o.nodeId !== n.nodeId && o.replicationQuorum && ELECTORATE_STATES.has(o.goalState));
  if (others.length === 0) return undefined;
  const primary = writableNode(facts);
  if (primary && listsNode(primary.synchronousStandbyNames, n.nodeId)) {
    return `${describe(n)} is in the synchronous_standby_names of the primary, ${describe(primary)}: commits acknowledged by it alone may be missing on the other standbys; take it out of synchronous replication first (pgha maintenance enable --name ${n.name}), then drop it`;
  }
  const best = others.reduce((b, o) => (o.reportedLsn > b.reportedLsn ? o : b));
  if (n.reportedTimeline >= best.reportedTimeline && n.reportedLsn > best.reportedLsn) {
    return `${describe(n)} reported WAL up to ${formatLsn(n.reportedLsn)}, past every other standby (${describe(best)} at ${formatLsn(best.reportedLsn)}): it may hold commits they lack; drop it once they have caught up (pgha show state)`;
  }
  return undefined;
}

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
      assign(result.winner, 'prepare_promotion', `${describeWinner({ ...result, behind: false })} (operator)`),
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
      const others = facts.nodes.filter((o) => o.nodeId !== n.nodeId);
      if (hasWritableGoal(n) && others.length > 0) {
        return { refusal: `${describe(n)} is the primary and other nodes depend on it: switch over first (pgha perform switchover), then drop it` };
      }
      // The outgoing primary of a failover or switchover whose standby is not promoted yet: the
      // group's rules start (and restart) that promotion from it, so without it the standbys
      // would be left with no primary and nothing to elect one.
      if (OUTGOING_PRIMARY_STATES.has(n.goalState) && others.length > 0 && !others.some(hasWritableGoal)) {
        return { refusal: `${describe(n)} is the old primary of a failover that has not promoted a standby yet (goal ${n.goalState}): drop it once a standby is the primary (pgha show state)` };
      }
      const busy = facts.nodes.find((o) => o.nodeId !== n.nodeId && TRANSITION_IN_PROGRESS_STATES.has(o.goalState) && o.goalState !== 'wait_standby');
      if (busy) return { refusal: `a transition is already running: ${describe(busy)} has goal ${busy.goalState}; drop the node once it is done` };
      const holds = mayHoldLoneCommits(facts, n);
      if (holds) return { refusal: holds };
      return { assignments: [assign(n, 'dropped', `${describe(n)} is dropped from the formation (operator)`)] };
    }
  }
}
