/**
 * The monitor's rules, one function each. A plan reads group facts and returns the goal
 * assignments its rule makes, or `undefined` when the rule does not apply. Plans never
 * return an assignment that leaves a goal unchanged, so a decision loop always ends.
 *
 * The group state machine (`machine.ts`) uses "plan returns something" as the guard of a
 * transition and the returned assignments as the parameters of its action.
 */
import { formatLsn } from '../lsn.js';
import type { NodeState } from '../states.js';
import type { Assignment, GroupFacts, NodeFacts } from './facts.js';
import {
  isCurrentState,
  isPromotable,
  isStreaming,
  keeperIsAlive,
  postgresIsDown,
  primaryHasFailed,
  quorumStandbys,
  standbyIsHealthy,
  walDifferenceWithin,
  writableNode,
} from './guards.js';

/** A plan: the assignments of one rule, or undefined when the rule does not apply. */
export type Plan = (facts: GroupFacts) => Assignment[] | undefined;

function assign(node: NodeFacts, goalState: NodeState, rule: string, reason: string): Assignment {
  return { nodeId: node.nodeId, goalState, rule, reason };
}

function nonEmpty(assignments: Assignment[], facts: GroupFacts): Assignment[] | undefined {
  const changed = assignments.filter(
    (a) => facts.nodes.find((n) => n.nodeId === a.nodeId)?.goalState !== a.goalState,
  );
  return changed.length > 0 ? changed : undefined;
}

function describe(node: NodeFacts): string {
  return `node ${node.nodeId} "${node.name}"`;
}

/** The writable node whose keeper has reached its goal, if there is one. */
function settledPrimary(facts: GroupFacts): NodeFacts | undefined {
  const primary = writableNode(facts);
  return primary && primary.reportedState === primary.goalState ? primary : undefined;
}

/** Healthy quorum standbys that reached `secondary`, other than those in `except`. */
function healthySyncStandbys(facts: GroupFacts, primary: NodeFacts, except: readonly number[] = []): NodeFacts[] {
  return quorumStandbys(facts, primary.nodeId).filter(
    (n) => !except.includes(n.nodeId) && isCurrentState(n, 'secondary') && standbyIsHealthy(facts, n),
  );
}

/** Rule `first-node-single`: the first node of a group becomes `single`. */
export const firstNodeSingle: Plan = (facts) => {
  const first = facts.nodes[0];
  if (!first || !facts.nodes.every((n) => n.goalState === 'init')) return undefined;
  return [assign(first, 'single', 'first-node-single', `${describe(first)} is the first node of the group: single, writable, no replication`)];
};

/**
 * Rule `register-standby`: a node registered while the group has a primary. It waits
 * (`wait_standby`) while the primary prepares a replication slot and pg_hba entries for it
 * (`single` → `wait_primary`, `primary`/`wait_primary` → `join_primary`).
 */
export const registerStandby: Plan = (facts) => {
  const primary = settledPrimary(facts);
  if (!primary) return undefined;
  const newcomers = facts.nodes.filter((n) => n.goalState === 'init' && n.nodeId !== primary.nodeId);
  if (newcomers.length === 0) return undefined;
  const names = newcomers.map(describe).join(', ');
  const out = newcomers.map((n) =>
    assign(n, 'wait_standby', 'register-standby', `${describe(n)} registered as a standby of ${describe(primary)}; waiting for the primary to accept it`),
  );
  const next: Partial<Record<NodeState, NodeState>> = { single: 'wait_primary', wait_primary: 'join_primary', primary: 'join_primary' };
  const goal = next[primary.goalState];
  if (goal) out.push(assign(primary, goal, 'register-standby', `${names} registered: the primary adds a replication slot and pg_hba entries`));
  return nonEmpty(out, facts);
};

/**
 * Rule `standby-start-catchingup`: the primary reports it has accepted the new standbys
 * (`wait_primary` or `join_primary` reached), so they may base-backup and stream.
 */
