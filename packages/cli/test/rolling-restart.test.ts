import { describe, expect, it } from 'vitest';
import type { NodeStateRow } from '@pgha/shared';
import { restartOrder, selectForRestart } from '../src/rolling-restart.js';
import { nodesPendingRestart } from '../src/state-table.js';

const row = (nodeId: number, goal: string, pending?: string[]): NodeStateRow => ({
  name: `node${nodeId}`, node_id: nodeId, group_id: 0, host: '127.0.0.1', port: 5432 + nodeId, timeline: 1, lsn: '0/1', connection: 'read-only',
  reported_state: goal, goal_state: goal, health: 'good', last_report_ago_ms: 0, note: null, problem: null, keeper_http_url: '', lag_bytes: 0, transition_progress: null,
  restart: { requested: 0, done: 0, requested_ago_ms: null }, ...(pending ? { pending_restart: pending } : {}),
});

describe('the order of a rolling restart', () => {
  it('standbys one at a time by node id, the primary last', () => {
    expect(restartOrder([row(3, 'secondary'), row(1, 'secondary'), row(2, 'primary')]).map((r) => r.name)).toEqual(['node1', 'node3', 'node2']);
    expect(restartOrder([row(1, 'single')]).map((r) => r.name)).toEqual(['node1']);
  });

  it('--pending selects the nodes whose keepers report parameters pending a restart, still the primary last', () => {
    const rows = [row(1, 'primary', ['shared_buffers']), row(2, 'secondary', []), row(3, 'secondary', ['max_connections']), row(4, 'secondary')];
    expect(nodesPendingRestart(rows).map((r) => r.name)).toEqual(['node1', 'node3']);
    expect(selectForRestart(rows, { pending: true, formation: 'default' }).map((r) => r.name)).toEqual(['node3', 'node1']);
    expect(selectForRestart([row(1, 'primary'), row(2, 'secondary')], { pending: true, formation: 'default' })).toEqual([]);
  });

  it('--name selects one node, and an unknown name is a clear error listing the nodes', () => {
    const rows = [row(1, 'primary'), row(2, 'secondary')];
    expect(selectForRestart(rows, { name: 'node2', pending: false, formation: 'default' }).map((r) => r.name)).toEqual(['node2']);
    expect(() => selectForRestart(rows, { name: 'nope', pending: false, formation: 'default' })).toThrow(/no node named "nope" in formation "default"/);
  });
});
