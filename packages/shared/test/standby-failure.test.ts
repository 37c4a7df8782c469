import { DEFAULT_FORMATION_SETTINGS, decide, synchronousStandbyNames, writableGoalHolders } from '@pgha/shared';
import { describe, expect, it } from 'vitest';
import { groupFacts, T0 } from './fact-builders.js';
import { SimulatedGroup } from './simulate.js';

const { nodeUnhealthyTimeoutMs, standbyStreamingTimeoutMs } = DEFAULT_FORMATION_SETTINGS;

/** Node 1 primary, node 2 secondary, both healthy at T0. */
function healthyPair(settings: { numberSyncStandbys?: number } = {}): SimulatedGroup {
  return new SimulatedGroup(groupFacts({ nowMs: T0, settings }).primary().standby().build());
}

describe('a secondary fails', () => {
  it("its Postgres is down (probe fails, keeper silent): standby catchingup, primary wait_primary so writes continue", () => {
    const group = healthyPair();
    group.advance(nodeUnhealthyTimeoutMs + 1).report(1).set(2, { health: 'bad' }).decide('health');

    expect(group.lastGoals()).toEqual({ 1: 'wait_primary', 2: 'catchingup' });
    expect(group.lastRules()).toEqual(['standby-failed']);
    const reasonOf2 = group.lastAssignments.find((a) => a.nodeId === 2)?.reason;
    expect(reasonOf2).toMatch(/probe/);
    expect(writableGoalHolders(group.facts)).toEqual([1]);
    expect(synchronousStandbyNames(group.facts, 1)).toBe('');
    expect(group.violations).toEqual([]);
  });

  it('its keeper reports that Postgres is not running and the probe fails: same outcome at once', () => {
    const group = healthyPair();
    group.advance(100).report(1).report(2, { postgresRunning: false, upstreamStreaming: false }).set(2, { health: 'bad' }).decide('report');
    expect(group.lastGoals()).toEqual({ 1: 'wait_primary', 2: 'catchingup' });
  });

  it('probe failed but the keeper is still within nodeUnhealthyTimeoutMs and says Postgres runs: nothing changes yet', () => {
    const group = healthyPair();
    group.advance(nodeUnhealthyTimeoutMs).report(1).set(2, { health: 'bad' }).decide('health');
    expect(group.lastAssignments).toEqual([]);
    expect(group.goal(1)).toBe('primary');
  });

  it('with number_sync_standbys 1 the primary keeps synchronous replication on (writes wait) and only the standby is demoted', () => {
    const group = healthyPair({ numberSyncStandbys: 1 });
    group.advance(nodeUnhealthyTimeoutMs + 1).report(1).set(2, { health: 'bad' }).decide('health');
    expect(group.lastGoals()).toEqual({ 2: 'catchingup' });
    expect(group.goal(1)).toBe('primary');
  });

  it('its WAL receiver has not streamed for longer than standbyStreamingTimeoutMs: same outcome', () => {
    const group = healthyPair();
    group.advance(standbyStreamingTimeoutMs + 1).report(1).report(2, { upstreamStreaming: false }).decide('report');

    expect(group.lastGoals()).toEqual({ 1: 'wait_primary', 2: 'catchingup' });
    expect(group.lastAssignments.find((a) => a.nodeId === 2)?.reason).toMatch(/WAL receiver has not streamed/);
    expect(group.violations).toEqual([]);
  });

  it('its WAL receiver stopped less than standbyStreamingTimeoutMs ago (a reconnect blip): nothing changes yet', () => {
    // The keeper reports upstreamStreaming=false, but it streamed standbyStreamingTimeoutMs ago
    // at most: per settings.ts the standby only stops counting after that long.
    const facts = groupFacts({ nowMs: T0 })
      .primary()
      .standby({ notStreamingForMs: 500 })
      .build();
    expect(decide(facts, { type: 'evaluate', cause: 'report' }).assignments).toEqual([]);
  });

  it('its keeper died but Postgres still answers the probe: nothing changes, however long', () => {
    const group = healthyPair();
    for (let i = 0; i < 10; i++) group.advance(nodeUnhealthyTimeoutMs).report(1).decide('timer');
    expect(group.history).toEqual([]);
    expect(group.node(2).goalState).toBe('secondary');
    expect(group.node(1).goalState).toBe('primary');
    expect(synchronousStandbyNames(group.facts, 1)).toBe('ANY 1 (pgha_node_2)');
  });

  it('it stops streaming because the primary died: standby-failed does not fire, failover does', () => {
    const group = healthyPair();
    group
      .advance(standbyStreamingTimeoutMs + 1)
      .set(1, { health: 'bad' })
      .report(2, { upstreamStreaming: false })
      .decide('health');

    expect(group.history.map((a) => a.rule)).not.toContain('standby-failed');
    expect(group.lastRules()[0]).toBe('failover-start');
    expect(group.history.filter((a) => a.rule === 'failover-start').map((a) => [a.nodeId, a.goalState])).toEqual([
      [1, 'demote_timeout'],
      [2, 'prepare_promotion'],
    ]);
    expect(group.violations).toEqual([]);
  });

  it('with two secondaries, one failing leaves the primary in primary (the other still acknowledges)', () => {
    const group = new SimulatedGroup(groupFacts({ nowMs: T0 }).primary().standby().standby().build());
    group.advance(nodeUnhealthyTimeoutMs + 1).report(1).report(2).set(3, { health: 'bad' }).decide('health');

    expect(group.lastGoals()).toEqual({ 3: 'catchingup' });
    expect(group.goal(1)).toBe('primary');
    expect(synchronousStandbyNames(group.facts, 1)).toBe('ANY 1 (pgha_node_2)');
  });

  it('both secondaries failing at once: both catchingup and the primary wait_primary', () => {
    const facts = groupFacts({ nowMs: T0 })
      .primary()
      .standby({ health: 'bad', keeperSilentMs: nodeUnhealthyTimeoutMs + 1 })
      .standby({ notStreamingForMs: standbyStreamingTimeoutMs + 1 })
      .build();
    const decision = decide(facts, { type: 'evaluate', cause: 'health' });
    expect(Object.fromEntries(decision.assignments.map((a) => [a.nodeId, a.goalState]))).toEqual({
      1: 'wait_primary',
      2: 'catchingup',
      3: 'catchingup',
    });
  });

  it('the failed standby comes back: catchingup → secondary, then the primary goes back to primary', () => {
    const group = healthyPair();
    group.advance(nodeUnhealthyTimeoutMs + 1).report(1).set(2, { health: 'bad' }).decide('health');
    group.reach(1).decide();
    expect(group.lastAssignments).toEqual([]);

    // Postgres restarts and the keeper reports catchingup, streaming again.
    group.advance(1_000).report(1).set(2, { health: 'good' }).reach(2, { postgresRunning: true, upstreamStreaming: true }).decide('report');
    expect(group.lastGoals()).toEqual({ 2: 'secondary' });

    group.advance(100).report(1).reach(2).decide('report');
    expect(group.lastGoals()).toEqual({ 1: 'primary' });
    expect(group.violations).toEqual([]);
  });
});
