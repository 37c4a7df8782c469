/**
 * Operator commands (issue 3): `decide(facts, command)` yields goal assignments, or a refusal
 * with its reason that changes nothing. Sequences run the way the group driver runs a command:
 * the command's assignments, then the rules that follow from them; keepers then reach their
 * goals (see `SimulatedGroup`).
 */
import {
  DEFAULT_FORMATION_SETTINGS,
  decide,
  groupPhase,
  writableGoalHolders,
  type FormationSettings,
  type GroupFacts,
  type OperatorEvent,
} from '@pgha/shared';
import { describe, expect, it } from 'vitest';
import { groupFacts, T0, type NodeSpec } from './fact-builders.js';
import { SimulatedGroup } from './simulate.js';

const { nodeUnhealthyTimeoutMs } = DEFAULT_FORMATION_SETTINGS;

/**
 * A converged group: node 1 primary (running with the synchronous_standby_names the monitor
 * computes), the others healthy secondaries at its LSN.
 */
function converged(standbys: NodeSpec[], settings: Partial<FormationSettings> = {}): SimulatedGroup {
  const builder = groupFacts({ nowMs: T0, settings }).primary();
  for (const spec of standbys) builder.standby(spec);
  const group = new SimulatedGroup(builder.build());
  return group.reach(1);
}

/** Every keeper reports once (each reaches its goal), time moves on 100 ms, the monitor decides. */
function round(group: SimulatedGroup, patches: Record<number, Parameters<SimulatedGroup['reach']>[1]> = {}): SimulatedGroup {
  group.advance(100);
  for (const n of group.facts.nodes) group.reach(n.nodeId, patches[n.nodeId]);
  return group.decide('report');
}

/** Runs rounds until nothing changes (at most `max`). */
function settle(group: SimulatedGroup, max = 10): SimulatedGroup {
  for (let i = 0; i < max; i++) {
    round(group);
    if (group.lastAssignments.length === 0 && group.facts.nodes.every((n) => n.reportedState === n.goalState)) break;
  }
  return group;
}

function goalsOf(group: SimulatedGroup): Record<number, string> {
  return Object.fromEntries(group.facts.nodes.map((n) => [n.nodeId, n.goalState]));
}

/** Refused: a reason, no assignment, the same phase. */
function expectRefused(facts: GroupFacts, event: OperatorEvent, reason: string | RegExp): void {
  const decision = decide(facts, event);
  expect(decision.assignments).toEqual([]);
  expect(decision.nextPhase).toBe(decision.phase);
  if (typeof reason === 'string') expect(decision.refusal).toBe(reason);
  else expect(decision.refusal).toMatch(reason);
}

