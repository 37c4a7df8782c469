import { describe, expect, it } from 'vitest';
import type { NodeRecord } from '../src/store/records.js';
import { assignmentEvents, operationKindOf, reportEvents } from '../src/store/event-records.js';

const node = (nodeId: number, goalState: NodeRecord['goalState'], extra: Partial<NodeRecord> = {}): NodeRecord =>
  ({ nodeId, name: `n${nodeId}`, formationId: 'f', groupId: 0, goalState, reportedState: 'secondary', reportedLsn: '0/10', reportedProblem: null, lastSelfFenceAt: null, ...extra }) as NodeRecord;

const report = { reportedState: 'primary' as const, postgresRunning: true, isInRecovery: false, lsn: '0/10', timeline: 1, upstreamStreaming: false, transitionInProgress: null, synchronousStandbyNames: null };

describe('assignmentEvents: one event per assignment, in order', () => {
  it("chains a node's old goals through its assignments and leaves out unknown nodes", () => {
    const events = assignmentEvents([node(1, 'secondary'), node(2, 'primary')], [
      { nodeId: 1, goalState: 'prepare_promotion', reason: 'r1', rule: 'a' },
      { nodeId: 9, goalState: 'primary', reason: 'r9', rule: 'b' },
      { nodeId: 1, goalState: 'stop_replication', reason: 'r2', rule: 'c' },
    ]);
    expect(events.map((e) => [e.nodeId, e.oldGoalState, e.newGoalState, e.rule, e.reason])).toEqual([
      [1, 'secondary', 'prepare_promotion', 'a', 'r1'],
      [1, 'prepare_promotion', 'stop_replication', 'c', 'r2'],
    ]);
  });
});

describe('reportEvents: the notes a keeper report writes', () => {
  const fence = { fencedAtMs: Date.UTC(2030, 0, 1), reason: 'network partition', fromState: 'primary' as const, monitorSilentMs: 1000, postgresStopped: true, unreachableMs: 2000 };

  it('writes a problem when it appears and when it ends, nothing while it stays', () => {
    const recorded = (problem: string | null, before: string | null) => ({ node: node(1, 'primary', { reportedProblem: problem }), recorded: true, before: { reportedProblem: before, lastSelfFenceAt: null } });
    expect(reportEvents(recorded('disk full', null), { ...report, problem: 'disk full' }).map((e) => [e.rule, e.reason])).toEqual([['keeper-problem', 'node 1 "n1" reports a problem: disk full']]);
    expect(reportEvents(recorded('disk full', 'disk full'), { ...report, problem: 'disk full' })).toEqual([]);
    expect(reportEvents(recorded(null, 'disk full'), report).map((e) => [e.rule, e.reason])).toEqual([['keeper-problem-cleared', 'node 1 "n1" reports no problem any more (it reported: disk full)']]);
  });

  it('writes a self-fence once: not again when the same fence is sent again, nor for a report not recorded', () => {
    const at = (last: Date | null, recorded = true) => ({ node: node(1, 'primary'), recorded, before: { reportedProblem: null, lastSelfFenceAt: last } });
    expect(reportEvents(at(null), { ...report, selfFence: fence }).map((e) => e.rule)).toEqual(['keeper-self-fenced']);
    expect(reportEvents(at(null), { ...report, selfFence: fence })[0]!.reason).toMatch(/^node 1 "n1" fenced itself at 2030-01-01 00:00:00\.000 UTC \(network partition\)/);
    expect(reportEvents(at(new Date(fence.fencedAtMs)), { ...report, selfFence: fence })).toEqual([]);
    expect(reportEvents(at(null, false), { ...report, selfFence: fence, problem: 'x' })).toEqual([]);
  });
});

describe('operationKindOf: the failovers and switchovers the metrics count', () => {
  it('counts the outgoing primary of each operation once', () => {
    expect(operationKindOf({ rule: 'failover-start', newGoalState: 'demote_timeout' })).toBe('failover');
    expect(operationKindOf({ rule: 'failover-start', newGoalState: 'prepare_promotion' })).toBeUndefined();
    expect(operationKindOf({ rule: 'perform-failover', newGoalState: 'draining' })).toBe('failover');
    expect(operationKindOf({ rule: 'perform-switchover', newGoalState: 'draining' })).toBe('switchover');
    expect(operationKindOf({ rule: 'enable-maintenance', newGoalState: 'prepare_maintenance' })).toBe('switchover');
    expect(operationKindOf({ rule: 'enable-maintenance', newGoalState: 'wait_maintenance' })).toBeUndefined();
  });
});
