import stringWidth from 'string-width';
import { describe, expect, it } from 'vitest';
import type { EventRow, NodeStateRow } from '@pgha/shared';
import { renderWatchFrame, type WatchView } from '../src/watch.js';

function row(over: Partial<NodeStateRow>): NodeStateRow {
  return {
    name: 'node1', node_id: 1, group_id: 0, host: '127.0.0.1', port: 5432, timeline: 1, lsn: '0/3000060', connection: 'read-write',
    reported_state: 'primary', goal_state: 'primary', health: 'good', last_report_ago_ms: 120, note: null, problem: null, lag_bytes: null, transition_progress: null,
    ...over,
  };
}

function event(id: number): EventRow {
  return { event_id: id, event_time: new Date(2025, 0, 1, 12, 0, id % 60).toISOString(), formation: 'default', group_id: 0, node_id: 1, node_name: 'node1', reported_state: 'primary', old_goal_state: 'primary', new_goal_state: 'draining', reason: `reason number ${id} `.repeat(8), rule: 'r' };
}

const view = (over: Partial<WatchView> = {}): WatchView => ({
  formation: 'default',
  monitorUrl: 'https://127.0.0.1:8432',
  intervalMs: 1000,
  rows: [
    row({}),
    row({ name: 'node2', node_id: 2, port: 5433, reported_state: 'wait_standby', goal_state: 'catchingup', connection: 'none', lag_bytes: 41_943_040, transition_progress: { phase: 'basebackup', transition: 'wait_standby->catchingup', done_bytes: 100 * 1024 * 1024, total_bytes: 400 * 1024 * 1024, percent: 25 } }),
  ],
  events: Array.from({ length: 60 }, (_, i) => event(i + 1)),
  answeredAt: new Date(2025, 0, 1, 12, 0, 5),
  error: undefined,
  failingSince: undefined,
  ...over,
});

const now = new Date(2025, 0, 1, 12, 0, 6);

describe('pgha watch frame', () => {
  it('fits the terminal: never more lines than rows, never a line wider than columns, in colour too', () => {
    for (const size of [{ columns: 160, rows: 40 }, { columns: 80, rows: 24 }, { columns: 40, rows: 8 }, { columns: 20, rows: 3 }]) {
      for (const colour of [false, true]) {
        const lines = renderWatchFrame(view(), size, now, colour);
        expect(lines.length).toBeLessThanOrEqual(size.rows);
        for (const l of lines) expect(stringWidth(l)).toBeLessThanOrEqual(size.columns);
        expect(lines[0]).toContain('pgha watch');
      }
    }
  });

  it('shows each node with its states, TLI: LSN, lag in bytes and progress, then as many of the last events as fit', () => {
    const lines = renderWatchFrame(view(), { columns: 200, rows: 30 }, now, false);
    const node2 = lines.find((l) => l.includes('node2') && l.includes('5433'))!;
    expect(node2).toMatch(/wait_standby.*catchingup.*good.*1: 0\/3000060.*41943040.*base backup 25% \(100\.0 MB of 400\.0 MB\)/);
    expect(lines).toHaveLength(30);
    expect(lines.at(-1)).toContain('reason number 60');
    expect(lines.some((l) => l.includes('reason number 39 '))).toBe(true);
    expect(lines.some((l) => l.includes('reason number 38 '))).toBe(false);
  });

  it('says when the monitor does not answer, keeping its last answer on screen', () => {
    const lines = renderWatchFrame(view({ error: 'monitor at https://127.0.0.1:8432 is unreachable (connect ECONNREFUSED)', failingSince: new Date(2025, 0, 1, 12, 0, 6) }), { columns: 200, rows: 30 }, now, false);
    expect(lines[1]).toBe('monitor unreachable since 12:00:06, retrying every 1000 ms, showing its last answer (12:00:05): monitor at https://127.0.0.1:8432 is unreachable (connect ECONNREFUSED)');
    expect(lines.some((l) => l.includes('node2'))).toBe(true);
  });

  it('off a terminal: whole lines and the last 10 events', () => {
    const lines = renderWatchFrame(view(), undefined, now, false);
    expect(lines.filter((l) => l.includes('reason number'))).toHaveLength(10);
    expect(lines.at(-1)).toContain(`${'reason number 60 '.repeat(8)}`.trimEnd());
  });
});
