/**
 * Well-formedness of the group state machine: every plan has a guard and a place in the
 * machine, rule ids are unique and stable, and every group phase is reachable.
 */
import {
  DEFAULT_FORMATION_SETTINGS,
  PLANS,
  applyAssignments,
  decide,
  decideUntilStable,
  groupMachine,
  groupPhase,
  type GroupFacts,
  type GroupPhase,
  type PlanName,
} from '@pgha/shared';
import { getAdjacencyMap } from 'xstate/graph';
import { describe, expect, it } from 'vitest';
import { groupFacts, type NodeSpec } from './fact-builders.js';

const { nodeUnhealthyTimeoutMs } = DEFAULT_FORMATION_SETTINGS;
const deadPrimary: NodeSpec = { health: 'bad', keeperSilentMs: nodeUnhealthyTimeoutMs + 1 };
const orphanStandby: NodeSpec = { notStreamingForMs: nodeUnhealthyTimeoutMs + 1 };

/** For each plan, facts in which it is the rule the machine picks, and the rule id it records. */
const FIXTURES: Record<PlanName, { facts: GroupFacts; ruleId: string; phase: GroupPhase }> = {
  firstNodeSingle: { ruleId: 'first-node-single', phase: 'bootstrap', facts: groupFacts().registered().build() },
  registerStandby: { ruleId: 'register-standby', phase: 'steady', facts: groupFacts().single().registered().build() },
  startCatchingUp: {
    ruleId: 'standby-start-catchingup', phase: 'steady',
    facts: groupFacts().primary({ state: 'wait_primary' }).registered({ state: 'wait_standby' }).build(),
  },
  standbyFailed: { ruleId: 'standby-failed', phase: 'steady', facts: groupFacts().primary().standby(deadPrimary).build() },
  failoverStart: { ruleId: 'failover-start', phase: 'steady', facts: groupFacts().primary(deadPrimary).standby(orphanStandby).build() },
  promoteCandidate: {
    ruleId: 'promote-candidate', phase: 'failover',
    facts: groupFacts().primary({ ...deadPrimary, reportedState: 'primary', goalState: 'demote_timeout' }).standby({ ...orphanStandby, state: 'prepare_promotion' }).build(),
  },
  reelectCandidate: {
    // The candidate's priority was set to 0 while it prepared: back to report_lsn with the other voter.
    ruleId: 'candidate-changed', phase: 'failover',
    facts: groupFacts()
      .primary({ ...deadPrimary, reportedState: 'primary', goalState: 'demote_timeout' })
      .standby({ ...orphanStandby, state: 'prepare_promotion', candidatePriority: 0 })
      .standby({ ...orphanStandby, state: 'report_lsn' })
      .build(),
  },
  electFromReports: {
    ruleId: 'election', phase: 'failover',
    facts: groupFacts()
      .primary({ ...deadPrimary, reportedState: 'primary', goalState: 'demote_timeout' })
      .standby({ ...orphanStandby, state: 'report_lsn', lsn: '0/5000000' })
      .standby({ ...orphanStandby, state: 'report_lsn', lsn: '0/6000000' })
      .build(),
  },
  fastForwardDone: {
    ruleId: 'fast-forward-done', phase: 'failover',
    facts: groupFacts()
      .primary({ ...deadPrimary, reportedState: 'primary', goalState: 'demote_timeout' })
      .standby({ ...orphanStandby, state: 'fast_forward', lsn: '0/6000000', candidatePriority: 100 })
      .standby({ ...orphanStandby, state: 'report_lsn', lsn: '0/6000000' })
      .build(),
  },
  candidateBehind: {
    ruleId: 'candidate-behind', phase: 'failover',
    facts: groupFacts()
      .primary({ ...deadPrimary, reportedState: 'primary', goalState: 'demote_timeout' })
      .standby({ ...orphanStandby, state: 'prepare_promotion', lsn: '0/5000000' })
      .standby({ ...orphanStandby, state: 'report_lsn', lsn: '0/6000000' })
      .build(),
  },
  promotionDone: {
    ruleId: 'promotion-done', phase: 'failover',
    facts: groupFacts().primary({ ...deadPrimary, reportedState: 'primary', goalState: 'demote_timeout' }).standby({ ...orphanStandby, state: 'stop_replication' }).build(),
  },
  rejoinDemoted: {
    ruleId: 'demoted-rejoin', phase: 'steady',
    facts: groupFacts().standby({ nodeId: 1, state: 'demoted', pgIsRunning: false, health: 'bad' }).primary({ nodeId: 2, state: 'wait_primary' }).build(),
  },
  standbyCaughtUp: {
    ruleId: 'standby-caught-up', phase: 'steady',
    facts: groupFacts().primary({ state: 'wait_primary' }).standby({ state: 'catchingup' }).build(),
  },
  enableSync: { ruleId: 'enable-sync', phase: 'steady', facts: groupFacts().primary({ state: 'wait_primary' }).standby().build() },
  syncStandbyGone: {
    ruleId: 'sync-standby-gone', phase: 'steady',
    facts: groupFacts().primary().standby({ state: 'maintenance', streaming: false }).build(),
  },
  maintenanceReady: {
    ruleId: 'maintenance-ready', phase: 'steady',
    facts: groupFacts()
      .primary({ synchronousStandbyNames: 'ANY 1 (pgha_node_3)' })
      .standby({ state: 'wait_maintenance' })
      .standby()
      .build(),
  },
};

