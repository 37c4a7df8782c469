import { decide, groupPhase, writableGoalHolders } from '@pgha/shared';
import { describe, expect, it } from 'vitest';
import { groupFacts, T0 } from './fact-builders.js';
import { SimulatedGroup } from './simulate.js';

describe('first node', () => {
  it('the first node to register becomes single, with a reason and the rule first-node-single', () => {
    const facts = groupFacts().registered().build();
    expect(groupPhase(facts)).toBe('bootstrap');

    const decision = decide(facts, { type: 'evaluate', cause: 'register' });

    expect(decision.rule).toBe('first-node-single'); // the same rule id as in the event row
    expect(decision.nextPhase).toBe('steady');
    expect(decision.assignments).toEqual([
      expect.objectContaining({ nodeId: 1, goalState: 'single', rule: 'first-node-single' }),
    ]);
    expect(decision.assignments[0]?.reason).toMatch(/first node/);
  });

  it('once the keeper reports single, nothing more is assigned and the node is the only writable one', () => {
    const group = new SimulatedGroup(groupFacts().registered().build());

    group.decide('register').reach(1, { postgresRunning: true, health: 'good' }).advance(500).decide('report');

    expect(group.node(1)).toMatchObject({ reportedState: 'single', goalState: 'single' });
    expect(group.lastAssignments).toEqual([]);
    expect(writableGoalHolders(group.facts)).toEqual([1]);
    expect(group.violations).toEqual([]);
  });

  it('a single node stays single when its Postgres dies: there is nobody to fail over to', () => {
    const facts = groupFacts({ nowMs: T0 }).single({ health: 'bad', postgresRunning: false, keeperSilentMs: 60_000 }).build();
    expect(decide(facts).assignments).toEqual([]);
  });

  it('when two nodes register before any decision, only the lowest node id becomes single', () => {
    const group = new SimulatedGroup(groupFacts().registered().registered().build());

    group.decide('register');

    // The first decision makes node 1 single; node 2 waits in init until node 1 has reached
    // single (register-standby never moves a primary that is still on its way to a goal).
    expect(group.history[0]).toMatchObject({ nodeId: 1, goalState: 'single', rule: 'first-node-single' });
    expect(group.goal(2)).toBe('init');
    expect(writableGoalHolders(group.facts)).toEqual([1]);
    group.reach(1).decide('report');
    expect(group.goal(2)).toBe('wait_standby');
    expect(group.goal(1)).toBe('wait_primary');
    expect(writableGoalHolders(group.facts)).toEqual([1]);
  });

  it('a registered node does not become single while another node already holds a goal', () => {
    const facts = groupFacts().single().registered().build();
    const decision = decide(facts, { type: 'evaluate', cause: 'register' });
    expect(decision.rule).not.toBe('first-node-single');
    expect(decision.assignments.find((a) => a.goalState === 'single')).toBeUndefined();
  });
});