describe('switchover', () => {
  it('2 nodes: draining + prepare_promotion → stop_replication once the old primary reports draining → wait_primary; the old primary rejoins (demoted → catchingup → secondary)', () => {
    const group = converged([{}]).command({ type: 'perform-switchover' });
    expect(group.lastRefusal).toBeUndefined();
    expect(group.lastAssignments.map((a) => [a.nodeId, a.goalState, a.rule, a.reason])).toEqual([
      [1, 'draining', 'perform-switchover', 'node 1 "node1" stops for a switchover to node 2 "node2" (operator)'],
      [2, 'prepare_promotion', 'perform-switchover', 'node 2 "node2" wins the election (candidate priority 50, LSN 0/5000000) (operator)'],
    ]);
    expect(groupPhase(group.facts)).toBe('failover');
    expect(writableGoalHolders(group.facts)).toEqual([]);

    // The candidate is ready, but node 1 has not reported draining: it may still take writes.
    group.advance(100).reach(2).report(1).decide();
    expect(group.lastAssignments).toEqual([]);

    group.advance(100).reach(1).report(2).decide();
    expect(group.node(1)).toMatchObject({ reportedState: 'draining', postgresRunning: false });
    expect(group.lastGoals()).toEqual({ 2: 'stop_replication' });
    expect(group.lastAssignments[0]?.reason).toBe('node 2 "node2" promotes: the old primary has stopped');

    group.advance(100).reach(2, { reportedTimeline: 2 }).report(1).decide();
    expect(group.lastGoals()).toEqual({ 1: 'demoted', 2: 'wait_primary' });
    expect(group.lastRules()).toEqual(['promotion-done']);
    expect(groupPhase(group.facts)).toBe('steady');

    group.advance(100).reach(2).reach(1).decide();
    expect(group.lastGoals()).toEqual({ 1: 'catchingup' });
    expect(group.lastRules()).toEqual(['demoted-rejoin']);
    group.advance(100).report(2).reach(1).decide();
    expect(group.lastGoals()).toEqual({ 1: 'secondary' });
    group.advance(100).report(2).reach(1).decide();
    expect(group.lastGoals()).toEqual({ 2: 'primary' });
    settle(group);
    expect(group.states()).toEqual([
      [1, 'secondary', 'secondary'],
      [2, 'primary', 'primary'],
    ]);
    expect(group.history.filter((a) => a.nodeId === 1).map((a) => a.goalState)).toEqual(['draining', 'demoted', 'catchingup', 'secondary']);
    expect(group.node(2).synchronousStandbyNames).toBe('ANY 1 (pgha_node_1)');
    expect(group.violations).toEqual([]);
  });

  it('2 nodes: the old primary that fails while draining (Postgres down) also lets the candidate promote', () => {
    const group = converged([{}]).command({ type: 'perform-switchover' });
    group.advance(100).reach(2).report(1, { postgresRunning: false }).set(1, { health: 'bad' }).decide();
    expect(group.lastGoals()).toEqual({ 2: 'stop_replication' });
  });

  it('3 nodes: the highest candidate priority is chosen; the other standby join_secondary → secondary; the old primary rejoins', () => {
    const group = converged([{}, { candidatePriority: 90 }]).command({ type: 'perform-switchover' });
    expect(group.lastGoals()).toEqual({ 1: 'draining', 3: 'prepare_promotion' });
    expect(group.goal(2), 'the other standby is left alone until the promotion').toBe('secondary');

    round(group);
    expect(group.lastGoals()).toEqual({ 3: 'stop_replication' });
    round(group, { 3: { reportedTimeline: 2 } });
    expect(group.lastGoals()).toEqual({ 1: 'demoted', 2: 'join_secondary', 3: 'wait_primary' });
    // Node 2 re-points once node 3 has settled in wait_primary; node 1 rewinds.
    round(group);
    expect(group.lastGoals()).toEqual({ 1: 'catchingup' });
    round(group);
    expect(group.lastGoals()).toMatchObject({ 2: 'secondary' });
    settle(group);
    expect(group.states()).toEqual([
      [1, 'secondary', 'secondary'],
      [2, 'secondary', 'secondary'],
      [3, 'primary', 'primary'],
    ]);
    expect(group.node(3).synchronousStandbyNames).toBe('ANY 1 (pgha_node_1, pgha_node_2)');
    expect(group.history.filter((a) => a.nodeId === 1).map((a) => a.goalState)).toEqual(['draining', 'demoted', 'catchingup', 'secondary']);
    expect(group.history.filter((a) => a.goalState === 'stop_replication').map((a) => a.nodeId)).toEqual([3]);
    expect(group.violations).toEqual([]);
  });

  it('twice in a row, back and forth: the first primary is primary again', () => {
    const group = settle(converged([{}]).command({ type: 'perform-switchover' }));
    expect(goalsOf(group)).toEqual({ 1: 'secondary', 2: 'primary' });
    settle(group.command({ type: 'perform-switchover' }));
    expect(group.states()).toEqual([
      [1, 'primary', 'primary'],
      [2, 'secondary', 'secondary'],
    ]);
    expect(group.violations).toEqual([]);
  });

  it('perform-failover with a healthy primary is a switchover (rule perform-failover)', () => {
    const decision = decide(converged([{}]).facts, { type: 'perform-failover' });
    expect(decision.assignments.map((a) => [a.nodeId, a.goalState, a.rule])).toEqual([
      [1, 'draining', 'perform-failover'],
      [2, 'prepare_promotion', 'perform-failover'],
    ]);
  });

  it('perform-failover with a failed primary starts the failover at once: demote_timeout, and the election', () => {
    const dead: NodeSpec = { health: 'bad', keeperSilentMs: nodeUnhealthyTimeoutMs + 1 };
    const orphan: NodeSpec = { notStreamingForMs: nodeUnhealthyTimeoutMs + 1 };
    const two = decide(groupFacts().primary(dead).standby(orphan).build(), { type: 'perform-failover' });
    expect(two.assignments.map((a) => [a.nodeId, a.goalState, a.rule])).toEqual([
      [1, 'demote_timeout', 'perform-failover'],
      [2, 'prepare_promotion', 'perform-failover'],
    ]);
    const three = decide(groupFacts().primary(dead).standby(orphan).standby(orphan).build(), { type: 'perform-failover' });
    expect(three.assignments.map((a) => [a.nodeId, a.goalState])).toEqual([
      [1, 'demote_timeout'],
      [2, 'report_lsn'],
      [3, 'report_lsn'],
    ]);
  });
});

