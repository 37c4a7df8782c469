/**
 * The answers of the keeper's health routes as pure functions of its view: what HAProxy sees
 * for each combination of Postgres role, reached and assigned state, fence, WAL receiver and
 * lag, and stale facts.
 */
import { describe, expect, it } from 'vitest';
import { parseLsn, type NodeState } from '@pgha/shared';
import { factsStaleAfterMs, healthCheck, parseLagBound, primaryCheck, readOnlyCheck, replayLagBytes, replicaCheck, stateBody, type KeeperView } from '@pgha/keeper';

const NOW = 1_000_000;

function view(o: { state?: NodeState; goal?: string | null; recovery?: boolean | null; streaming?: boolean; replay?: string | null; end?: string | null; fenced?: boolean; factsAgeMs?: number; factsProblem?: string } = {}): KeeperView {
  const recovery = o.recovery === undefined ? false : o.recovery;
  return {
    nodeId: 1,
    name: 'node1',
    formation: 'default',
    groupId: 0,
    reportedState: o.state ?? 'primary',
    goalState: o.goal === undefined ? (o.state ?? 'primary') : o.goal,
    pendingTransition: null,
    postgresRunning: recovery !== null,
    facts: recovery === null ? undefined : {
      isInRecovery: recovery,
      lsn: parseLsn('0/3000000'),
      timeline: 2,
      upstreamStreaming: o.streaming ?? recovery,
      synchronousStandbyNames: '',
      replayLsn: recovery ? parseLsn(o.replay ?? '0/3000000') : null,
      upstreamEndLsn: recovery && o.end !== null ? parseLsn(o.end ?? '0/3000000') : null,
    },
    factsAtMs: NOW - (o.factsAgeMs ?? 100),
    fenced: o.fenced ?? false,
    lastTransitionAtMs: NOW - 60_000,
    reportIntervalMs: 500,
    factsProblem: o.factsProblem ?? null,
    problem: o.factsProblem ?? null,
  };
}

describe('GET /primary', () => {
  it.each(['single', 'wait_primary', 'primary', 'apply_settings', 'join_primary'] as const)('is 200 on a running primary in %s', (state) => {
    expect(primaryCheck(view({ state }), NOW).ok).toBe(true);
  });

  it.each([
    ['a standby', view({ state: 'secondary', recovery: true }), /standby/],
    ['Postgres down', view({ recovery: null }), /not running/],
    ['a primary told to drain', view({ goal: 'draining' }), /goal for the node is draining/],
    ['a fenced primary', view({ fenced: true }), /fenced itself/],
    ['a node demoted but not yet in recovery', view({ state: 'demoted' }), /demoted, not a writable state/],
    ['stale facts', view({ factsAgeMs: 6000 }), /6000 ms old/],
  ])('is 503 on %s', (_what, v, reason) => {
    const r = primaryCheck(v, NOW);
    expect(r.ok).toBe(false);
    expect(r.reason).toMatch(reason);
  });

  it('trusts the facts for four report intervals, at least 5 s', () => {
    expect(factsStaleAfterMs({ reportIntervalMs: 500 })).toBe(5000);
    expect(factsStaleAfterMs({ reportIntervalMs: 2000 })).toBe(8000);
    expect(primaryCheck(view({ factsAgeMs: 4999 }), NOW).ok).toBe(true);
  });
});

describe('GET /replica', () => {
  const standby = (o: Parameters<typeof view>[0] = {}) => view({ state: 'secondary', recovery: true, ...o });

  it('is 200 on a streaming standby, 503 on one whose WAL receiver does not stream, and on the primary', () => {
    expect(replicaCheck(standby(), NOW).ok).toBe(true);
    expect(replicaCheck(standby({ streaming: false }), NOW).reason).toMatch(/not streaming/);
    expect(replicaCheck(view(), NOW).reason).toMatch(/not a standby/);
  });

  it('measures the lag as the end of WAL the upstream last reported minus the last WAL replayed', () => {
    expect(replayLagBytes(standby({ replay: '0/3000000', end: '0/3000100' }))).toBe(256);
    expect(replayLagBytes(standby({ replay: '0/3000100', end: '0/3000000' }))).toBe(0);
    expect(replayLagBytes(standby({ end: null }))).toBeNull();
    expect(replayLagBytes(view())).toBe(0);
    expect(replayLagBytes(view({ recovery: null }))).toBeNull();
  });

  it('turns 503 when the lag exceeds max_lag_bytes, or is unknown under a bound', () => {
    const lagging = standby({ replay: '0/3000000', end: '0/3000100' });
    expect(replicaCheck(lagging, NOW, 256).ok).toBe(true);
    expect(replicaCheck(lagging, NOW, 255).reason).toBe('the replay lag is 256 bytes, more than 255');
    expect(replicaCheck(lagging, NOW).ok).toBe(true);
    expect(replicaCheck(standby({ end: null }), NOW, 1_000_000).reason).toMatch(/not known/);
  });

  it('/read-only is 200 on the primary and on a streaming standby', () => {
    expect(readOnlyCheck(view(), NOW).ok).toBe(true);
    expect(readOnlyCheck(standby(), NOW).ok).toBe(true);
    expect(readOnlyCheck(standby({ streaming: false }), NOW).ok).toBe(false);
  });
});

describe('GET /health and /state', () => {
  it('health follows Postgres, whatever its role', () => {
    expect(healthCheck(view({ state: 'secondary', recovery: true }), NOW).ok).toBe(true);
    expect(healthCheck(view({ recovery: null }), NOW).ok).toBe(false);
  });

  it('health is 503 with the reason when Postgres runs but does not answer the keeper, and /state carries the problem', () => {
    const problem = 'Postgres runs but the keeper cannot read its facts: The server does not support SSL connections';
    const v = { ...view({ state: 'catchingup', recovery: null, factsProblem: problem }), postgresRunning: true };
    expect(healthCheck(v, NOW)).toEqual({ ok: false, reason: problem });
    expect(stateBody(v, NOW)).toMatchObject({ postgres_running: true, lsn: null, problem });
  });

  it('state carries the node, its states, role, LSN, timeline and lag', () => {
    expect(stateBody(view({ state: 'secondary', recovery: true, end: '0/3000010' }), NOW)).toEqual({
      node_id: 1, name: 'node1', formation: 'default', group_id: 0, reported_state: 'secondary', goal_state: 'secondary',
      role: 'standby', lsn: '0/3000000', timeline: 2, lag_bytes: 16, upstream_streaming: true, postgres_running: true,
      pending_transition: null, fenced: false, facts_age_ms: 100, last_transition_at: new Date(NOW - 60_000).toISOString(), problem: null,
    });
    expect(stateBody(view({ recovery: null }), NOW)).toMatchObject({ role: null, lsn: null, timeline: null, lag_bytes: null, postgres_running: false });
  });
});

describe('the lag bound', () => {
  it.each([
    ['max_lag_bytes=0', 0],
    ['max_lag_bytes=1048576', 1048576],
    ['lag=16MB', 16 * 2 ** 20],
    ['lag=1gb', 2 ** 30],
    ['lag=500', 500],
    ['', undefined],
  ])('%s → %s bytes', (query, bytes) => {
    expect(parseLagBound(new URLSearchParams(query))).toBe(bytes);
  });

  it.each(['max_lag_bytes=-1', 'max_lag_bytes=1.5', 'max_lag_bytes=', 'lag=lots', 'lag=1PB'])('refuses %s', (query) => {
    expect(parseLagBound(new URLSearchParams(query))).toHaveProperty('error');
  });
});
