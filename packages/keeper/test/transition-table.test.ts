/**
 * The keeper's transition table against the monitor's edges: every goal the monitor can assign
 * from a state must have a keeper row, or the keeper stops with PGHA_ERR_INTERNAL (the bug
 * pg_auto_failover fixed after issue #1168).
 */
import {
  DEFAULT_FORMATION_SETTINGS,
  MONITOR_EDGES,
  NODE_STATES,
  applyAssignments,
  decideUntilStable,
  lsn,
  type GroupFacts,
  type NodeFacts,
} from '@pgha/shared';
import { describe, expect, it } from 'vitest';
import { KEEPER_TRANSITIONS, findTransition } from '../src/fsm/transition-table.js';
import { TRANSITION_FUNCTIONS } from '../src/fsm/transitions.js';

describe('keeper transition table', () => {
  it('has a row for every edge the monitor can assign (MONITOR_EDGES)', () => {
    const missing = MONITOR_EDGES.filter(([from, goal]) => from !== goal && !findTransition(from, goal)).map(
      ([from, goal]) => `${from} -> ${goal}`,
    );
    expect(missing).toEqual([]);
  });

  it('has at most one row per (current, goal), so the first match is the only match', () => {
    const seen = new Map<string, number>();
    for (const row of KEEPER_TRANSITIONS) seen.set(`${row.current} -> ${row.goal}`, (seen.get(`${row.current} -> ${row.goal}`) ?? 0) + 1);
    expect([...seen].filter(([, count]) => count > 1).map(([edge]) => edge)).toEqual([]);
  });

  it('gives every row a non-empty reason, a real transition function, and distinct known states', () => {
    for (const row of KEEPER_TRANSITIONS) {
      expect(row.reason.trim(), `${row.current} -> ${row.goal}`).not.toBe('');
      expect(TRANSITION_FUNCTIONS[row.run], `${row.current} -> ${row.goal} runs ${row.run}`).toBeTypeOf('function');
      expect(NODE_STATES).toContain(row.current);
      expect(NODE_STATES).toContain(row.goal);
      expect(row.current, 'a row never goes from a state to itself').not.toBe(row.goal);
    }
  });

  it('findTransition answers the documented example and nothing for unknown edges', () => {
    expect(findTransition('secondary', 'prepare_promotion')?.run).toBe('prepareForPromotion');
    expect(findTransition('init', 'single')?.run).toBe('initPrimary');
    expect(findTransition('demoted', 'catchingup')?.run).toBe('rewindOrBaseBackup');
    expect(findTransition('secondary', 'single')).toBeUndefined();
  });
});

describe('rows for the election, switchover, maintenance and drop states', () => {
  it.each([
    // Election: report the LSN, fetch missing WAL, then prepare the promotion; the others re-point.
    ['secondary', 'report_lsn', 'followPrimary'],
    ['report_lsn', 'fast_forward', 'followPrimary'],
    ['report_lsn', 'prepare_promotion', 'prepareForPromotion'],
    ['fast_forward', 'prepare_promotion', 'prepareForPromotion'],
    ['prepare_promotion', 'stop_replication', 'promoteStandby'],
    ['report_lsn', 'join_secondary', 'followPrimary'],
    ['fast_forward', 'join_secondary', 'followPrimary'],
    ['join_secondary', 'secondary', 'followPrimary'],
    // Switchover and failover of the old primary: fence it, then rejoin.
    ['primary', 'draining', 'stopPostgres'],
    ['draining', 'demoted', 'stopPostgres'],
    ['demote_timeout', 'demoted', 'stopPostgres'],
    ['draining', 'catchingup', 'rewindOrBaseBackup'],
    // Maintenance of the primary and of a standby.
    ['primary', 'prepare_maintenance', 'stopPostgres'],
    ['prepare_maintenance', 'maintenance', 'leavePostgresAlone'],
    ['secondary', 'wait_maintenance', 'followPrimary'],
    ['wait_maintenance', 'maintenance', 'leavePostgresAlone'],
    ['maintenance', 'catchingup', 'rewindOrBaseBackup'],
    // Drop.
    ['secondary', 'dropped', 'dropNode'],
    ['primary', 'dropped', 'dropNode'],
  ] as const)('%s -> %s runs %s', (current, goal, run) => {
    expect(findTransition(current, goal)?.run).toBe(run);
  });

  it('every state but init has a row into it, and every state but dropped a row out of it', () => {
    const into = new Set(KEEPER_TRANSITIONS.map((r) => r.goal));
    const outOf = new Set(KEEPER_TRANSITIONS.map((r) => r.current));
    expect(NODE_STATES.filter((s) => s !== 'init' && !into.has(s))).toEqual([]);
    expect(NODE_STATES.filter((s) => s !== 'dropped' && !outOf.has(s))).toEqual([]);
  });
});

describe('the keeper can follow what the monitor actually assigns', () => {
  const now = 1_000_000;
  function registered(nodeId: number): NodeFacts {
    return {
      nodeId, name: `node${nodeId}`, candidatePriority: 50, replicationQuorum: true,
      reportedState: 'init', goalState: 'init', lastReportMs: now, pgIsRunning: false,
      reportedLsn: lsn(0), reportedTimeline: 1, upstreamStreaming: false, lastStreamingMs: null, health: 'unknown',
    };
  }

  it('two keepers created at the same time (pgha keeper create on two machines): each goal is reachable from the reported state', () => {
    // Both keepers registered before the monitor's first decision; node 1 is still `init`.
    const facts: GroupFacts = {
      formation: 'default', groupId: 0, nowMs: now, settings: DEFAULT_FORMATION_SETTINGS,
      nodes: [registered(1), registered(2)],
    };
    const assignments = decideUntilStable(facts, { type: 'evaluate', cause: 'register' });
    const final = assignments.reduce((f, a) => applyAssignments(f, [a]), facts);
    const unreachable = final.nodes
      .filter((n) => n.goalState !== n.reportedState && !findTransition(n.reportedState, n.goalState))
      .map((n) => `node ${n.nodeId}: ${n.reportedState} -> ${n.goalState}`);
    expect(unreachable).toEqual([]);
  });
});