describe('promotion of a named node', () => {
  it('3 nodes: perform-promotion of node 3 (even with a lower candidate priority) makes it the primary', () => {
    const group = converged([{ candidatePriority: 100 }, { candidatePriority: 10 }]).command({ type: 'perform-promotion', nodeId: 3 });
    expect(group.lastAssignments.map((a) => [a.nodeId, a.goalState, a.rule])).toEqual([
      [1, 'draining', 'perform-promotion'],
      [3, 'prepare_promotion', 'perform-promotion'],
    ]);
    settle(group);
    expect(group.states()).toEqual([
      [1, 'secondary', 'secondary'],
      [2, 'secondary', 'secondary'],
      [3, 'primary', 'primary'],
    ]);
    expect(group.violations).toEqual([]);
  });

  it('of the current primary: a note, no change', () => {
    const facts = converged([{}]).facts;
    const decision = decide(facts, { type: 'perform-promotion', nodeId: 1 });
    expect(decision).toMatchObject({ assignments: [], note: 'node 1 "node1" is already the primary' });
    expect(decision.refusal).toBeUndefined();
    expect(decision.nextPhase).toBe('steady');
  });
});

describe('refusals: the reason, and nothing changes', () => {
  it('a transition is already running', () => {
    const facts = groupFacts().primary().standby({ reportedState: 'catchingup', goalState: 'secondary' }).build();
    const reason = 'a transition is already running: node 2 "node2" is catchingup with goal secondary; wait for it to finish (pgha show state)';
    expectRefused(facts, { type: 'perform-switchover' }, reason);
    expectRefused(facts, { type: 'perform-promotion', nodeId: 2 }, reason);
  });

  it('the group has no primary', () => {
    const facts = groupFacts().node({ state: 'demoted', postgresRunning: false, health: 'bad' }).standby().build();
    expectRefused(facts, { type: 'perform-switchover' }, 'the group has no primary');
  });

  it('the primary runs without synchronous replication (wait_primary)', () => {
    const facts = groupFacts().primary({ state: 'wait_primary' }).standby({ state: 'catchingup' }).build();
    expectRefused(facts, { type: 'perform-switchover' },
      'node 1 "node1" is wait_primary: no standby is synchronous, so a switchover could lose writes; wait until a standby is secondary');
  });

  it('the primary is unhealthy: a switchover says to use failover', () => {
    const facts = groupFacts().primary({ keeperSilentMs: nodeUnhealthyTimeoutMs + 1 }).standby().build();
    expectRefused(facts, { type: 'perform-switchover' }, 'node 1 "node1" is unhealthy: use pgha perform failover');
  });

  it('no standby can be promoted (candidate priority 0, or not streaming)', () => {
    const reason = 'no standby can be promoted: a healthy secondary with candidate priority > 0 is needed';
    expectRefused(groupFacts().primary().standby({ candidatePriority: 0 }).build(), { type: 'perform-switchover' }, reason);
    expectRefused(groupFacts({ nowMs: T0 }).primary().standby({ notStreamingForMs: 10_000 }).build(), { type: 'perform-switchover' }, reason);
  });

  it('perform_failover of a failed primary without an eligible standby', () => {
    const facts = groupFacts()
      .primary({ health: 'bad', keeperSilentMs: nodeUnhealthyTimeoutMs + 1 })
      .standby({ notStreamingForMs: nodeUnhealthyTimeoutMs + 1, candidatePriority: 0 })
      .build();
    expectRefused(facts, { type: 'perform-failover' },
      'no promotion: no reporting standby is eligible (candidate priority > 0, keeper alive, Postgres running)');
  });

  it('promotion of a node with candidate priority 0, of a node that is not a healthy secondary, of an unknown node', () => {
    const facts = groupFacts().primary().standby({ candidatePriority: 0 }).standby({ state: 'catchingup' }).build();
    expectRefused(facts, { type: 'perform-promotion', nodeId: 2 },
      'node 2 "node2" has candidate priority 0 (never promote); set a higher one first with pgha set node candidate-priority');
    expectRefused(facts, { type: 'perform-promotion', nodeId: 3 },
      'node 3 "node3" cannot be promoted: it must be a healthy secondary with candidate priority > 0');
    expectRefused(facts, { type: 'perform-promotion', nodeId: 9 }, 'node 9 is not in formation "default" group 0');
  });

  it('maintenance of the primary without --allow-failover', () => {
    expectRefused(converged([{}]).facts, { type: 'enable-maintenance', nodeId: 1, allowFailover: false },
      'node 1 "node1" is the primary: pass --allow-failover to switch over first, then enter maintenance');
  });

  it('maintenance of the primary with --allow-failover while it runs without synchronous replication', () => {
    expectRefused(groupFacts().primary({ state: 'wait_primary' }).standby({ state: 'catchingup' }).build(),
      { type: 'enable-maintenance', nodeId: 1, allowFailover: true }, /^node 1 "node1" is wait_primary: no standby is synchronous/);
  });

  it('maintenance of a standby when number_sync_standbys could no longer be satisfied', () => {
    const facts = converged([{}], { numberSyncStandbys: 1 }).facts;
    expectRefused(facts, { type: 'enable-maintenance', nodeId: 2, allowFailover: false },
      'number_sync_standbys is 1 and only 0 other healthy synchronous standbys would be left: writes would block; lower it first (pgha set formation number-sync-standbys)');
    // With a second synchronous standby it is possible.
    const three = converged([{}, {}], { numberSyncStandbys: 1 }).facts;
    expect(decide(three, { type: 'enable-maintenance', nodeId: 2, allowFailover: false }).assignments.map((a) => a.goalState)).toEqual(['wait_maintenance']);
  });

  it('maintenance of a node already in maintenance, of a node in a state it does not apply to; disabling it on a node not in maintenance', () => {
    const facts = groupFacts().primary().standby({ state: 'maintenance' }).standby().registered({ state: 'wait_standby' }).build();
    expectRefused(facts, { type: 'enable-maintenance', nodeId: 2, allowFailover: false }, 'node 2 "node2" is already in maintenance');
    expectRefused(facts, { type: 'enable-maintenance', nodeId: 4, allowFailover: false },
      'node 4 "node4" is wait_standby (goal wait_standby): maintenance applies to the primary or to a standby that has reached secondary or catchingup');
    expectRefused(facts, { type: 'disable-maintenance', nodeId: 3 }, 'node 3 "node3" is not in maintenance (it is secondary)');
  });

  it('dropping the primary while other nodes exist; dropping a node while a transition runs', () => {
    expectRefused(converged([{}]).facts, { type: 'drop-node', nodeId: 1 },
      'node 1 "node1" is the primary and other nodes depend on it: switch over first (pgha perform switchover), then drop it');
    const joining = groupFacts().primary({ state: 'join_primary' }).standby().registered({ state: 'wait_standby' }).build();
    expectRefused(joining, { type: 'drop-node', nodeId: 2 },
      'a transition is already running: node 1 "node1" has goal join_primary; drop the node once it is done');
  });

  it('dropping the old primary of a failover before a standby is promoted (found by the random histories)', () => {
    // The primary failed, the election's candidate died too and went back to secondary: the
    // failover restarts from the old primary once a candidate is healthy. Dropping it would
    // leave standbys only, with no rule to elect a primary among them.
    const stalled = groupFacts().primary({ state: 'demote_timeout', health: 'bad', postgresRunning: false }).standby().build();
    expectRefused(stalled, { type: 'drop-node', nodeId: 1 },
      'node 1 "node1" is the old primary of a failover that has not promoted a standby yet (goal demote_timeout): drop it once a standby is the primary (pgha show state)');
    // Once the standby is promoted, the old primary may go.
    const promoted = groupFacts().primary({ state: 'demote_timeout', health: 'bad', postgresRunning: false }).standby({ state: 'wait_primary' }).build();
    expect(decide(promoted, { type: 'drop-node', nodeId: 1 }).assignments.map((a) => [a.nodeId, a.goalState])).toEqual([[1, 'dropped']]);
  });

  it('during a failover or switchover every command but disable-maintenance is refused', () => {
    const group = converged([{}, { state: 'maintenance', streaming: false }]).command({ type: 'perform-switchover' });
    expect(groupPhase(group.facts)).toBe('failover');
    const reason = 'a failover or switchover is in progress; wait for it to finish (pgha show state)';
    const refused: OperatorEvent[] = [
      { type: 'perform-switchover' },
      { type: 'perform-failover' },
      { type: 'perform-promotion', nodeId: 2 },
      { type: 'enable-maintenance', nodeId: 2, allowFailover: true },
      { type: 'drop-node', nodeId: 3 },
    ];
    for (const event of refused) expectRefused(group.facts, event, reason);
    expect(decide(group.facts, { type: 'disable-maintenance', nodeId: 3 }).assignments.map((a) => [a.nodeId, a.goalState])).toEqual([[3, 'catchingup']]);
  });

  it('a refused command leaves the facts untouched', () => {
    const group = converged([{ candidatePriority: 0 }]);
    const before = group.facts;
    group.command({ type: 'perform-switchover' });
    expect(group.lastRefusal).toBeDefined();
    expect(group.facts).toBe(before);
    expect(group.history).toEqual([]);
  });
});

