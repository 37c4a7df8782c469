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
  PghaError,
  lsn,
  type GroupFacts,
  type NodeFacts,
  type NodeGoal,
  type NodeState,
} from '@pgha/shared';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { NodeControl } from '../src/node-control.js';
import { ensureState, reachGoal } from '../src/fsm/reach-goal.js';
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

  it('gives every row a non-empty reason, a real transition function, and known states', () => {
    for (const row of KEEPER_TRANSITIONS) {
      expect(row.reason.trim(), `${row.current} -> ${row.goal}`).not.toBe('');
      expect(TRANSITION_FUNCTIONS[row.run], `${row.current} -> ${row.goal} runs ${row.run}`).toBeTypeOf('function');
      expect(NODE_STATES).toContain(row.current);
      expect(NODE_STATES).toContain(row.goal);
    }
  });

  it('has one keep row (current === goal) for every state, so ensureState never lacks one', () => {
    const kept = KEEPER_TRANSITIONS.filter((r) => r.current === r.goal).map((r) => r.current);
    expect([...kept].sort()).toEqual([...NODE_STATES].sort());
  });

  it.each([
    ['primary', 'configurePrimary'],
    ['secondary', 'followPrimary'],
    ['wait_maintenance', 'followPrimary'],
    ['prepare_promotion', 'prepareForPromotion'],
    ['stop_replication', 'startPostgres'],
    ['demoted', 'stopPostgres'],
    ['prepare_maintenance', 'stopPostgres'],
    ['wait_standby', 'waitForPrimary'],
    ['maintenance', 'leavePostgresAlone'],
  ] as const)('keeping %s runs %s', (state, run) => {
    expect(findTransition(state, state)?.run).toBe(run);
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
    const moves = KEEPER_TRANSITIONS.filter((r) => r.current !== r.goal);
    const into = new Set(moves.map((r) => r.goal));
    const outOf = new Set(moves.map((r) => r.current));
    expect(NODE_STATES.filter((s) => s !== 'init' && !into.has(s))).toEqual([]);
    expect(NODE_STATES.filter((s) => s !== 'dropped' && !outOf.has(s))).toEqual([]);
  });
});

describe('the keeper can follow what the monitor actually assigns', () => {
  const now = 1_000_000;
  function registered(nodeId: number): NodeFacts {
    return {
      nodeId, name: `node${nodeId}`, candidatePriority: 50, replicationQuorum: true,
      reportedState: 'init', goalState: 'init', lastReportMs: now, postgresRunning: false,
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

/**
 * No state that never ends: for every (reported, goal) pair the monitor can assign, and for
 * keeping every state, the keeper's step either completes, or fails with an error (which the
 * loop logs once, retries, and after `STUCK_GRACE_MS` reports as the node's problem: see
 * `failingStepProblem`), or is one of the declared waits whose reason the operator sees
 * elsewhere. Run against a node whose every action fails, and one whose every action works.
 */
describe('every step the monitor can ask for completes, fails visibly, or is a declared wait', () => {
  /**
   * Steps that do nothing on the node: they wait for others, and say where that shows. Any
   * other step that completes on a node whose every action fails would be a silent wait.
   */
  const DECLARED_WAITS: Partial<Record<string, string>> = {
    waitForPrimary: 'wait_standby: the primary must accept the standby (its join_primary/wait_primary goal, and its own problem if it cannot)',
    leavePostgresAlone: 'maintenance: the operator has the node (show state says maintenance)',
  };

  const silent = pino({ level: 'silent' });
  const primary = { nodeId: 2, name: 'node2', host: '127.0.0.1', port: 5433, goalState: 'primary', reportedState: 'primary' };
  function goalFor(goalState: NodeState): NodeGoal {
    return {
      nodeId: 1, goalState, formation: 'default', groupId: 0, primary, upstream: primary,
      nodes: [{ nodeId: 1, name: 'node1', host: '127.0.0.1', port: 5432, goalState, reportedState: goalState }, primary],
      synchronousStandbyNames: '',
    } as unknown as NodeGoal;
  }

  /**
   * A node whose every action throws (`fail`) or works (`work`); `calls` lists what was asked
   * (`part.method`, e.g. `postgres.start`). Its parts (`postgres`, `replication`, …) are stubs
   * of the same kind.
   */
  function stubNode(mode: 'fail' | 'work'): { node: NodeControl; calls: string[] } {
    const calls: string[] = [];
    const worked: Record<string, unknown> = { hasData: true, hasStandbySignal: false, isRunning: true, readFacts: undefined };
    const part = (name: string): unknown =>
      new Proxy({} as Record<string, unknown>, {
        get(_target, prop) {
          if (typeof prop !== 'string' || prop === 'then') return undefined;
          return (..._args: unknown[]) => {
            calls.push(`${name}.${prop}`);
            if (mode === 'fail') throw new PghaError('PGHA_ERR_POSTGRES_COMMAND', `${name}.${prop} failed on this node`);
            return prop in worked ? worked[prop] : undefined;
          };
        },
      });
    const node = {
      log: silent,
      config: { nodeId: 1 },
      pgdata: '/nonexistent/pgdata',
      session: part('session'),
      identity: part('identity'),
      postgres: part('postgres'),
      replication: part('replication'),
      rebuild: part('rebuild'),
    } as unknown as NodeControl;
    return { node, calls };
  }

  const edges = MONITOR_EDGES.filter(([from, goal]) => from !== goal);

  it.each(edges)('%s -> %s: fails with the error on a node whose every action fails, unless it is a declared wait', async (from, goal) => {
    const row = findTransition(from, goal)!;
    const { node, calls } = stubNode('fail');
    const run = reachGoal(from, { node, goal: goalFor(goal), goalState: goal }, silent);
    if (DECLARED_WAITS[row.run]) {
      await expect(run).resolves.toBeUndefined();
      expect(calls).toEqual([]);
    } else {
      await expect(run).rejects.toThrow(/failed on this node|no primary/);
    }
  });

  it.each(edges)('%s -> %s: completes on a node whose every action works', async (from, goal) => {
    const { node } = stubNode('work');
    await expect(reachGoal(from, { node, goal: goalFor(goal), goalState: goal }, silent)).resolves.toBeUndefined();
  });

  it.each(NODE_STATES.filter((s) => s !== 'dropped' && s !== 'init'))('keeping %s: fails with the error when actions fail, completes when they work, or is a declared wait', async (state) => {
    const failing = stubNode('fail');
    const kept = ensureState({ node: failing.node, goal: goalFor(state), goalState: state });
    if (failing.calls.length === 0 && ['wait_standby', 'maintenance'].includes(state)) {
      await expect(kept).resolves.toBeUndefined();
    } else {
      await expect(kept).rejects.toThrow(/failed on this node/);
    }
    const working = stubNode('work');
    await expect(ensureState({ node: working.node, goal: goalFor(state), goalState: state })).resolves.toBeUndefined();
  });

  it('declares a reason for every wait, and each declared wait is a row the monitor can reach', () => {
    const runs = new Set(KEEPER_TRANSITIONS.map((r) => r.run));
    for (const [run, why] of Object.entries(DECLARED_WAITS)) {
      expect(runs.has(run as never), run).toBe(true);
      expect(why!.length).toBeGreaterThan(10);
    }
  });
});
