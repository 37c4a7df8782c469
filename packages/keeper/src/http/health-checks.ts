/**
 * The answers of the keeper's HTTP health routes, as pure functions of what the keeper knows
 * from memory ({@link KeeperView}): no Postgres query, no clock of their own (`nowMs` is given).
 * Source: Patroni's REST API (`api.py`, `do_GET_primary`, `do_GET_replica`, `do_GET_health`).
 */
import { WRITABLE_STATES, formatDurationMs, formatLsn, type NodeState } from '@pgha/shared/base';
import type { KeeperView } from '../keeper-view.js';

/**
 * How old the keeper's facts may be before the routes stop trusting them, in ms: four report
 * intervals, at least 5 000. The keeper reads them every tick (every report interval, and at
 * once when its Postgres session drops), so older facts mean the keeper is stuck, and a
 * health check must then say no rather than repeat what was true.
 */
export function factsStaleAfterMs(view: Pick<KeeperView, 'reportIntervalMs'>): number {
  return Math.max(5000, 4 * view.reportIntervalMs);
}

/** One health check's verdict: 200 or 503, and why in one sentence. */
export interface CheckResult {
  ok: boolean;
  reason: string;
}

function fresh(view: KeeperView, nowMs: number): CheckResult | undefined {
  if (view.factsAtMs === 0) return { ok: false, reason: 'the keeper has not read its Postgres yet' };
  const ageMs = nowMs - view.factsAtMs;
  if (ageMs > factsStaleAfterMs(view)) return { ok: false, reason: `the keeper's facts are ${formatDurationMs(ageMs)} old (the keeper is stuck)` };
  return undefined;
}

/**
 * The standby's replay lag behind its upstream, in bytes: the end of WAL the upstream last
 * reported in the stream (`pg_stat_wal_receiver.latest_end_lsn`) minus the last WAL replayed
 * (`pg_last_wal_replay_lsn()`), at least 0; 0 on a primary; null when unknown (Postgres down, or
 * a standby whose WAL receiver does not stream).
 */
export function replayLagBytes(view: Pick<KeeperView, 'facts'>): number | null {
  const f = view.facts;
  if (!f) return null;
  if (!f.isInRecovery) return 0;
  if (f.upstreamEndLsn === null || f.replayLsn === null) return null;
  const lag = f.upstreamEndLsn - f.replayLsn;
  return lag > 0n ? Number(lag) : 0;
}

/**
 * `GET /primary`: the node takes writes. Postgres runs and is not in recovery, the keeper has
 * reached a writable state (`single`, `wait_primary`, `primary`, …) and the monitor's last goal
 * is writable too (a primary told to drain answers 503 at once), and the node has not fenced
 * itself.
 */
export function primaryCheck(view: KeeperView, nowMs: number): CheckResult {
  const stale = fresh(view, nowMs);
  if (stale) return stale;
  if (view.fenced) return { ok: false, reason: 'the node fenced itself (network partition)' };
  if (!view.facts) return { ok: false, reason: 'Postgres is not running' };
  if (view.facts.isInRecovery) return { ok: false, reason: 'Postgres is a standby (in recovery)' };
  if (!WRITABLE_STATES.has(view.reportedState)) return { ok: false, reason: `the node is ${view.reportedState}, not a writable state` };
  if (view.goalState !== null && !WRITABLE_STATES.has(view.goalState as NodeState)) return { ok: false, reason: `the monitor's goal for the node is ${view.goalState}` };
  return { ok: true, reason: `the node is the writable primary (${view.reportedState})` };
}

/**
 * `GET /replica`: the node is a standby whose WAL receiver streams and, with `maxLagBytes`,
 * whose replay lag ({@link replayLagBytes}) is at most that many bytes.
 */
export function replicaCheck(view: KeeperView, nowMs: number, maxLagBytes?: number): CheckResult {
  const stale = fresh(view, nowMs);
  if (stale) return stale;
  if (!view.facts) return { ok: false, reason: 'Postgres is not running' };
  if (!view.facts.isInRecovery) return { ok: false, reason: 'Postgres is not a standby' };
  if (!view.facts.upstreamStreaming) return { ok: false, reason: 'the WAL receiver is not streaming' };
  const lag = replayLagBytes(view);
  if (maxLagBytes !== undefined) {
    if (lag === null) return { ok: false, reason: 'the replay lag is not known' };
    if (lag > maxLagBytes) return { ok: false, reason: `the replay lag is ${lag} bytes, more than ${maxLagBytes}` };
  }
  return { ok: true, reason: `the node is a streaming standby (replay lag ${lag ?? 'unknown'} bytes)` };
}