describe('maintenance', () => {
  it('of the standby of 2 nodes: primary → wait_primary, standby wait_maintenance → maintenance; disable → catchingup → secondary, primary back to primary', () => {
    const group = converged([{}]).command({ type: 'enable-maintenance', nodeId: 2, allowFailover: false });
    expect(group.lastAssignments.map((a) => [a.nodeId, a.goalState, a.rule])).toEqual([
      [2, 'wait_maintenance', 'enable-maintenance'],
      [1, 'wait_primary', 'sync-standby-gone'],
      [2, 'maintenance', 'maintenance-ready'],
    ]);
    round(group);
    expect(group.lastAssignments).toEqual([]);
    expect(group.node(1)).toMatchObject({ reportedState: 'wait_primary', synchronousStandbyNames: '' });

    group.command({ type: 'disable-maintenance', nodeId: 2 });
    expect(group.lastAssignments.map((a) => [a.nodeId, a.goalState, a.rule])).toEqual([[2, 'catchingup', 'disable-maintenance']]);
    round(group);
    expect(group.lastGoals()).toEqual({ 2: 'secondary' });
    round(group);
    expect(group.lastGoals()).toEqual({ 1: 'primary' });
    settle(group);
    expect(group.states()).toEqual([
      [1, 'primary', 'primary'],
      [2, 'secondary', 'secondary'],
    ]);
    expect(group.violations).toEqual([]);
  });

  it('of one standby of 3 nodes: the primary stays primary; maintenance once the primary no longer names it', () => {
    const group = converged([{}, {}]);
    expect(group.node(1).synchronousStandbyNames).toBe('ANY 1 (pgha_node_2, pgha_node_3)');
    group.command({ type: 'enable-maintenance', nodeId: 3, allowFailover: false });
    expect(group.lastGoals()).toEqual({ 3: 'wait_maintenance' });

    // Node 3 keeps streaming; the primary still runs with the old names.
    group.advance(100).reach(3).report(2).decide();
    expect(group.lastAssignments).toEqual([]);

    group.advance(100).reach(1).decide();
    expect(group.node(1).synchronousStandbyNames).toBe('ANY 1 (pgha_node_2)');
    expect(group.lastAssignments.map((a) => [a.nodeId, a.goalState, a.rule])).toEqual([[3, 'maintenance', 'maintenance-ready']]);
    expect(group.goal(1)).toBe('primary');

    settle(group.command({ type: 'disable-maintenance', nodeId: 3 }));
    expect(goalsOf(group)).toEqual({ 1: 'primary', 2: 'secondary', 3: 'secondary' });
    expect(group.violations).toEqual([]);
  });

  it('of the primary with --allow-failover: switchover first (prepare_maintenance), then maintenance; disable → it rejoins as a standby', () => {
    const group = converged([{}]).command({ type: 'enable-maintenance', nodeId: 1, allowFailover: true });
    expect(group.lastAssignments.map((a) => [a.nodeId, a.goalState, a.rule])).toEqual([
      [1, 'prepare_maintenance', 'enable-maintenance'],
      [2, 'prepare_promotion', 'enable-maintenance'],
    ]);
    expect(group.lastAssignments[0]?.reason).toBe('node 1 "node1" stops for a maintenance to node 2 "node2" (operator)');

    group.advance(100).reach(2).report(1).decide();
    expect(group.lastAssignments, 'node 1 has not stopped yet').toEqual([]);
    round(group);
    expect(group.lastGoals()).toEqual({ 2: 'stop_replication' });
    round(group, { 2: { reportedTimeline: 2 } });
    expect(group.lastGoals()).toEqual({ 1: 'maintenance', 2: 'wait_primary' });
    settle(group);
    expect(group.states()).toEqual([
      [1, 'maintenance', 'maintenance'],
      [2, 'wait_primary', 'wait_primary'],
    ]);

    settle(group.command({ type: 'disable-maintenance', nodeId: 1 }));
    expect(group.states()).toEqual([
      [1, 'secondary', 'secondary'],
      [2, 'primary', 'primary'],
    ]);
    expect(group.violations).toEqual([]);
  });
});

