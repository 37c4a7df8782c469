/**
 * `decide(facts, event)`: the monitor's whole decision for one group, pure. The group's phase
 * is derived from the facts (so a monitor restart loses nothing), the machine takes one
 * transition, and the assignments come back as data.
 */
import { createActor, type ActorScope, type ExecutableActionObject } from 'xstate';
import { FAILOVER_PHASE_STATES, WRITABLE_STATES } from '../states.js';
import type { Assignment, EvaluateEvent, GroupEvent, GroupFacts } from './facts.js';
import { groupMachine, type AssignGoalStatesParams, type GroupPhase, type RefuseCommandParams } from './machine.js';

/** A snapshot of {@link groupMachine}. */
export type GroupSnapshot = ReturnType<typeof groupMachine.resolveState>;

/**
 * XState's pure `transition(groupMachine, snapshot, event)`: the next snapshot and the actions
 * the transition takes, returned and not run. The one place where pgha calls XState below its
 * public API (the machine's own three-argument `transition(snapshot, event, actorScope)`),
 * because the public function costs several decisions. `npm run bench:decide` on the
 * project's 2-core machine, shared with other work (best of 5 runs of medians of 7 × 5000 calls):
 *
 * | group | decideUntilStable | one transition, here | one XState `transition()` |
 * |---|---|---|---|
 * | primary + 2 secondaries (nothing to do) | 3.2 µs | 1.8 µs | 30 µs |
 * | primary + failed standby | 12 µs | 4.6 µs | 30 µs |
 * | primary failed (election) | 19 µs | 14 µs | 39 µs |
 *
 * (XState's figure varies most from run to run, 7 to 65 µs: each call leaves two actor systems
 * and an actor to the garbage collector.) The monitor decides after every keeper report, 1000
 * a second at 1000 nodes.
 *
 * XState's `transition()` builds a new inert actor on every call (`createActor`: an actor
 * system, a mailbox, the machine's initial snapshot). The group machine needs none of it: it
 * has no children, delays, emitted events or built-in actions, and its guards and action
 * parameters read only the context and the event. So one never-started actor lends every call
 * its `self` and `system`, in one scope object built once; the scope's executor puts the
 * actions in the current call's list. (A new scope object per call, as measured, cost 1.5 µs
 * more per transition.) Calls are synchronous and the machine's guards and actions never
 * decide, so one call's list cannot receive another's actions. A unit test checks that this
 * returns the same snapshot value and actions as XState's `transition()`.
 *
 * @returns `[nextSnapshot, actions]`, as XState's `transition()`.
 */
export const transitionGroup: (snapshot: GroupSnapshot, event: GroupEvent) => [GroupSnapshot, ExecutableActionObject[]] = (() => {
  let actions: ExecutableActionObject[] = [];
  const self = createActor(groupMachine, { input: undefined });
  const scope: ActorScope<GroupSnapshot, GroupEvent> = {
    self,
    id: 'group',
    sessionId: self.sessionId,
    logger: () => undefined,
    defer: () => undefined,
    emit: () => undefined,
    system: self.system,
    stopChild: () => undefined,
    actionExecutor: (action) => {
      actions.push(action);
    },
  };
  return (snapshot, event) => {
    actions = [];
    const next = groupMachine.transition(snapshot, event, scope);
    return [next, actions];
  };
})();

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
  const [, actions] = transitionGroup(snapshot, event);
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
