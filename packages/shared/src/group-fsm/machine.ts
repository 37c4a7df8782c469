/**
 * The group state machine, declared with XState v5. States are group phases; each phase
 * lists its rules in priority order as guarded `evaluate` transitions. A guard is "this
 * rule's plan applies"; the action carries the plan's assignments as parameters and is
 * returned by `transition()` without being run, so deciding stays pure.
 */
import { setup } from 'xstate';
import type { Assignment, GroupEvent, GroupFacts } from './facts.js';
import { PLANS, type PlanName } from './plans.js';

/** Parameters of the one action the machine emits. */
export interface AssignGoalStatesParams {
  rule: PlanName;
  assignments: Assignment[];
}

const guard = (name: PlanName) => ({ context }: { context: { facts: GroupFacts } }) => PLANS[name](context.facts) !== undefined;

const rule = (name: PlanName, target?: 'bootstrap' | 'steady' | 'failover') => ({
  guard: name,
  ...(target ? { target } : {}),
  actions: {
    type: 'assignGoalStates' as const,
    params: ({ context }: { context: { facts: GroupFacts } }): AssignGoalStatesParams => ({
      rule: name,
      assignments: PLANS[name](context.facts) ?? [],
    }),
  },
});

/**
 * Group phases: `bootstrap` (no node has a goal yet), `steady` (a primary, standbys joining,
 * failing and returning), `failover` (a standby is being promoted).
 */
export const groupMachine = setup({
  types: {
    context: {} as { facts: GroupFacts },
    events: {} as GroupEvent,
    input: {} as { facts: GroupFacts },
  },
  guards: {
    firstNodeSingle: guard('firstNodeSingle'),
    registerStandby: guard('registerStandby'),
    startCatchingUp: guard('startCatchingUp'),
    standbyFailed: guard('standbyFailed'),
    failoverStart: guard('failoverStart'),
    promoteCandidate: guard('promoteCandidate'),
    reelectCandidate: guard('reelectCandidate'),
    promotionDone: guard('promotionDone'),
    rejoinDemoted: guard('rejoinDemoted'),
    standbyCaughtUp: guard('standbyCaughtUp'),
    enableSync: guard('enableSync'),
  },
  actions: {
    // Never run: decide() reads the returned action objects and the driver persists them.
    assignGoalStates: (_args, _params: AssignGoalStatesParams) => undefined,
  },
}).createMachine({
  id: 'group',
  context: ({ input }) => ({ facts: input.facts }),
  initial: 'bootstrap',
  states: {
    bootstrap: {
      on: { evaluate: [rule('firstNodeSingle', 'steady')] },
    },
    steady: {
      on: {
        evaluate: [
          rule('failoverStart', 'failover'),
          rule('standbyFailed'),
          rule('registerStandby'),
          rule('startCatchingUp'),
          rule('rejoinDemoted'),
          rule('standbyCaughtUp'),
          rule('enableSync'),
        ],
      },
    },
    failover: {
      on: {
        evaluate: [
          rule('promoteCandidate'),
          rule('reelectCandidate'),
          rule('promotionDone', 'steady'),
          rule('registerStandby'),
        ],
      },
    },
  },
});

/** A phase of {@link groupMachine}. */
export type GroupPhase = 'bootstrap' | 'steady' | 'failover';