describe('drop node', () => {
  it('dropping the standby of 2 nodes: the primary is left alone and becomes single (lone-primary-single)', () => {
    const group = converged([{}]).command({ type: 'drop-node', nodeId: 2 });
    expect(group.lastAssignments.map((a) => [a.nodeId, a.goalState, a.rule])).toEqual([
      [2, 'dropped', 'drop-node'],
      [1, 'single', 'lone-primary-single'],
    ]);
    expect(group.lastAssignments[1]?.reason).toBe('node 1 "node1" is the only node left in the group: single, writable, no replication');
    // The keeper reports dropped and the monitor removes the node; the primary settles.
    group.reach(2);
    group.facts = { ...group.facts, nodes: group.facts.nodes.filter((n) => n.nodeId !== 2) };
    settle(group);
    expect(group.states()).toEqual([[1, 'single', 'single']]);
    expect(group.violations).toEqual([]);
  });

  it('dropping one standby of 3 nodes: refused while the primary lists it, accepted once it is in maintenance; synchronous replication stays on', () => {
    // With ANY 1 (pgha_node_2, pgha_node_3), a commit may be on node 3 alone while node 2 lags:
    // found by the random histories (a drop, then the primary's death, promoted node 2 below it).
    const group = converged([{}, {}]);
    expectRefused(group.facts, { type: 'drop-node', nodeId: 3 },
      'node 3 "node3" is in the synchronous_standby_names of the primary, node 1 "node1": commits acknowledged by it alone may be missing on the other standbys; take it out of synchronous replication first (pgha maintenance enable --name node3), then drop it');
    settle(group.command({ type: 'enable-maintenance', nodeId: 3, allowFailover: false }));
    expect(goalsOf(group)).toEqual({ 1: 'primary', 2: 'secondary', 3: 'maintenance' });
    group.command({ type: 'drop-node', nodeId: 3 });
    expect(group.lastAssignments.map((a) => [a.nodeId, a.goalState])).toEqual([[3, 'dropped']]);
    expect(group.goal(1)).toBe('primary');
    expect(group.violations).toEqual([]);
  });

  it('dropping a standby whose WAL is past every other standby\'s is refused until they catch up', () => {
    const facts = (lsn2: string) => groupFacts().primary({ lsn: '0/5000000' }).standby({ lsn: lsn2 }).standby({ state: 'maintenance', lsn: '0/4000000' }).build();
    expectRefused(facts('0/3000000'), { type: 'drop-node', nodeId: 3 },
      'node 3 "node3" reported WAL up to 0/4000000, past every other standby (node 2 "node2" at 0/3000000): it may hold commits they lack; drop it once they have caught up (pgha show state)');
    expect(decide(facts('0/4000000'), { type: 'drop-node', nodeId: 3 }).assignments.map((a) => [a.nodeId, a.goalState])).toEqual([[3, 'dropped']]);
  });

  it('the last node may be dropped', () => {
    const decision = decide(groupFacts().single().build(), { type: 'drop-node', nodeId: 1 });
    expect(decision.assignments.map((a) => [a.nodeId, a.goalState])).toEqual([[1, 'dropped']]);
  });
});
