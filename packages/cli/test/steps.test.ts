import { describe, expect, it } from 'vitest';
import type { EventRow, NodeStateRow } from '@pgha/shared';
import { StepTracker, formatStep } from '../src/steps.js';

const row = (nodeId: number, reported: string, goal: string): NodeStateRow => ({
  name: `node${nodeId}`, node_id: nodeId, group_id: 0, host: '127.0.0.1', port: 5432 + nodeId, timeline: 1, lsn: '0/1', connection: 'none',
  reported_state: reported, goal_state: goal, health: 'good', last_report_ago_ms: 0, note: null, problem: null, lag_bytes: null, transition_progress: null, restart: { requested: 0, done: 0, requested_ago_ms: null },
});
const event = (id: number, nodeId: number, from: string, to: string): EventRow => ({
  event_id: id, event_time: '', formation: 'default', group_id: 0, node_id: nodeId, node_name: `node${nodeId}`, reported_state: from, old_goal_state: from, new_goal_state: to, reason: `why ${id}`, rule: 'r',
});

describe('steps of an operator command', () => {
  it('lists every goal change from the events (even one no poll saw), then the reported states, in order, with the time since the command', () => {
    const t = new StepTracker([row(1, 'primary', 'primary'), row(2, 'secondary', 'secondary')], 10, 1000);
    // One poll after both nodes went through several goals.
    const first = t.observe(
      [row(1, 'draining', 'demote_timeout'), row(2, 'prepare_promotion', 'stop_replication')],
      [event(9, 1, 'x', 'y'), event(11, 1, 'primary', 'draining'), event(12, 2, 'secondary', 'prepare_promotion'), event(13, 2, 'prepare_promotion', 'stop_replication'), event(14, 1, 'draining', 'demote_timeout'), { ...event(15, 1, 'demote_timeout', 'demote_timeout'), rule: 'keeper-problem' }],
      1250,
    );
    expect(first.map((s) => `${s.name} ${s.kind} ${s.from}→${s.to}`)).toEqual([
      'node1 goal primary→draining',
      'node2 goal secondary→prepare_promotion',
      'node2 goal prepare_promotion→stop_replication',
      'node1 goal draining→demote_timeout',
      'node1 reported primary→draining',
      'node2 reported secondary→prepare_promotion',
    ]);
    expect(first.every((s) => s.elapsed_ms === 250)).toBe(true);
    // The same events again add nothing; a goal seen only in the rows still counts; a node gone is said.
    const second = t.observe([row(2, 'wait_primary', 'wait_primary')], [event(13, 2, 'prepare_promotion', 'stop_replication')], 1400);
    expect(second.map((s) => `${s.name} ${s.kind} ${s.to}`)).toEqual(['node2 goal wait_primary', 'node2 reported wait_primary', 'node1 left gone']);
    expect(t.steps).toHaveLength(9);
    expect(formatStep(first[0]!)).toBe('    250 ms  node1 (node 1)      goal: primary → draining');
  });
});
