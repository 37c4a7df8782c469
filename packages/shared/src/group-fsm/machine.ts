/**
 * The group state machine, declared with XState v5. States are group phases; each phase
 * lists its rules in priority order as guarded `evaluate` transitions, and the operator
 * commands it accepts. A guard is "this rule's plan applies" (or "this command is possible
 * now"); the action carries the assignments (or the refusal) as parameters and is returned by
 * `transition()` without being run, so deciding stays pure.
 */
import { setup } from 'xstate';
import { planCommand } from './commands.js';
import type { Assignment, GroupEvent, GroupFacts, OperatorEvent } from './facts.js';
import { PLANS, type PlanName } from './plans.js';

/** Parameters of the `assignGoalStates` action. */
export interface AssignGoalStatesParams {
  rule: string;
  assignments: Assignment[];
  note?: string;
}

/** Parameters of the `refuseCommand` action. */
export interface RefuseCommandParams {
  reason: string;
}

type Ctx = { context: { facts: GroupFacts }; event: GroupEvent };

const guard = (name: PlanName) => ({ context }: Ctx) => PLANS[name](context.facts) !== undefined;

const rule = (name: PlanName, target?: 'bootstrap' | 'steady' | 'failover') => ({
  guard: name,
  ...(target ? { target } : {}),
  actions: {
    type: 'assignGoalStates' as const,
    params: ({ context }: Ctx): AssignGoalStatesParams => ({ rule: name, assignments: PLANS[name](context.facts) ?? [] }),
  },
});

/** An operator command: carried out when possible, refused with its reason otherwise. */
const command = [
  {
    guard: 'commandPossible' as const,
    actions: {
      type: 'assignGoalStates' as const,
      params: ({ context, event }: Ctx): AssignGoalStatesParams => {
        const outcome = planCommand(context.facts, event as OperatorEvent);
        return 'assignments' in outcome ? { rule: event.type, assignments: outcome.assignments, ...(outcome.note ? { note: outcome.note } : {}) } : { rule: event.type, assignments: [] };
      },
    },
  },
  {
    actions: {
      type: 'refuseCommand' as const,
      params: ({ context, event }: Ctx): RefuseCommandParams => {
        const outcome = planCommand(context.facts, event as OperatorEvent);
        return { reason: 'refusal' in outcome ? outcome.refusal : 'refused' };
      },
    },
  },
];

/** Operator commands, accepted in `steady` and `bootstrap`. */
const COMMANDS = {
  perform_switchover: command,
  perform_failover: command,
  perform_promotion: command,
  enable_maintenance: command,
  disable_maintenance: command,
  drop_node: command,
};

const refuseDuringFailover = {
  actions: { type: 'refuseCommand' as const, params: (): RefuseCommandParams => ({ reason: 'a failover or switchover is in progress; wait for it to finish (pgha show state)' }) },
};

/**
 * Group phases: `bootstrap` (no node has a goal yet), `steady` (a primary, standbys joining,
 * failing and returning), `failover` (an election or promotion is under way).
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
    electFromReports: guard('electFromReports'),
    fastForwardDone: guard('fastForwardDone'),
    candidateBehind: guard('candidateBehind'),
    promotionDone: guard('promotionDone'),
    syncStandbyGone: guard('syncStandbyGone'),
    maintenanceReady: guard('maintenanceReady'),
    rejoinDemoted: guard('rejoinDemoted'),
    standbyCaughtUp: guard('standbyCaughtUp'),
    enableSync: guard('enableSync'),
    commandPossible: ({ context, event }: Ctx) => 'assignments' in planCommand(context.facts, event as OperatorEvent),
  },
  actions: {
    // Never run: decide() reads the returned action objects and the driver persists them.
    assignGoalStates: (_args, _params: AssignGoalStatesParams) => undefined,
    refuseCommand: (_args, _params: RefuseCommandParams) => undefined,
  },
}).createMachine({
  id: 'group',
  context: ({ input }) => ({ facts: input.facts }),
  initial: 'bootstrap',
  states: {
    bootstrap: {
      on: {
        evaluate: [rule('firstNodeSingle', 'steady')],
        ...COMMANDS,
      },
    },
    steady: {
      on: {
        evaluate: [
          rule('failoverStart', 'failover'),
          rule('standbyFailed'),
          rule('syncStandbyGone'),
          rule('registerStandby'),
          rule('startCatchingUp'),
          rule('rejoinDemoted'),
          rule('maintenanceReady'),
          rule('standbyCaughtUp'),
          rule('enableSync'),
        ],
        ...COMMANDS,
      },
    },
    failover: {
      on: {
        evaluate: [
          rule('reelectCandidate'),
          rule('electFromReports'),
          rule('fastForwardDone'),
          rule('candidateBehind'),
          rule('promoteCandidate'),
          rule('promotionDone', 'steady'),
          rule('failoverStart'),
          rule('registerStandby'),
        ],
        perform_switchover: refuseDuringFailover,
        perform_failover: refuseDuringFailover,
        perform_promotion: refuseDuringFailover,
        enable_maintenance: refuseDuringFailover,
        disable_maintenance: command,
        drop_node: refuseDuringFailover,
      },
    },
  },
});

/** A phase of {@link groupMachine}. */
export type GroupPhase = 'bootstrap' | 'steady' | 'failover';