export const startCatchingUp: Plan = (facts) => {
  const primary = settledPrimary(facts);
  if (!primary || (primary.goalState !== 'wait_primary' && primary.goalState !== 'join_primary')) return undefined;
  const waiting = facts.nodes.filter((n) => n.goalState === 'wait_standby');
  if (waiting.length === 0 && primary.goalState !== 'join_primary') return undefined;
  const out = waiting.map((n) =>
    assign(n, 'catchingup', 'standby-start-catchingup', `${describe(primary)} is ready for ${describe(n)}: base backup and streaming`),
  );
  if (primary.goalState === 'join_primary') {
    const synced = healthySyncStandbys(facts, primary).length > 0;
    out.push(
      assign(primary, synced ? 'primary' : 'wait_primary', 'standby-start-catchingup',
        synced ? 'new standbys accepted; synchronous replication stays on' : 'new standbys accepted; no synchronous standby yet'),
    );
  }
  return nonEmpty(out, facts);
};

/**
 * Rule `standby-failed`: a `secondary` is unhealthy (its Postgres is down, or it has not
 * streamed for `standbyStreamingTimeoutMs`). It goes back to `catchingup`; if no healthy
 * quorum standby is left and number_sync_standbys is 0, the primary goes to `wait_primary`
 * so that writes never block on a dead standby. Only applies while the primary itself is
 * up, so that a standby that stops streaming because the primary died is not blamed.
 */
export const standbyFailed: Plan = (facts) => {
  const primary = writableNode(facts);
  if (!primary || !keeperIsAlive(facts, primary) || !primary.pgIsRunning || postgresIsDown(facts, primary)) return undefined;
  const failed = facts.nodes.filter(
    (n) => n.nodeId !== primary.nodeId && n.goalState === 'secondary' && !standbyIsHealthy(facts, n),
  );
  if (failed.length === 0) return undefined;
  const out = failed.map((n) =>
    assign(n, 'catchingup', 'standby-failed',
      postgresIsDown(facts, n)
        ? `${describe(n)} is unhealthy: Postgres does not answer the monitor's probe`
        : `${describe(n)} is unhealthy: its WAL receiver has not streamed for ${facts.settings.standbyStreamingTimeoutMs} ms`),
  );
  const remaining = healthySyncStandbys(facts, primary, failed.map((n) => n.nodeId));
  if (remaining.length === 0 && facts.settings.numberSyncStandbys === 0 && primary.goalState === 'primary') {
    out.push(assign(primary, 'wait_primary', 'standby-failed',
      `no healthy synchronous standby left (${failed.map(describe).join(', ')} failed): synchronous replication off so writes continue`));
  }
  return nonEmpty(out, facts);
};

/**
 * The node to promote among the group's standbys, and whether promoting it keeps every commit
 * that synchronous replication acknowledged. Commits on a `primary` wait for n of the k quorum
 * standbys (`ANY n (…)`), so an acknowledged commit is on at least n of them: once at least
 * k − n + 1 quorum standbys have reported (keeper alive), every acknowledged commit is on one of
 * them, and a candidate at or past the most advanced of them has it.
 *
 * The candidate is the most advanced promotable standby (ties: higher candidate priority, then
 * lower node id). Until `fast_forward` exists, a candidate behind another reporting standby is
 * not promoted.
 *
 * @returns the candidate, or the reason why there is none.
 */
export function electCandidate(facts: GroupFacts, primary: NodeFacts): { candidate: NodeFacts } | { why: string } {
  const promotable = facts.nodes
    .filter((n) => n.nodeId !== primary.nodeId && (isPromotable(facts, n) || (isCurrentState(n, 'prepare_promotion') && n.candidatePriority > 0 && keeperIsAlive(facts, n))))
    .sort((a, b) =>
      a.reportedLsn !== b.reportedLsn ? (b.reportedLsn > a.reportedLsn ? 1 : -1) : b.candidatePriority - a.candidatePriority || a.nodeId - b.nodeId,
    );
  const candidate = promotable[0];
  if (!candidate) return { why: 'no standby is promotable (secondary, keeper alive, candidate priority > 0)' };
  const quorum = facts.nodes.filter(
    (n) => n.nodeId !== primary.nodeId && n.replicationQuorum && (n.goalState === 'secondary' || n.goalState === 'prepare_promotion'),
  );
  const k = quorum.length;
  const n = Math.min(k, Math.max(1, facts.settings.numberSyncStandbys));
  const reporting = quorum.filter((q) => keeperIsAlive(facts, q));
  if (k > 0 && reporting.length < k - n + 1) {
    return { why: `only ${reporting.length} of ${k} quorum standbys reported; ${k - n + 1} are needed to know the last acknowledged commit` };
  }
  const ahead = facts.nodes.find((o) => o.nodeId !== primary.nodeId && o.nodeId !== candidate.nodeId && keeperIsAlive(facts, o) && o.reportedLsn > candidate.reportedLsn);
  if (ahead) return { why: `${describe(ahead)} is more advanced than every promotable standby` };
  return { candidate };
}

