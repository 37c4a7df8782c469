/**
 * Well-formedness of the group state machine: every plan has a guard and a place in the
 * machine, each rule has one name (its id names its plan, its guard and its assignments),
 * rule ids are unique and stable, and every group phase is reachable.
 */
import {
  DEFAULT_FORMATION_SETTINGS,
  PLANS,
  applyAssignments,
  decide,
  decideUntilStable,
  groupMachine,
  groupPhase,
  transitionGroup,
  type GroupEvent,
  type GroupFacts,
  type GroupPhase,
  type OperatorEvent,
  type RuleId,
} from '@pgha/shared';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { transition } from 'xstate';
import { getAdjacencyMap } from 'xstate/graph';
import { describe, expect, it } from 'vitest';
import { groupFacts, type NodeSpec } from './fact-builders.js';

const { nodeUnhealthyTimeoutMs } = DEFAULT_FORMATION_SETTINGS;
const deadPrimary: NodeSpec = { health: 'bad', keeperSilentMs: nodeUnhealthyTimeoutMs + 1 };
const orphanStandby: NodeSpec = { notStreamingForMs: nodeUnhealthyTimeoutMs + 1 };

/** For each rule, facts in which it is the rule the machine picks, and the phase they are in. */
const FIXTURES: Record<RuleId, { facts: GroupFacts; phase: GroupPhase }> = {
  'first-node-single': { phase: 'bootstrap', facts: groupFacts().registered().build() },
  'register-standby': { phase: 'steady', facts: groupFacts().single().registered().build() },
  'standby-start-catchingup': {
    phase: 'steady',
    facts: groupFacts().primary({ state: 'wait_primary' }).registered({ state: 'wait_standby' }).build(),
  },
  'standby-failed': { phase: 'steady', facts: groupFacts().primary().standby(deadPrimary).build() },
  'failover-start': { phase: 'steady', facts: groupFacts().primary(deadPrimary).standby(orphanStandby).build() },
  'election-restart': {
    // An election ended without a candidate: the failed primary is in demote_timeout, its standby secondary again.
    phase: 'steady',
    facts: groupFacts().primary({ ...deadPrimary, reportedState: 'primary', goalState: 'demote_timeout' }).standby(orphanStandby).build(),
  },
  'switchover-election': {
    // The candidate's stream broke before the old primary's last WAL, which node 3 may hold.
    phase: 'failover',
    facts: groupFacts()
      .primary({ state: 'draining', postgresRunning: false, lsn: '0/6000000', shutdownCheckpointLsn: '0/6000000' })
      .standby({ state: 'prepare_promotion', lsn: '0/5000000', streaming: false })
      .standby({ state: 'secondary', lsn: '0/5000000' })
      .build(),
  },
  'promote-candidate': {
    phase: 'failover',
    facts: groupFacts().primary({ ...deadPrimary, reportedState: 'primary', goalState: 'demote_timeout' }).standby({ ...orphanStandby, state: 'prepare_promotion' }).build(),
  },
  'candidate-changed': {
    // The candidate's priority was set to 0 while it prepared: back to report_lsn with the other voter.
    phase: 'failover',
    facts: groupFacts()
      .primary({ ...deadPrimary, reportedState: 'primary', goalState: 'demote_timeout' })
      .standby({ ...orphanStandby, state: 'prepare_promotion', candidatePriority: 0 })
      .standby({ ...orphanStandby, state: 'report_lsn' })
      .build(),
  },
  election: {
    phase: 'failover',
    facts: groupFacts()
      .primary({ ...deadPrimary, reportedState: 'primary', goalState: 'demote_timeout' })
      .standby({ ...orphanStandby, state: 'report_lsn', lsn: '0/5000000' })
      .standby({ ...orphanStandby, state: 'report_lsn', lsn: '0/6000000' })
      .build(),
  },
  'fast-forward-done': {
    phase: 'failover',
    facts: groupFacts()
      .primary({ ...deadPrimary, reportedState: 'primary', goalState: 'demote_timeout' })
      .standby({ ...orphanStandby, state: 'fast_forward', lsn: '0/6000000', candidatePriority: 100 })
      .standby({ ...orphanStandby, state: 'report_lsn', lsn: '0/6000000' })
      .build(),
  },
  'candidate-behind': {
    phase: 'failover',
    facts: groupFacts()
      .primary({ ...deadPrimary, reportedState: 'primary', goalState: 'demote_timeout' })
      .standby({ ...orphanStandby, state: 'prepare_promotion', lsn: '0/5000000' })
      .standby({ ...orphanStandby, state: 'report_lsn', lsn: '0/6000000' })
      .build(),
  },
  'promotion-done': {
    phase: 'failover',
    facts: groupFacts().primary({ ...deadPrimary, reportedState: 'primary', goalState: 'demote_timeout' }).standby({ ...orphanStandby, state: 'stop_replication' }).build(),
  },
  'demoted-rejoin': {
    phase: 'steady',
    facts: groupFacts().standby({ nodeId: 1, state: 'demoted', postgresRunning: false, health: 'bad' }).primary({ nodeId: 2, state: 'wait_primary' }).build(),
  },
  'standby-caught-up': {
    phase: 'steady',
    facts: groupFacts().primary({ state: 'wait_primary' }).standby({ state: 'catchingup' }).build(),
  },
  'enable-sync': { phase: 'steady', facts: groupFacts().primary({ state: 'wait_primary' }).standby().build() },
  'lone-primary-single': {
    // Its only standby was dropped: the primary is alone.
    phase: 'steady',
    facts: groupFacts().primary({ state: 'wait_primary' }).build(),
  },
  'sync-standby-gone': {
    phase: 'steady',
    facts: groupFacts().primary().standby({ state: 'maintenance', streaming: false }).build(),
  },
  'maintenance-ready': {
    phase: 'steady',
    facts: groupFacts()
      .primary({ synchronousStandbyNames: 'ANY 1 (pgha_node_3)' })
      .standby({ state: 'wait_maintenance' })
      .standby()
      .build(),
  },
};

