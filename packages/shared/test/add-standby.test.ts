import { decide, lsn, parseLsn, synchronousStandbyNames, writableGoalHolders, type NodeFacts } from '@pgha/shared';
import { describe, expect, it } from 'vitest';
import { groupFacts, T0 } from './fact-builders.js';
import { SimulatedGroup, checkDecision, monitorDecides } from './simulate.js';

const PRIMARY_LSN = parseLsn('0/5000000');
const MB = 1024 * 1024;

/** Node 1 single, node 2 just registered. */
function singleAndNewcomer(): SimulatedGroup {
  return new SimulatedGroup(groupFacts({ nowMs: T0 }).single({ lsn: PRIMARY_LSN }).registered().build());
}

/** Runs the sequence up to node 2 `catchingup` (reached) and node 1 `wait_primary` (reached). */
function standbyCatchingUp(): SimulatedGroup {
  const group = singleAndNewcomer().decide('register');
  group.reach(2).reach(1).decide('report');
  return group.advance(200).reach(2, {
    postgresRunning: true,
    health: 'good',
    upstreamStreaming: true,
    reportedLsn: PRIMARY_LSN,
  });
}

describe('adding a standby to a single node', () => {
  it('registration: the newcomer waits in wait_standby, the single node prepares in wait_primary', () => {
    const group = singleAndNewcomer().decide('register');

    expect(group.lastGoals()).toEqual({ 1: 'wait_primary', 2: 'wait_standby' });
    expect(group.lastRules()).toEqual(['register-standby']);
    expect(writableGoalHolders(group.facts)).toEqual([1]);
    expect(group.violations).toEqual([]);
  });

  it('the standby is not told to base-backup until the primary reports wait_primary', () => {
    const group = singleAndNewcomer().decide('register');

    group.reach(2).decide('report');
    expect(group.lastAssignments).toEqual([]);
    expect(group.goal(2)).toBe('wait_standby');

    group.reach(1).decide('report');
    expect(group.lastGoals()).toEqual({ 2: 'catchingup' });
    expect(group.lastRules()).toEqual(['standby-start-catchingup']);
    expect(group.goal(1)).toBe('wait_primary');
  });

  it('a streaming standby within catchupLagBytes on the primary timeline becomes secondary', () => {
    const group = standbyCatchingUp().decide('report');

    expect(group.lastGoals()).toEqual({ 2: 'secondary' });
    expect(group.lastRules()).toEqual(['standby-caught-up']);
    // Synchronous replication stays off until the standby has actually reached secondary.
    expect(group.goal(1)).toBe('wait_primary');
  });

  it('exactly catchupLagBytes behind still counts as caught up', () => {
    const group = standbyCatchingUp();
    group.set(2, { reportedLsn: lsn(PRIMARY_LSN - BigInt(group.facts.settings.catchupLagBytes)) }).decide();
    expect(group.goal(2)).toBe('secondary');
  });

  const notCaughtUp: Array<[string, (g: SimulatedGroup) => Partial<NodeFacts>]> = [
    ['its lag is larger than catchupLagBytes', (g) => ({ reportedLsn: lsn(PRIMARY_LSN - BigInt(g.facts.settings.catchupLagBytes) - 1n) })],
    ['it is on another timeline than the primary', () => ({ reportedTimeline: 2 })],
    ['its WAL receiver does not stream', () => ({ upstreamStreaming: false, lastStreamingMs: null })],
    ['it last streamed longer ago than standbyStreamingTimeoutMs', (g) => ({
      upstreamStreaming: true,
      lastStreamingMs: g.nowMs - g.facts.settings.standbyStreamingTimeoutMs - 1,
    })],
    ['its keeper is silent', (g) => ({ lastReportMs: g.nowMs - g.facts.settings.nodeUnhealthyTimeoutMs - 1 })],
    ['its Postgres is not running', () => ({ postgresRunning: false })],
  ];

  it.each(notCaughtUp)('the standby stays catchingup when %s', (_label, patch) => {
    const group = standbyCatchingUp();
    group.set(2, patch(group)).decide('report');

    expect(group.goal(2)).toBe('catchingup');
    expect(group.goal(1)).toBe('wait_primary');
    expect(synchronousStandbyNames(group.facts, 1)).toBe('');
  });

  it('the primary turns synchronous replication on (primary) once the quorum secondary is reached and healthy', () => {
    const group = standbyCatchingUp().decide('report');
    group.advance(200).reach(2).decide('report');

    expect(group.lastGoals()).toEqual({ 1: 'primary' });
    expect(group.lastRules()).toEqual(['enable-sync']);
    expect(synchronousStandbyNames(group.facts, 1)).toBe('ANY 1 (pgha_node_2)');

    group.reach(1).advance(200).report(2).decide('timer');
    expect(group.lastAssignments).toEqual([]);
    expect(group.node(1)).toMatchObject({ reportedState: 'primary', goalState: 'primary' });
    expect(group.node(2)).toMatchObject({ reportedState: 'secondary', goalState: 'secondary' });
    expect(group.violations).toEqual([]);
  });

  it('a secondary without replication quorum does not turn synchronous replication on', () => {
    const facts = groupFacts()
      .primary({ state: 'wait_primary' })
      .standby({ replicationQuorum: false })
      .build();
    expect(decide(facts).assignments).toEqual([]);
  });

  it('a secondary that stopped streaming does not turn synchronous replication on', () => {
    const facts = groupFacts({ nowMs: T0 })
      .primary({ state: 'wait_primary' })
      .standby({ notStreamingForMs: 10_000 })
      .build();
    const decision = decide(facts);
    expect(decision.assignments.find((a) => a.nodeId === 1 && a.goalState === 'primary')).toBeUndefined();
  });

  it('a catchingup standby far behind stays catchingup even after a long time streaming', () => {
    const facts = groupFacts()
      .primary({ state: 'wait_primary', lsn: '1/0' })
      .standby({ state: 'catchingup', lsn: lsn(parseLsn('1/0') - BigInt(64 * MB)) })
      .build();
    expect(decide(facts).assignments).toEqual([]);
  });
});