/**
 * Rule `failover-start`: the primary has failed (probe fails, keeper silent or Postgres not
 * running, no standby streaming) while it ran with synchronous replication on (`primary`
 * reported), so it could not acknowledge a commit that its synchronous standbys lack. The
 * elected standby ({@link electCandidate}) goes to `prepare_promotion`; the old primary goes
 * to `demote_timeout`.
 */
export const failoverStart: Plan = (facts) => {
  const primary = writableNode(facts);
  if (!primary || !isCurrentState(primary, 'primary') || !primaryHasFailed(facts, primary)) return undefined;
  const election = electCandidate(facts, primary);
  if (!('candidate' in election)) return undefined;
  const { candidate } = election;
  const silentMs = primary.lastReportMs === null ? 'ever' : `${facts.nowMs - primary.lastReportMs} ms`;
  return [
    assign(primary, 'demote_timeout', 'failover-start',
      `${describe(primary)} failed: Postgres probe fails, keeper ${keeperIsAlive(facts, primary) ? 'reports Postgres down' : `silent for ${silentMs}`}, no standby streams from it`),
    assign(candidate, 'prepare_promotion', 'failover-start',
      `${describe(candidate)} is the most advanced promotable standby (LSN ${formatLsn(candidate.reportedLsn)}, candidate priority ${candidate.candidatePriority})`),
  ];
};

/** The node being promoted and the old primary being demoted, during a failover. */
function failoverPair(facts: GroupFacts, candidateState: NodeState): { candidate: NodeFacts; others: NodeFacts[] } | undefined {
  const candidate = facts.nodes.find((n) => isCurrentState(n, candidateState));
  if (!candidate) return undefined;
  return { candidate, others: facts.nodes.filter((n) => n.nodeId !== candidate.nodeId) };
}

/**
 * The node that reached `prepare_promotion`, the election re-run against the old primary, and
 * whether that node is still the one elected.
 */
function pendingPromotion(facts: GroupFacts): { candidate: NodeFacts; election: ReturnType<typeof electCandidate>; stillElected: boolean } | undefined {
  const pair = failoverPair(facts, 'prepare_promotion');
  const oldPrimary = pair?.others.find((n) => n.goalState === 'demote_timeout' || n.goalState === 'draining');
  if (!pair || !oldPrimary) return undefined;
  const election = electCandidate(facts, oldPrimary);
  return { candidate: pair.candidate, election, stillElected: 'candidate' in election && election.candidate.nodeId === pair.candidate.nodeId };
}

/**
 * Rule `promote-candidate`: the candidate reached `prepare_promotion`. The old primary ran
 * with synchronous replication on, and the candidate no longer acknowledges its WAL, so the
 * old primary cannot acknowledge any further commit: the candidate may promote at once
 * without waiting out a demote timeout.
 */
export const promoteCandidate: Plan = (facts) => {
  const pending = pendingPromotion(facts);
  if (!pending || !pending.stillElected) return undefined;
  return [assign(pending.candidate, 'stop_replication', 'promote-candidate',
    `${describe(pending.candidate)} promotes: the old primary cannot acknowledge commits without this synchronous standby`)];
};

/**
 * Rule `candidate-changed`: the node in `prepare_promotion` is no longer the one to promote
 * (a more advanced standby reported, or its candidate priority is now 0). It goes back to
 * `secondary`; the newly elected node goes to `prepare_promotion`.
 */