/** Guards that are not plans: operator commands are possible now. */
const COMMAND_GUARDS = ['commandPossible'];

const PLAN_NAMES = Object.keys(PLANS) as PlanName[];

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
    expect(guards).toEqual([...PLAN_NAMES, ...COMMAND_GUARDS].sort());
  });

  it('every plan is referenced by a transition of some phase, and every referenced guard exists', () => {
    const referenced = new Set(Object.values(guardsByPhase()).flat());
    expect(PLAN_NAMES.filter((name) => !referenced.has(name))).toEqual([]);
    expect([...referenced].filter((name) => !(name in PLANS))).toEqual([]);
  });

  it('every phase handles every operator command (carried out, or refused with a reason)', () => {
    const commands = ['perform_switchover', 'perform_failover', 'perform_promotion', 'enable_maintenance', 'disable_maintenance', 'drop_node'];
    for (const [phase, node] of Object.entries(groupMachine.config.states ?? {})) {
      const on = (node as { on?: Record<string, unknown> }).on ?? {};
      expect(commands.filter((c) => !(c in on)), phase).toEqual([]);
    }
  });

  it('no phase lists the same rule twice', () => {
    for (const [phase, guards] of Object.entries(guardsByPhase())) {
      expect(new Set(guards).size, phase).toBe(guards.length);
    }
  });

  it('each plan fires in its fixture and records one kebab-case rule id; rule ids are unique across plans', () => {
    const ids = new Map<string, PlanName>();
    for (const name of PLAN_NAMES) {
      const { facts, ruleId, phase } = FIXTURES[name];
      expect(groupPhase(facts), name).toBe(phase);
      const decision = decide(facts);
      expect(decision.rule, `${name} should be the rule that fires`).toBe(ruleId);
      const recorded = [...new Set(decision.assignments.map((a) => a.rule))];
      expect(recorded, name).toEqual([ruleId]);
      expect(ruleId).toMatch(/^[a-z]+(-[a-z]+)*$/);
      for (const a of decision.assignments) expect(a.reason.trim(), `${name} reason`).not.toBe('');
      expect(ids.has(ruleId), `rule id ${ruleId} used by ${ids.get(ruleId)} and ${name}`).toBe(false);
      ids.set(ruleId, name);
    }
    expect(ids.size).toBe(PLAN_NAMES.length);
  });

  it('plans never return an assignment that leaves a goal unchanged (so decideUntilStable ends)', () => {
    for (const name of PLAN_NAMES) {
      const { facts } = FIXTURES[name];
      for (const a of PLANS[name](facts) ?? []) {
        expect(facts.nodes.find((n) => n.nodeId === a.nodeId)?.goalState, `${name} -> node ${a.nodeId}`).not.toBe(a.goalState);
      }
    }
  });

  it('every group phase is reachable from bootstrap (getAdjacencyMap), and failover leads back to steady', () => {
    // Let each guard pass only for an event naming it, so the traversal explores every rule.
    type ProbeEvent = { type: 'evaluate'; cause: 'timer'; only: PlanName };
    const probing = groupMachine.provide({
      guards: Object.fromEntries(
        PLAN_NAMES.map((name) => [name, ({ event }: { event: unknown }) => (event as ProbeEvent).only === name]),
      ) as never,
    });
    const events = PLAN_NAMES.map((only) => ({ type: 'evaluate', cause: 'timer', only }) as ProbeEvent);
    const adjacency = getAdjacencyMap(probing as never, {
      input: { facts: FIXTURES.firstNodeSingle.facts },
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
    for (const name of PLAN_NAMES) {
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
