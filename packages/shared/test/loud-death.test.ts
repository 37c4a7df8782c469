/**
 * A loud death (docs/timeouts.md, "A loud death"): every process of a node killed while its
 * host stays up. The monitor's fact `diedLoudlyMs` (its keeper's connections closed by the
 * keeper's side, then its keeper's and its Postgres's ports refused twice) stands for the
 * keeper-silence and probe witnesses at once; a failover still needs the third, no standby
 * streaming. Every combination of the witnesses is checked against the rule as the docs state it.
 */
import { DEFAULT_FORMATION_SETTINGS, decide, diedLoudly, keeperIsAlive, postgresIsDown, primaryHasFailed, writableGoalHolders, type NodeFacts } from '@pgha/shared';
import { describe, expect, it } from 'vitest';
import { groupFacts, nodeOf, T0 } from './fact-builders.js';
import { SimulatedGroup } from './simulate.js';

const { nodeUnhealthyTimeoutMs } = DEFAULT_FORMATION_SETTINGS;

/** Node 1 primary, node 2 secondary, both just reported at T0. */
function healthyPair(): SimulatedGroup {
  return new SimulatedGroup(groupFacts({ nowMs: T0 }).primary().standby().build());
}

describe('a loud death', () => {
  it('the primary dies loudly and its standby reports it no longer streams: failover at once, without waiting for nodeUnhealthyTimeoutMs', () => {
    const group = healthyPair();
    // 120 ms after the kill: the monitor has seen the keeper's connections close and two refusals.
    group.advance(120).set(1, { diedLoudlyMs: T0 + 120 }).decide('health');
    // The standby's keeper has not reported yet: it still streams as far as the monitor knows.
    expect(group.history).toEqual([]);
    group.advance(10).report(2, { upstreamStreaming: false }).decide('report');
    expect(group.history.slice(0, 2).map((a) => [a.nodeId, a.goalState, a.rule])).toEqual([
      [1, 'demote_timeout', 'failover-start'],
      [2, 'prepare_promotion', 'failover-start'],
    ]);
    expect(group.history[0]?.reason).toBe(
      'node 1 "node1" failed: died loudly: its keeper\'s connections to the monitor closed, then its keeper\'s and its Postgres\'s ports refused connections twice, no standby streams from it',
    );
    // The rest of the failover is the usual one.
    group.advance(50).reach(2).decide('report');
    expect(group.lastGoals()).toEqual({ 2: 'stop_replication' });
    group.advance(100).reach(2, { reportedTimeline: 2 }).decide('report');
    expect(group.lastGoals()).toEqual({ 1: 'demoted', 2: 'wait_primary' });
    expect(writableGoalHolders(group.facts)).toEqual([2]);
    expect(group.nowMs - T0).toBeLessThan(nodeUnhealthyTimeoutMs);
    expect(group.violations).toEqual([]);
  });

  it('a standby that still streams from the loudly dead primary holds the failover back, however long', () => {
    const group = healthyPair().advance(100).set(1, { diedLoudlyMs: T0 + 100 });
    for (let i = 0; i < 10; i++) group.advance(500).report(2).decide('timer');
    expect(group.history).toEqual([]);
  });

  it('a report of the node\'s keeper after the fact (it lives) cancels it: no failover while its Postgres restarts', () => {
    const group = healthyPair().advance(100).set(1, { diedLoudlyMs: T0 + 100 });
    group.advance(50).report(1, { postgresRunning: true }).report(2, { upstreamStreaming: false }).decide('report');
    expect(diedLoudly(group.node(1))).toBe(false);
    expect(group.history).toEqual([]);
  });

  it('a loudly dead standby is unhealthy at once: it goes back to catchingup and the primary stops waiting for it', () => {
    const group = healthyPair().advance(100).set(2, { diedLoudlyMs: T0 + 100 }).decide('health');
    expect(group.lastGoals()).toEqual({ 1: 'wait_primary', 2: 'catchingup' });
    expect(group.history[0]?.reason).toMatch(/^node 2 "node2" is unhealthy: it died loudly/);
    expect(group.violations).toEqual([]);
  });

  it('a loudly dead primary in wait_primary (synchronous replication off) is never failed over', () => {
    const group = new SimulatedGroup(groupFacts({ nowMs: T0 }).primary({ state: 'wait_primary' }).standby({ state: 'catchingup' }).build());
    group.advance(100).set(1, { diedLoudlyMs: T0 + 100 }).report(2, { upstreamStreaming: false }).decide('health');
    expect(group.history).toEqual([]);
  });

  describe('the rule, over every combination of its witnesses', () => {
    // What the monitor may know of the primary (node 1) 150 ms or 2.5 s after a fault.
    const primaryCases: { name: string; patch: Partial<NodeFacts>; atMs: number }[] = [];
    for (const loud of ['none', 'current', 'reported since'] as const) {
      for (const health of ['good', 'bad'] as const) {
        for (const silentMs of [0, nodeUnhealthyTimeoutMs + 1]) {
          for (const postgresRunning of [true, false]) {
            const lastReportMs = T0 - silentMs;
            const diedLoudlyMs = loud === 'none' ? null : loud === 'current' ? T0 - 10 : lastReportMs - 10;
            primaryCases.push({ name: `loud death ${loud}, probe ${health}, keeper silent ${silentMs} ms, keeper says Postgres ${postgresRunning ? 'runs' : 'is down'}`, patch: { health, lastReportMs, postgresRunning, diedLoudlyMs }, atMs: T0 });
          }
        }
      }
    }
    for (const c of primaryCases) {
      for (const standbyStreams of [true, false]) {
        it(`${c.name}, standby ${standbyStreams ? 'streams' : 'does not stream'}`, () => {
          const base = groupFacts({ nowMs: c.atMs }).primary().standby(standbyStreams ? {} : { notStreamingForMs: 100 }).build();
          const facts = { ...base, nodes: base.nodes.map((n) => (n.nodeId === 1 ? { ...n, ...c.patch } : n)) };
          const primary = nodeOf(facts, 1);
          const loud = c.patch.diedLoudlyMs !== null && c.patch.diedLoudlyMs! >= primary.lastReportMs!;
          const silent = T0 - primary.lastReportMs! > nodeUnhealthyTimeoutMs;
          // docs/timeouts.md: (died loudly, or probe bad and (keeper silent or Postgres down)) and no standby streams.
          const down = loud || (c.patch.health === 'bad' && (silent || !c.patch.postgresRunning));
          expect(diedLoudly(primary)).toBe(loud);
          expect(keeperIsAlive(facts, primary)).toBe(!silent && !loud);
          expect(postgresIsDown(facts, primary)).toBe(down);
          expect(primaryHasFailed(facts, primary)).toBe(down && !standbyStreams);
          const goals = decide(facts, { type: 'evaluate', cause: 'timer' }).assignments.map((a) => [a.nodeId, a.goalState]);
          if (down && !standbyStreams) expect(goals).toEqual([[1, 'demote_timeout'], [2, 'prepare_promotion']]);
          else expect(goals.filter(([, g]) => g === 'prepare_promotion' || g === 'demote_timeout')).toEqual([]);
        });
      }
    }
  });
});