describe('a third node registers while the primary is primary', () => {
  function twoNodesAndNewcomer(): SimulatedGroup {
    return new SimulatedGroup(
      groupFacts({ nowMs: T0 }).primary({ lsn: PRIMARY_LSN }).standby().registered().build(),
    );
  }

  it('primary → join_primary → primary while the newcomer goes wait_standby → catchingup → secondary', () => {
    const group = twoNodesAndNewcomer().decide('register');
    expect(group.lastGoals()).toEqual({ 1: 'join_primary', 3: 'wait_standby' });
    expect(group.lastRules()).toEqual(['register-standby']);
    // The existing secondary is left alone.
    expect(group.goal(2)).toBe('secondary');

    group.advance(100).report(2).reach(3).reach(1).decide('report');
    expect(group.lastGoals()).toEqual({ 1: 'primary', 3: 'catchingup' });
    expect(group.lastRules()).toEqual(['standby-start-catchingup']);

    group.advance(100).report(2).reach(1).reach(3, {
      postgresRunning: true, health: 'good', upstreamStreaming: true, reportedLsn: PRIMARY_LSN,
    }).decide('report');
    expect(group.lastGoals()).toEqual({ 3: 'secondary' });

    group.advance(100).report(2).report(1).reach(3).decide('report');
    expect(group.lastAssignments).toEqual([]);
    expect(group.facts.nodes.map((n) => [n.reportedState, n.goalState])).toEqual([
      ['primary', 'primary'],
      ['secondary', 'secondary'],
      ['secondary', 'secondary'],
    ]);
    expect(synchronousStandbyNames(group.facts, 1)).toBe('ANY 1 (pgha_node_2, pgha_node_3)');
    expect(group.violations).toEqual([]);
  });

  it('if the only secondary failed meanwhile, the primary leaves join_primary for wait_primary', () => {
    const group = twoNodesAndNewcomer().decide('register');
    group.advance(5_000).report(1).reach(3).reach(1).set(2, { health: 'bad' }).decide('report');

    expect(group.goal(2)).toBe('catchingup');
    expect(group.goal(1)).toBe('wait_primary');
    expect(group.goal(3)).toBe('catchingup');
    expect(writableGoalHolders(group.facts)).toEqual([1]);
    expect(group.violations).toEqual([]);
  });

  it('a node registering while the primary is wait_primary also goes through join_primary', () => {
    const group = new SimulatedGroup(
      groupFacts().primary({ state: 'wait_primary' }).standby({ state: 'catchingup' }).registered().build(),
    ).decide('register');
    expect(group.lastGoals()).toEqual({ 1: 'join_primary', 3: 'wait_standby' });

    group.reach(1).reach(3).report(2).decide('report');
    expect(group.goal(1)).toBe('wait_primary');
    expect(group.goal(3)).toBe('catchingup');
  });
});

describe('registration while the primary has not reached its goal yet', () => {
  it('a standby registers before the first node has reported single: no goal the keeper cannot reach from init', () => {
    // Both keepers ran `pgha keeper create` at once: node 1 was assigned single but is still
    // initdb-ing (reported init) when node 2 registers.
    const facts = groupFacts().node({ reportedState: 'init', goalState: 'single', postgresRunning: false }).registered().build();
    const { assignments } = monitorDecides(facts, 'register');
    expect(checkDecision(facts, assignments)).toEqual([]);
  });

  it('a standby registers while the failover candidate is promoting: no undeclared stop_replication -> join_primary', () => {
    const facts = groupFacts()
      .primary({ health: 'bad', keeperSilentMs: 10_000, reportedState: 'primary', goalState: 'demote_timeout' })
      .standby({ state: 'stop_replication', streaming: false, timeline: 2 })
      .registered()
      .build();
    const { assignments } = monitorDecides(facts, 'register');
    expect(checkDecision(facts, assignments)).toEqual([]);
  });
});
