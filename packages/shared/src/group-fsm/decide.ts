/**
 * `decide(facts, event)`: the monitor's whole decision for one group, pure. The group's phase
 * is derived from the facts (so a monitor restart loses nothing), the machine takes one
 * transition, and the assignments come back as data.
 */
import { createActor, type ActorScope, type ExecutableActionObject } from 'xstate';
import { FAILOVER_PHASE_STATES, WRITABLE_STATES } from '../states.js';
import type { Assignment, EvaluateEvent, GroupEvent, GroupFacts } from './facts.js';
import { groupMachine, type AssignGoalStatesParams, type GroupPhase, type RefuseCommandParams } from './machine.js';

/** The actions of the transition {@link decide} is taking (filled by {@link DECIDE_SCOPE}). */
const collected: ExecutableActionObject[] = [];

/**
 * One actor scope for every decision, which collects the actions instead of running them.
 * XState's own `transition(logic, snapshot, event)` builds a new inert actor (and its system)
 * on every call, which cost about 30 µs of the 35 µs a decision took; the group machine has
 * no children, delays or emitted events, so one scope serves all decisions (they are
 * synchronous). Never started: its actor only lends the scope a `self` and a `system`.
 */
const DECIDE_SCOPE: ActorScope<ReturnType<typeof groupMachine.resolveState>, GroupEvent> = (() => {
  const self = createActor(groupMachine, { input: { facts: { formation: '', groupId: 0, nowMs: 0, settings: {} as GroupFacts['settings'], nodes: [] } } });
  return {
    self,
    id: 'group',
    sessionId: self.sessionId,
    logger: () => undefined,
    defer: () => undefined,
    emit: () => undefined,
    system: self.system,
    stopChild: () => undefined,
    actionExecutor: (action) => {
      collected.push(action);
    },
  };
})();

/** `transition(groupMachine, snapshot, event)` of XState, on {@link DECIDE_SCOPE}: the actions the transition takes. */
function transitionActions(snapshot: ReturnType<typeof groupMachine.resolveState>, event: GroupEvent): ExecutableActionObject[] {
  collected.length = 0;
  groupMachine.transition(snapshot, event, DECIDE_SCOPE);
  return collected.splice(0);
}

/**
 * The group's phase as its goal states show it: `bootstrap` when every node is still
 * `init`, `failover` while a node holds one of the {@link FAILOVER_PHASE_STATES} (a promotion
 * or a switchover under way), `steady` otherwise.
 */
export function groupPhase(facts: GroupFacts): GroupPhase {
  if (facts.nodes.every((n) => n.goalState === 'init')) return 'bootstrap';
  if (facts.nodes.some((n) => FAILOVER_PHASE_STATES.has(n.goalState))) return 'failover';
  return 'steady';
}

/** What {@link decide} returns. */
export interface Decision {
  /** Phase before and after the transition. */
  phase: GroupPhase;
  nextPhase: GroupPhase;
  /** Id of the rule that fired (as in event rows), if one did. */
  rule: string | undefined;
  /** Goal assignments, each with its reason; empty when nothing changes. */
  assignments: Assignment[];
  /** Operator commands only: why the command cannot be done now (nothing changes). */
  refusal?: string;
  /** Operator commands only: a remark on a command that needed no change. */
  note?: string;
}

/**
 * Decides the next goal assignments of one group.
 *
 * @param facts - the group's facts, read under the group lock; `facts.nowMs` is the clock.
 * @param event - what prompted the decision.
 * @returns the first applicable rule's assignments (none when no rule applies).
 *
 * ### Examples
 * ```ts
 * const { assignments } = decide(facts, { type: 'evaluate', cause: 'report' });
 * ```
 */
export function decide(facts: GroupFacts, event: GroupEvent = { type: 'evaluate', cause: 'timer' }): Decision {
  const phase = groupPhase(facts);
  const snapshot = groupMachine.resolveState({ value: phase, context: { facts } });
  const actions = transitionActions(snapshot, event);
  const fired = actions.find((a) => a.type === 'assignGoalStates');
  const refused = actions.find((a) => a.type === 'refuseCommand');
  const params = fired?.params as AssignGoalStatesParams | undefined;
  const assignments = params?.assignments ?? [];
  return {
    phase,
    nextPhase: groupPhase(applyAssignments(facts, assignments)),
    rule: assignments[0]?.rule,
    assignments,
    ...(refused ? { refusal: (refused.params as RefuseCommandParams).reason } : {}),
    ...(params?.note ? { note: params.note } : {}),
  };
}

/** Returns `facts` with the assignments' goal states applied. */
export function applyAssignments(facts: GroupFacts, assignments: readonly Assignment[]): GroupFacts {
  return {
    ...facts,
    nodes: facts.nodes.map((n) => {
      // The last assignment of a node wins: decideUntilStable may assign one node twice.
      const a = assignments.findLast((x) => x.nodeId === n.nodeId);
      return a ? { ...n, goalState: a.goalState } : n;
    }),
  };
}

/**
 * Decides repeatedly, applying each decision's goals to the facts, until no rule applies
 * (at most `maxSteps` rules). This is what the monitor runs under the group lock: several
 * independent rules may apply at once (a standby fails while another registers).
 *
 * @returns every assignment in order; a node may appear more than once.
 */
export function decideUntilStable(facts: GroupFacts, event: EvaluateEvent = { type: 'evaluate', cause: 'timer' }, maxSteps = 8): Assignment[] {
  const all: Assignment[] = [];
  let current = facts;
  for (let step = 0; step < maxSteps; step++) {
    const { assignments } = decide(current, event);
    if (assignments.length === 0) break;
    all.push(...assignments);
    current = applyAssignments(current, assignments);
  }
  return all;
}

/** Node ids that hold a writable goal state; the safety invariant is that there is at most one. */
export function writableGoalHolders(facts: GroupFacts): number[] {
  return facts.nodes.filter((n) => WRITABLE_STATES.has(n.goalState)).map((n) => n.nodeId);
}
