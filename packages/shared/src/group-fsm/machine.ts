/**
 * The group state machine, declared with XState v5. States are group phases; each phase
 * lists its rules in priority order as guarded `evaluate` transitions, and the operator
 * commands it accepts. A guard is "this rule's plan applies" (or "this command is possible
 * now"); the action carries the assignments (or the refusal) as parameters and is returned by
 * `transition()` without being run, so deciding stays pure.
 *
 * Each rule has one name, its id: the key of its plan in `PLANS`, the name of its guard here,
 * and the `rule` of its assignments and their event rows. An operator command's id is its
 * event's `type`.
 */
import { setup } from 'xstate';
import { DEFAULT_FORMATION_SETTINGS } from '../settings.js';
import { planCommand } from './commands.js';
import type { Assignment, GroupEvent, GroupFacts, OperatorEvent, PlannedAssignment } from './facts.js';
import { PLANS, type RuleId } from './plans.js';

/** Parameters of the `assignGoalStates` action. */
export interface AssignGoalStatesParams {
  /** The id of the rule (or command) that made the assignments. */
  rule: string;
  assignments: Assignment[];
  note?: string;
}

/** Parameters of the `refuseCommand` action. */
export interface RefuseCommandParams {
  reason: string;
}

type Ctx = { context: { facts: GroupFacts }; event: GroupEvent };

/**
 * The facts of an actor created without input: an empty group. XState's pure `transition()`
 * creates such an actor (never started) on every call; without this its context factory
 * would throw, which XState catches, on every call.
 */
const NO_GROUP: GroupFacts = { formation: '', groupId: 0, nowMs: 0, settings: DEFAULT_FORMATION_SETTINGS, nodes: [] };

/** `planned` with the rule id that made them. */
function stamp(rule: string, planned: readonly PlannedAssignment[]): Assignment[] {
  return planned.map((a) => ({ ...a, rule }));
}

/** Every rule's guard, named by its rule id: the rule's plan applies to the facts. */
const RULE_GUARDS = Object.fromEntries(
  (Object.keys(PLANS) as RuleId[]).map((id) => [id, ({ context }: Ctx) => PLANS[id](context.facts) !== undefined]),
) as Record<RuleId, (args: Ctx) => boolean>;

/** The `evaluate` transition of rule `id`: guarded by its plan, assigning what the plan returns. */
const rule = (id: RuleId, target?: 'bootstrap' | 'steady' | 'failover') => ({
  guard: id,
  ...(target ? { target } : {}),
  actions: {
    type: 'assignGoalStates' as const,
    params: ({ context }: Ctx): AssignGoalStatesParams => ({ rule: id, assignments: stamp(id, PLANS[id](context.facts) ?? []) }),
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
        return 'assignments' in outcome ? { rule: event.type, assignments: stamp(event.type, outcome.assignments), ...(outcome.note ? { note: outcome.note } : {}) } : { rule: event.type, assignments: [] };
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
  'perform-switchover': command,
  'perform-failover': command,
  'perform-promotion': command,
  'enable-maintenance': command,
  'disable-maintenance': command,
  'drop-node': command,
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
    input: {} as { facts: GroupFacts } | undefined,
  },
  guards: {
    ...RULE_GUARDS,
    commandPossible: ({ context, event }: Ctx) => 'assignments' in planCommand(context.facts, event as OperatorEvent),
  },
  actions: {
    // Never run: decide() reads the returned action objects and the driver persists them.
    assignGoalStates: (_args, _params: AssignGoalStatesParams) => undefined,
    refuseCommand: (_args, _params: RefuseCommandParams) => undefined,
  },
}).createMachine({
  id: 'group',
  context: ({ input }) => ({ facts: input?.facts ?? NO_GROUP }),
  initial: 'bootstrap',
  states: {
    bootstrap: {
      on: {
        evaluate: [rule('first-node-single', 'steady')],
        ...COMMANDS,
      },
    },
    steady: {
      on: {
        evaluate: [
          rule('failover-start', 'failover'),
          rule('election-restart', 'failover'),
          rule('standby-failed'),
          rule('lone-primary-single'),
          rule('sync-standby-gone'),
          rule('register-standby'),
          rule('standby-start-catchingup'),
          rule('demoted-rejoin'),
          rule('maintenance-ready'),
          rule('standby-caught-up'),
          rule('enable-sync'),
        ],
        ...COMMANDS,
      },
    },
    failover: {
      on: {
        evaluate: [
          rule('candidate-changed'),
          rule('election'),
          rule('fast-forward-done'),
          rule('candidate-behind'),
          rule('switchover-election'),
          rule('promote-candidate'),
          rule('promotion-done', 'steady'),
          rule('failover-start'),
          rule('election-restart'),
          rule('register-standby'),
        ],
        'perform-switchover': refuseDuringFailover,
        'perform-failover': refuseDuringFailover,
        'perform-promotion': refuseDuringFailover,
        'enable-maintenance': refuseDuringFailover,
        'disable-maintenance': command,
        'drop-node': refuseDuringFailover,
      },
    },
  },
});

/** A phase of {@link groupMachine}. */
export type GroupPhase = 'bootstrap' | 'steady' | 'failover';
