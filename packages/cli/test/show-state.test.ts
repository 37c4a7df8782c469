import { describe, expect, it } from 'vitest';
import type { NodeStateRow } from '@pgha/shared';
import { stateNotes } from '../src/state-table.js';

const row = (over: Partial<NodeStateRow>): NodeStateRow => ({
  name: 'node1', node_id: 1, group_id: 0, host: '127.0.0.1', port: 5432, timeline: 1, lsn: '0/1', connection: 'none',
  reported_state: 'secondary', goal_state: 'secondary', health: 'good', last_report_ago_ms: 0, note: null, problem: null, lag_bytes: 0, transition_progress: null,
  restart: { requested: 0, done: 0, requested_ago_ms: null }, ...over,
});

describe('pgha show state: the lines under the table', () => {
  it("say a base backup's progress and a catching-up standby's lag, and nothing for a caught-up one", () => {
    expect(stateNotes([
      row({ lag_bytes: 5 }),
      row({ name: 'node2', reported_state: 'wait_standby', goal_state: 'catchingup', lag_bytes: null, transition_progress: { phase: 'basebackup', transition: 'wait_standby->catchingup', done_bytes: 32 * 1024 * 1024, total_bytes: 256 * 1024 * 1024, percent: 12 } }),
      row({ name: 'node3', reported_state: 'catchingup', goal_state: 'catchingup', lag_bytes: 41_943_040 }),
      row({ name: 'node4', problem: 'disk full' }),
    ])).toEqual([
      'Problem on node4: disk full',
      'Progress on node2: base backup 12% (32.0 MB of 256.0 MB)',
      'Catching up: node3 is 40.0 MB (41943040 bytes) behind the primary',
    ]);
  });

  it('say a restart under way and the parameters pending a restart, and nothing for a restart done', () => {
    expect(stateNotes([
      row({ restart: { requested: 2, done: 1, requested_ago_ms: 1200 } }),
      row({ name: 'node2', restart: { requested: 1, done: 1, requested_ago_ms: 60_000 }, pending_restart: ['max_connections', 'shared_buffers'] }),
      row({ name: 'node3', pending_restart: [] }),
    ])).toEqual([
      "Restarting: node1's Postgres (restart 2, asked for 1200 ms ago; its keeper reports it done once replication streams again)",
      'Restart pending on node2: max_connections, shared_buffers (pgha perform restart --pending)',
    ]);
  });
});