/** Guards that are not plans: operator commands are possible now. */
const COMMAND_GUARDS = ['commandPossible'];

const RULE_IDS = Object.keys(PLANS) as RuleId[];

/** Operator commands: each event type is its rule id. */
const COMMANDS: OperatorEvent['type'][] = ['perform-switchover', 'perform-failover', 'perform-promotion', 'enable-maintenance', 'disable-maintenance', 'drop-node'];

/** `standby-start-catchingup` → `standbyStartCatchingup`. */
const camelCase = (id: string): string => id.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** Guard names per phase, in priority order, read from the machine's config. */
function guardsByPhase(): Record<string, string[]> {
  const states = groupMachine.config.states ?? {};
  return Object.fromEntries(
    Object.entries(states).map(([phase, node]) => {
      const on = (node as { on?: Record<string, unknown> }).on ?? {};
      const evaluate = ([] as Array<{ guard?: unknown }>).concat((on.evaluate ?? []) as Array<{ guard?: unknown }>);
      return [phase, evaluate.map((t) => String(t.guard))];
    }),
  );
}

describe('group state machine is well formed', () => {
  it('every plan has a guard implementation, and every guard is a plan or the operator-command guard', () => {
    const guards = Object.keys(groupMachine.implementations.guards).sort();
    expect(guards).toEqual([...RULE_IDS, ...COMMAND_GUARDS].sort());
  });

  it('every plan is referenced by a transition of some phase, and every referenced guard exists', () => {
    const referenced = new Set(Object.values(guardsByPhase()).flat());
    expect(RULE_IDS.filter((name) => !referenced.has(name))).toEqual([]);
    expect([...referenced].filter((name) => !(name in PLANS))).toEqual([]);
  });

  it('every phase handles every operator command (carried out, or refused with a reason)', () => {
    for (const [phase, node] of Object.entries(groupMachine.config.states ?? {})) {
      const on = (node as { on?: Record<string, unknown> }).on ?? {};
      expect(COMMANDS.filter((c) => !(c in on)), phase).toEqual([]);
      expect(Object.keys(on).filter((e) => e !== 'evaluate' && !(COMMANDS as string[]).includes(e)), phase).toEqual([]);
    }
  });

  it('each rule has one name: its id keys its plan, names its guard, and its plan function is the id in camelCase', () => {
    for (const id of RULE_IDS) {
      expect(id, 'rule ids are kebab-case').toMatch(/^[a-z]+(-[a-z]+)*$/);
      expect(PLANS[id].name, `plan of rule ${id}`).toBe(camelCase(id));
      expect(id in groupMachine.implementations.guards, `guard of rule ${id}`).toBe(true);
    }
    // No two ids map to one plan function, and no plan is kept under a second name.
    expect(new Set(Object.values(PLANS)).size).toBe(RULE_IDS.length);
    // Operator commands: the event type is the rule id, kebab-case like the others and apart from them.
    for (const c of COMMANDS) {
      expect(c).toMatch(/^[a-z]+(-[a-z]+)*$/);
      expect(RULE_IDS as string[]).not.toContain(c);
    }
    // The machine's action names are not rule names: it has one action for all assignments and one for refusals.
    expect(Object.keys(groupMachine.implementations.actions).sort()).toEqual(['assignGoalStates', 'refuseCommand']);
  });

  it('docs/api.md lists every rule id of the machine and the commands, and no other in that table', () => {
    const doc = readFileSync(fileURLToPath(new URL('../../../docs/api.md', import.meta.url)), 'utf8');
    const section = doc.slice(doc.indexOf('## Rule ids'), doc.indexOf('Events the monitor writes itself'));
    const documented = [...section.matchAll(/^\| `([a-z-]+)` \|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual([...RULE_IDS, ...COMMANDS].sort());
  });

  it('every assignment carries the id of the rule that made it, and the decision names that rule', () => {
    for (const id of RULE_IDS) {
      const decision = decide(FIXTURES[id].facts);
      expect(decision.rule, id).toBe(id);
      expect(decision.assignments.map((a) => a.rule), id).toEqual(decision.assignments.map(() => id));
    }
    const facts = groupFacts().primary().standby().build();
    const switchover = decide(facts, { type: 'perform-switchover' });
    expect(switchover.rule).toBe('perform-switchover');
    expect(new Set(switchover.assignments.map((a) => a.rule))).toEqual(new Set(['perform-switchover']));
  });

  it('no phase lists the same rule twice', () => {
    for (const [phase, guards] of Object.entries(guardsByPhase())) {
      expect(new Set(guards).size, phase).toBe(guards.length);
    }
  });

  it('each rule fires in its fixture, in its phase, with a reason for each assignment; rule ids are unique', () => {
    for (const id of RULE_IDS) {
      const { facts, phase } = FIXTURES[id];
      expect(groupPhase(facts), id).toBe(phase);
      const decision = decide(facts);
      expect(decision.rule, `${id} should be the rule that fires`).toBe(id);
      expect(decision.assignments.length, id).toBeGreaterThan(0);
      for (const a of decision.assignments) expect(a.reason.trim(), `${id} reason`).not.toBe('');
    }
    const all = [...RULE_IDS, ...COMMANDS];
    expect(new Set(all).size).toBe(all.length);
  });

  it('plans never return an assignment that leaves a goal unchanged (so decideUntilStable ends)', () => {
    for (const name of RULE_IDS) {
      const { facts } = FIXTURES[name];
      for (const a of PLANS[name](facts) ?? []) {
        expect(facts.nodes.find((n) => n.nodeId === a.nodeId)?.goalState, `${name} -> node ${a.nodeId}`).not.toBe(a.goalState);
      }
    }
  });

  it('every group phase is reachable from bootstrap (getAdjacencyMap), and failover leads back to steady', () => {
    // Let each guard pass only for an event naming it, so the traversal explores every rule.
    type ProbeEvent = { type: 'evaluate'; cause: 'timer'; only: RuleId };
    const probing = groupMachine.provide({
      guards: Object.fromEntries(
        RULE_IDS.map((name) => [name, ({ event }: { event: unknown }) => (event as ProbeEvent).only === name]),
      ) as never,
    });
    const events = RULE_IDS.map((only) => ({ type: 'evaluate', cause: 'timer', only }) as ProbeEvent);
    const adjacency = getAdjacencyMap(probing as never, {
      input: { facts: FIXTURES['first-node-single'].facts },
      events: events as never,
      serializeState: (s: { value: unknown }) => JSON.stringify(s.value),
    } as never) as unknown as Record<string, { state: { value: string }; transitions: Record<string, { state: { value: string } }> }>;

    const reachable = new Set(Object.values(adjacency).map((v) => v.state.value));
    expect([...reachable].sort()).toEqual(['bootstrap', 'failover', 'steady']);

    const edges = new Set(
      Object.values(adjacency).flatMap((v) => Object.values(v.transitions).map((t) => `${v.state.value}->${t.state.value}`)),
    );
    expect(edges).toContain('bootstrap->steady');
    expect(edges).toContain('steady->failover');
    expect(edges).toContain('failover->steady');
    // Nothing goes back to bootstrap.
    expect([...edges].filter((e) => e.endsWith('->bootstrap') && !e.startsWith('bootstrap'))).toEqual([]);
  });

  it('decide() reports phase transitions that match groupPhase() of the facts it produces', () => {
    for (const name of RULE_IDS) {
      const { facts } = FIXTURES[name];
      const decision = decide(facts);
      const next = {
        ...facts,
        nodes: facts.nodes.map((n) => {
          const a = decision.assignments.find((x) => x.nodeId === n.nodeId);
          return a ? { ...n, goalState: a.goalState } : n;
        }),
      };
      expect(groupPhase(next), name).toBe(decision.nextPhase);
    }
  });
});

describe('transitionGroup', () => {
  it("returns what XState's public transition() returns: the next snapshot and the actions, with their parameters", () => {
    const cases: Array<[string, GroupFacts, GroupEvent]> = [
      ...RULE_IDS.map((id): [string, GroupFacts, GroupEvent] => [id, FIXTURES[id].facts, { type: 'evaluate', cause: 'timer' }]),
      ['nothing to do', groupFacts().primary().standby().build(), { type: 'evaluate', cause: 'report' }],
      ['perform-switchover', groupFacts().primary().standby().build(), { type: 'perform-switchover' }],
      ['refused perform-promotion', groupFacts().primary().standby({ candidatePriority: 0 }).build(), { type: 'perform-promotion', nodeId: 2 }],
      ['refused during a failover', FIXTURES.election.facts, { type: 'drop-node', nodeId: 2 }],
    ];
    for (const [label, facts, event] of cases) {
      const snapshot = groupMachine.resolveState({ value: groupPhase(facts), context: { facts } });
      const [next, actions] = transitionGroup(snapshot, event);
      const [refNext, refActions] = transition(groupMachine, snapshot, event);
      expect(next.value, label).toEqual(refNext.value);
      expect(next.context, label).toBe(refNext.context);
      expect(actions.map((a) => [a.type, a.params]), label).toEqual(refActions.map((a) => [a.type, a.params]));
      // Every case but 'nothing to do' takes one action (its assignments or a refusal): the comparison compares something.
      expect(actions.length, label).toBe(label === 'nothing to do' ? 0 : 1);
    }
  });
});

describe('decide helpers', () => {
  it('applyAssignments leaves a node assigned twice at its last goal', () => {
    const facts = groupFacts().registered().registered().build();
    const applied = applyAssignments(facts, [
      { nodeId: 1, goalState: 'single', reason: 'first', rule: 'first-node-single' },
      { nodeId: 2, goalState: 'wait_standby', reason: 'standby', rule: 'register-standby' },
      { nodeId: 1, goalState: 'wait_primary', reason: 'then', rule: 'register-standby' },
    ]);
    expect(applied.nodes.map((n) => n.goalState)).toEqual(['wait_primary', 'wait_standby']);
  });

  it('decideUntilStable ends, and a node that registers meanwhile waits for the first node to settle', () => {
    const facts = groupFacts().registered().registered().build();
    const assignments = decideUntilStable(facts, { type: 'evaluate', cause: 'register' });
    expect(assignments.map((a) => [a.nodeId, a.goalState])).toEqual([[1, 'single']]);
  });
});
