import { DEFAULT_FORMATION_SETTINGS, RESTART_ON_REQUEST_GRACE_MS, restartRefusal } from '@pgha/shared';
import { describe, expect, it } from 'vitest';
import { groupFacts, T0 } from './fact-builders.js';
import { SimulatedGroup } from './simulate.js';

const { standbyStreamingTimeoutMs, nodeUnhealthyTimeoutMs } = DEFAULT_FORMATION_SETTINGS;

describe('restartRefusal: a restart only while the whole group is healthy', () => {
  it('accepts a restart of any node of a healthy group (primary and streaming secondaries at their goals)', () => {
    const facts = groupFacts({ nowMs: T0 }).primary().standby().standby().build();
    expect([1, 2, 3].map((id) => restartRefusal(facts, id))).toEqual([undefined, undefined, undefined]);
    expect(restartRefusal(groupFacts({ nowMs: T0 }).primary({ state: 'single' }).build(), 1)).toBeUndefined();
  });

  it('refuses while a node is in maintenance, and says how to end it', () => {
    const facts = groupFacts({ nowMs: T0 }).primary().standby().standby({ state: 'maintenance', streaming: false }).build();
    expect(restartRefusal(facts, 2)).toMatch(/node 3 .* is maintenance \(goal maintenance\).*pgha maintenance disable --name/);
  });

  it('refuses while a node has not reached its goal, a standby does not stream, a Postgres is down or a keeper is silent', () => {
    const b = () => groupFacts({ nowMs: T0 }).primary();
    expect(restartRefusal(b().standby({ reportedState: 'catchingup', goalState: 'secondary' }).build(), 1)).toMatch(/is catchingup \(goal secondary\)/);
    expect(restartRefusal(b().standby({ streaming: false, notStreamingForMs: 100 }).build(), 1)).toMatch(/does not stream from the primary/);
    expect(restartRefusal(b().standby({ postgresRunning: false }).build(), 1)).toMatch(/Postgres is not running/);
    expect(restartRefusal(b().standby({ keeperSilentMs: nodeUnhealthyTimeoutMs + 1 }).build(), 1)).toMatch(/keeper has not reported for/);
    expect(restartRefusal(groupFacts({ nowMs: T0 }).primary({ state: 'wait_primary' }).standby({ state: 'catchingup' }).build(), 2)).toMatch(/goal wait_primary/);
  });

  it('refuses a second restart while one is under way, and not once the first is past its grace', () => {
    const facts = groupFacts({ nowMs: T0 }).primary().standby().standby().build();
    const restarting = { ...facts, nodes: facts.nodes.map((n) => (n.nodeId === 2 ? { ...n, restartRequestedMs: T0 - 1_000 } : n)) };
    expect(restartRefusal(restarting, 3)).toMatch(/node 2 .* is restarting \(asked 1000 ms ago\): restart one node at a time/);
    const stale = { ...facts, nodes: facts.nodes.map((n) => (n.nodeId === 2 ? { ...n, restartRequestedMs: T0 - RESTART_ON_REQUEST_GRACE_MS - 1 } : n)) };
    expect(restartRefusal(stale, 3)).toBeUndefined();
  });
});

describe('a restart on request fails nothing over', () => {
  it("a standby restarting on request: its Postgres down and not streaming past standbyStreamingTimeoutMs changes no goal (two nodes: writes wait, no wait_primary)", () => {
    const group = new SimulatedGroup(groupFacts({ nowMs: T0 }).primary().standby().build());
    group.set(2, { restartRequestedMs: T0 });
    group.advance(standbyStreamingTimeoutMs + 500).report(1).report(2, { postgresRunning: false, upstreamStreaming: false }).set(2, { health: 'bad' }).decide('health');
    expect(group.lastAssignments).toEqual([]);
    expect(group.goal(1)).toBe('primary');
    expect(group.goal(2)).toBe('secondary');
  });

  it('the primary restarting in place on request: Postgres down, probe failing, no standby streaming: no failover and no standby failed', () => {
    const group = new SimulatedGroup(groupFacts({ nowMs: T0 }).primary().standby().standby().build());
    group.set(1, { restartRequestedMs: T0 });
    group.advance(standbyStreamingTimeoutMs + 500).report(1, { postgresRunning: false }).set(1, { health: 'bad' }).report(2, { upstreamStreaming: false }).report(3, { upstreamStreaming: false }).decide('health');
    expect(group.lastAssignments).toEqual([]);
    expect([1, 2, 3].map((id) => group.goal(id))).toEqual(['primary', 'secondary', 'secondary']);
  });

  it('a restart not done within its grace is a failure as any other: the standby is failed, the primary goes wait_primary', () => {
    const group = new SimulatedGroup(groupFacts({ nowMs: T0 }).primary().standby().build());
    group.set(2, { restartRequestedMs: T0 });
    group.advance(RESTART_ON_REQUEST_GRACE_MS + 1).report(1).report(2, { postgresRunning: false, upstreamStreaming: false }).set(2, { health: 'bad' }).decide('health');
    expect(group.lastGoals()).toEqual({ 1: 'wait_primary', 2: 'catchingup' });
    expect(group.lastRules()).toEqual(['standby-failed']);
  });
});
