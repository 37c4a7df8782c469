import { describe, expect, it } from 'vitest';
import type { NodeStateRow } from '@pgha/shared';
import { promotionOutcome } from '../src/perform.js';

const row = (name: string, nodeId: number, reported: string, goal = reported): NodeStateRow => ({
  name, node_id: nodeId, group_id: 0, host: '127.0.0.1', port: 5432, timeline: 1, lsn: '0/1', connection: 'none', keeper_http_url: 'http://127.0.0.1:8008',
  reported_state: reported, goal_state: goal, health: 'good', last_report_ago_ms: 0, note: null, problem: null, lag_bytes: 0, transition_progress: null,
  restart: { requested: 0, done: 0, requested_ago_ms: null },
});

describe('pgha perform promotion: when it is over', () => {
  const before = [row('a', 1, 'primary'), row('b', 2, 'secondary'), row('c', 3, 'secondary')];

  it('done once the named node is the settled primary, also when it already was', () => {
    expect(promotionOutcome([row('a', 1, 'demoted'), row('b', 2, 'wait_primary'), row('c', 3, 'secondary', 'join_secondary')], before, 'b')).toBe('done');
    expect(promotionOutcome(before, before, 'a')).toBe('done');
  });

  it('not yet while the switchover runs', () => {
    expect(promotionOutcome([row('a', 1, 'draining'), row('b', 2, 'prepare_promotion', 'stop_replication'), row('c', 3, 'secondary')], before, 'b')).toBeUndefined();
    expect(promotionOutcome([row('a', 1, 'draining'), row('b', 2, 'report_lsn'), row('c', 3, 'stop_replication', 'wait_primary')], before, 'b')).toBeUndefined();
  });

  it('over, and not done, when an election made another node the primary', () => {
    expect(promotionOutcome([row('a', 1, 'demoted'), row('b', 2, 'report_lsn', 'join_secondary'), row('c', 3, 'wait_primary')], before, 'b')).toMatchObject({ name: 'c', node_id: 3 });
  });
});
