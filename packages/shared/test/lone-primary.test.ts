/**
 * Rule `lone-primary-single`: a primary left alone in its group (its standbys dropped) becomes
 * `single`, as the first node of a group is, so that the group reads as settled again
 * (`pgha perform restart` accepts `single`, never `wait_primary`). It must never apply while
 * another node of the group exists, in whatever state.
 */
import { NODE_STATES, decide, decideUntilStable, restartRefusal, type GroupFacts, type NodeState } from '@pgha/shared';
import { describe, expect, it } from 'vitest';
import { groupFacts, T0, type NodeSpec } from './fact-builders.js';
import { SimulatedGroup } from './simulate.js';

const RULE = 'lone-primary-single';

/** A group of one node in `state` (reached unless `spec` says otherwise). */
function alone(state: NodeState, spec: NodeSpec = {}, numberSyncStandbys = 0): GroupFacts {
  return groupFacts({ nowMs: T0, settings: { numberSyncStandbys } }).primary({ state, ...spec }).build();
}

/** Every keeper reaches its goal and reports, 100 ms later; the monitor decides. */
function round(group: SimulatedGroup): SimulatedGroup {
  group.advance(100);
  for (const n of group.facts.nodes) group.reach(n.nodeId);
  return group.decide('report');
}

describe('lone-primary-single', () => {
  it('a wait_primary left alone becomes single, with the reason in one sentence', () => {
    const decision = decide(alone('wait_primary'));
    expect(decision.rule).toBe(RULE);
    expect(decision.assignments).toEqual([
      { nodeId: 1, goalState: 'single', rule: RULE, reason: 'node 1 "node1" is the only node left in the group: single, writable, no replication' },
    ]);
  });

  it('a primary left alone becomes single at once, whatever number_sync_standbys (no standby can be synchronous)', () => {
    for (const nss of [0, 1, 2]) {
      expect(decideUntilStable(alone('primary', {}, nss)).map((a) => [a.nodeId, a.goalState, a.rule]), `number_sync_standbys ${nss}`).toEqual([[1, 'single', RULE]]);
    }
  });

  it('ignores candidate priority: a lone primary with candidate priority 0 has no other node to prefer', () => {
    expect(decide(alone('wait_primary', { candidatePriority: 0 })).assignments.map((a) => a.goalState)).toEqual(['single']);
  });

  it('waits until the keeper has reached its goal', () => {
    expect(decide(alone('wait_primary', { reportedState: 'join_primary' })).rule).toBeUndefined();
    expect(decide(alone('wait_primary', { reportedState: 'primary' })).rule).toBeUndefined();
  });

  it('applies whether or not the lone node is healthy: nothing could take over, and its keeper applies the goal when back', () => {
    expect(decide(alone('wait_primary', { health: 'bad', postgresRunning: false, keeperSilentMs: 60_000 })).rule).toBe(RULE);
  });

  it('never applies while another node of the group exists, in any state; a dropped one does not count', () => {
    const fired: string[] = [];
    for (const primaryState of ['primary', 'wait_primary'] as const) {
      for (const other of NODE_STATES.filter((s) => s !== 'dropped')) {
        for (const reported of new Set<NodeState>([other, 'init'])) {
          for (const keeperSilentMs of [0, 60_000]) {
            const facts = groupFacts().primary({ state: primaryState }).node({ reportedState: reported, goalState: other, keeperSilentMs }).build();
            const rules = decideUntilStable(facts).map((a) => a.rule);
            if (rules.includes(RULE)) fired.push(`${primaryState} + ${reported}/${other} silent ${keeperSilentMs} ms: ${rules.join(', ')}`);
          }
        }
      }
    }
    expect(fired).toEqual([]);
    const withDropped = groupFacts().primary({ state: 'wait_primary' }).standby({ reportedState: 'secondary', goalState: 'dropped' }).build();
    expect(decide(withDropped).rule).toBe(RULE);
  });

  it('does not touch single, nor a primary that is still being promoted or demoted', () => {
    for (const state of ['single', 'join_primary', 'apply_settings', 'stop_replication', 'draining', 'demote_timeout', 'demoted'] as const) {
      expect(decideUntilStable(alone(state)).map((a) => a.rule), state).not.toContain(RULE);
    }
  });

  it('after a failover, dropping the old primary leaves the new primary single; pgha perform restart is then accepted', () => {
    const group = new SimulatedGroup(
      groupFacts({ nowMs: T0 })
        .standby({ nodeId: 1, state: 'demoted', postgresRunning: false, health: 'bad', streaming: false })
        .primary({ nodeId: 2, state: 'wait_primary' })
        .build(),
    );
    expect(restartRefusal(group.facts, 2)).toMatch(/node 1 "node1" is demoted/);
    group.command({ type: 'drop-node', nodeId: 1 });
    expect(group.lastAssignments.map((a) => [a.nodeId, a.goalState, a.rule])).toEqual([
      [1, 'dropped', 'drop-node'],
      [2, 'single', RULE],
    ]);
    // The dropped keeper reports, and the monitor removes the node's row.
    group.facts = { ...group.facts, nodes: group.facts.nodes.filter((n) => n.nodeId !== 1) };
    round(group);
    expect(group.states()).toEqual([[2, 'single', 'single']]);
    expect(restartRefusal(group.facts, 2)).toBeUndefined();
    expect(group.violations).toEqual([]);
  });

  it('a node that registers later takes the single back to wait_primary, and the group converges to primary + secondary', () => {
    const group = new SimulatedGroup(alone('single'));
    group.facts = groupFacts({ nowMs: group.nowMs }).single().registered().build();
    group.decide();
    expect(group.lastAssignments.map((a) => [a.nodeId, a.goalState, a.rule])).toEqual([
      [2, 'wait_standby', 'register-standby'],
      [1, 'wait_primary', 'register-standby'],
    ]);
    for (let i = 0; i < 10 && !(group.goal(1) === 'primary' && group.goal(2) === 'secondary' && group.node(1).reportedState === 'primary'); i++) round(group);
    expect(group.states()).toEqual([
      [1, 'primary', 'primary'],
      [2, 'secondary', 'secondary'],
    ]);
    expect(group.violations).toEqual([]);
  });
});