/** `GET /read-only`: the node serves reads: the writable primary, or a standby as {@link replicaCheck}. */
export function readOnlyCheck(view: KeeperView, nowMs: number, maxLagBytes?: number): CheckResult {
  const primary = primaryCheck(view, nowMs);
  return primary.ok ? primary : replicaCheck(view, nowMs, maxLagBytes);
}

/**
 * `GET /health`: Postgres runs (whatever its role) and answers the keeper: a Postgres whose
 * facts the keeper cannot read is reported as a problem, and a health check says so too.
 */
export function healthCheck(view: KeeperView, nowMs: number): CheckResult {
  const stale = fresh(view, nowMs);
  if (stale) return stale;
  if (view.factsProblem) return { ok: false, reason: view.factsProblem };
  return view.postgresRunning ? { ok: true, reason: 'Postgres is running' } : { ok: false, reason: 'Postgres is not running' };
}

/** Body of `GET /state` (and of every health route), snake_case as the monitor's API. */
export interface KeeperStateBody {
  node_id: number;
  name: string;
  formation: string;
  group_id: number;
  reported_state: string;
  goal_state: string | null;
  /** `primary` (not in recovery), `standby` (in recovery), or null when Postgres does not answer. */
  role: 'primary' | 'standby' | null;
  /** `X/Y`; null when Postgres does not answer. */
  lsn: string | null;
  timeline: number | null;
  /** See {@link replayLagBytes}. */
  lag_bytes: number | null;
  /** The WAL receiver streams from the node's upstream (the report's `upstreamStreaming`; called `wal_receiver_streaming` before issue 14). */
  upstream_streaming: boolean;
  postgres_running: boolean;
  pending_transition: string | null;
  fenced: boolean;
  /** Age of the facts, ms. */
  facts_age_ms: number | null;
  /** When the keeper last reached a new state (ISO 8601). */
  last_transition_at: string;
  /** What keeps the node from its goal, as the keeper last reported it to the monitor; null when nothing. */
  problem: string | null;
}

/** The `/state` body for `view` at `nowMs`. */
export function stateBody(view: KeeperView, nowMs: number): KeeperStateBody {
  const f = view.facts;
  return {
    node_id: view.nodeId,
    name: view.name,
    formation: view.formation,
    group_id: view.groupId,
    reported_state: view.reportedState,
    goal_state: view.goalState,
    role: f ? (f.isInRecovery ? 'standby' : 'primary') : null,
    lsn: f ? formatLsn(f.lsn) : null,
    timeline: f ? f.timeline : null,
    lag_bytes: replayLagBytes(view),
    upstream_streaming: f?.upstreamStreaming ?? false,
    postgres_running: view.postgresRunning,
    pending_transition: view.pendingTransition,
    fenced: view.fenced,
    facts_age_ms: view.factsAtMs === 0 ? null : Math.max(0, nowMs - view.factsAtMs),
    last_transition_at: new Date(view.lastTransitionAtMs).toISOString(),
    problem: view.problem,
  };
}

/**
 * Parses the lag bound of `/replica` and `/read-only`: `max_lag_bytes=N` (bytes), or
 * Patroni's `lag=N` with an optional unit (`kB`, `MB`, `GB`, `TB`, powers of 1024, as Postgres
 * sizes).
 *
 * @returns the bound in bytes, undefined when none is given, or an error sentence.
 */
export function parseLagBound(query: URLSearchParams): number | undefined | { error: string } {
  const bytes = query.get('max_lag_bytes');
  const patroni = query.get('lag');
  if (bytes !== null) {
    return /^\d{1,16}$/.test(bytes) ? Number(bytes) : { error: `max_lag_bytes must be a whole number of bytes, got "${bytes}"` };
  }
  if (patroni !== null) {
    const m = /^(\d{1,16})\s*(B|kB|MB|GB|TB)?$/i.exec(patroni);
    if (!m) return { error: `lag must be a size such as 1048576, 16MB or 1GB, got "${patroni}"` };
    const unit = ({ b: 0, kb: 1, mb: 2, gb: 3, tb: 4 } as Record<string, number>)[(m[2] ?? 'B').toLowerCase()]!;
    return Number(m[1]) * 1024 ** unit;
  }
  return undefined;
}