export const reelectCandidate: Plan = (facts) => {
  const pending = pendingPromotion(facts);
  if (!pending || pending.stillElected) return undefined;
  const { candidate, election } = pending;
  const out = [assign(candidate, 'secondary', 'candidate-changed',
    `${describe(candidate)} is no longer the node to promote: ${'why' in election ? election.why : `${describe(election.candidate)} is more advanced`}`)];
  if ('candidate' in election) {
    out.push(assign(election.candidate, 'prepare_promotion', 'candidate-changed',
      `${describe(election.candidate)} is now the most advanced promotable standby (LSN ${formatLsn(election.candidate.reportedLsn)})`));
  }
  return out;
};

/**
 * Rule `promotion-done`: the candidate promoted (`stop_replication` reached). It becomes
 * `wait_primary`; the old primary is `demoted`; other standbys go back to `catchingup` to
 * follow the new primary.
 */
export const promotionDone: Plan = (facts) => {
  const pair = failoverPair(facts, 'stop_replication');
  if (!pair) return undefined;
  const { candidate, others } = pair;
  const out = [assign(candidate, 'wait_primary', 'promotion-done', `${describe(candidate)} is promoted and takes writes; no standby is synchronous yet`)];
  for (const n of others) {
    if (n.goalState === 'draining' || n.goalState === 'demote_timeout') {
      out.push(assign(n, 'demoted', 'promotion-done', `${describe(n)} is the old primary: it stays stopped until it rejoins as a standby of ${describe(candidate)}`));
    } else if (n.goalState === 'secondary' || n.goalState === 'catchingup') {
      out.push(assign(n, 'catchingup', 'promotion-done', `${describe(n)} follows the new primary ${describe(candidate)}`));
    }
  }
  return nonEmpty(out, facts);
};

/**
 * Rule `demoted-rejoin`: a demoted old primary's keeper is back and a primary is settled:
 * it rewinds (pg_rewind, or a fresh base backup when rewinding fails) and catches up.
 */
export const rejoinDemoted: Plan = (facts) => {
  const primary = settledPrimary(facts);
  if (!primary) return undefined;
  const out = facts.nodes
    .filter((n) => n.nodeId !== primary.nodeId && isCurrentState(n, 'demoted') && keeperIsAlive(facts, n))
    .map((n) => assign(n, 'catchingup', 'demoted-rejoin', `${describe(n)} is back: it rewinds to follow ${describe(primary)} and catches up`));
  return out.length > 0 ? out : undefined;
};

/**
 * Rule `standby-caught-up`: a `catchingup` standby streams on the primary's timeline within
 * `catchupLagBytes` of its LSN: it becomes `secondary`.
 */
export const standbyCaughtUp: Plan = (facts) => {
  const primary = settledPrimary(facts);
  if (!primary) return undefined;
  const out = facts.nodes
    .filter(
      (n) =>
        n.nodeId !== primary.nodeId &&
        isCurrentState(n, 'catchingup') &&
        isStreaming(facts, n) &&
        n.pgIsRunning &&
        n.reportedTimeline === primary.reportedTimeline &&
        walDifferenceWithin(facts, primary, n),
    )
    .map((n) =>
      assign(n, 'secondary', 'standby-caught-up',
        `${describe(n)} streams within ${facts.settings.catchupLagBytes} bytes of the primary (LSN ${formatLsn(n.reportedLsn)} of ${formatLsn(primary.reportedLsn)})`),
    );
  return out.length > 0 ? out : undefined;
};

/**
 * Rule `enable-sync`: a `wait_primary` has a healthy quorum `secondary`: it becomes `primary`
 * and turns synchronous replication on.
 */
export const enableSync: Plan = (facts) => {
  const primary = settledPrimary(facts);
  if (!primary || primary.goalState !== 'wait_primary') return undefined;
  const synced = healthySyncStandbys(facts, primary);
  if (synced.length === 0) return undefined;
  return [assign(primary, 'primary', 'enable-sync', `${synced.map(describe).join(', ')} caught up: synchronous replication on`)];
};

/** Every plan by the name the state machine uses for its guard. */
export const PLANS = {
  firstNodeSingle,
  registerStandby,
  startCatchingUp,
  standbyFailed,
  failoverStart,
  promoteCandidate,
  reelectCandidate,
  promotionDone,
  rejoinDemoted,
  standbyCaughtUp,
  enableSync,
} as const satisfies Record<string, Plan>;

/** Name of one plan in {@link PLANS}. */
export type PlanName = keyof typeof PLANS;
