/**
 * The monitor's rules, one function each. A plan reads group facts and returns the goal
 * assignments its rule makes, or `undefined` when the rule does not apply. Plans never
 * return an assignment that leaves a goal unchanged, so a decision loop always ends.
 *
 * A rule has one name: its id (kebab-case, what event rows store in their `rule` column and
 * `pgha show events` prints), which keys {@link PLANS} and names the machine's guard. Its plan
 * function is the id in camelCase (`standby-failed` → `standbyFailed`; a test checks it).
 * Plans return their assignments without the id: the state machine (`machine.ts`) stamps the
 * id of the rule whose guard ("the plan returns something") passed.
 */
import { formatDurationMs } from '../duration.js';
import { formatLsn } from '../lsn.js';
import { listsNode } from '../standby-names.js';
import { OUTGOING_PRIMARY_STATES, PLANNED_STOP_STATES, PROMOTION_STATES, STANDBY_STATES, type NodeState } from '../states.js';
import type { GroupFacts, NodeFacts, PlannedAssignment } from './facts.js';
import { describeWinner, elect, isEligible, reportingStandbys } from './election.js';
import {
  isCurrentState,
  diedLoudly,
  isStreaming,
  keeperIsAlive,
  restartingOnRequest,
  postgresIsDown,
  primaryHasFailed,
  quorumStandbys,
  standbyIsHealthy,
  walDifferenceWithin,
  writableNode,
} from './guards.js';

/** A plan: the assignments of one rule, or undefined when the rule does not apply. */
export type Plan = (facts: GroupFacts) => PlannedAssignment[] | undefined;

function assign(node: NodeFacts, goalState: NodeState, reason: string): PlannedAssignment {
  return { nodeId: node.nodeId, goalState, reason };
}

function nonEmpty(assignments: PlannedAssignment[], facts: GroupFacts): PlannedAssignment[] | undefined {
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
  return [assign(first, 'single', `${describe(first)} is the first node of the group: single, writable, no replication`)];
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
    assign(n, 'wait_standby', `${describe(n)} registered as a standby of ${describe(primary)}; waiting for the primary to accept it`),
  );
  const next: Partial<Record<NodeState, NodeState>> = { single: 'wait_primary', wait_primary: 'join_primary', primary: 'join_primary' };
  const goal = next[primary.goalState];
  if (goal) out.push(assign(primary, goal, `${names} registered: the primary adds a replication slot and pg_hba entries`));
  return nonEmpty(out, facts);
};

/**
 * Rule `standby-start-catchingup`: the primary reports it has accepted the new standbys
 * (`wait_primary` or `join_primary` reached), so they may base-backup and stream.
 */
export const standbyStartCatchingup: Plan = (facts) => {
  const primary = settledPrimary(facts);
  if (!primary || (primary.goalState !== 'wait_primary' && primary.goalState !== 'join_primary')) return undefined;
  const waiting = facts.nodes.filter((n) => n.goalState === 'wait_standby');
  if (waiting.length === 0 && primary.goalState !== 'join_primary') return undefined;
  const out = waiting.map((n) =>
    assign(n, 'catchingup', `${describe(primary)} is ready for ${describe(n)}: base backup and streaming`),
  );
  if (primary.goalState === 'join_primary') {
    const synced = healthySyncStandbys(facts, primary).length > 0;
    out.push(
      assign(primary, synced ? 'primary' : 'wait_primary', synced ? 'new standbys accepted; synchronous replication stays on' : 'new standbys accepted; no synchronous standby yet'),
    );
  }
  return nonEmpty(out, facts);
};

/**
 * Rule `standby-failed`: a `secondary` is unhealthy (its Postgres is down, or it has not
 * streamed for `standbyStreamingTimeoutMs`). It goes back to `catchingup`; if no healthy
 * quorum standby is left and number_sync_standbys is 0, the primary goes to `wait_primary`
 * so that writes never block on a dead standby. Only applies while the primary itself is
 * up and not restarting on the operator's request, so that a standby that stops streaming
 * because the primary died or restarts is not blamed.
 */
export const standbyFailed: Plan = (facts) => {
  const primary = writableNode(facts);
  if (!primary || !keeperIsAlive(facts, primary) || !primary.postgresRunning || postgresIsDown(facts, primary)) return undefined;
  // Its standbys stop streaming while it restarts on request: not their failure.
  if (restartingOnRequest(facts, primary)) return undefined;
  const failed = facts.nodes.filter(
    (n) => n.nodeId !== primary.nodeId && n.goalState === 'secondary' && !standbyIsHealthy(facts, n),
  );
  if (failed.length === 0) return undefined;
  const out = failed.map((n) =>
    assign(n, 'catchingup',
      diedLoudly(n)
        ? `${describe(n)} is unhealthy: it died loudly (its keeper's connections to the monitor closed, then its keeper's and its Postgres's ports refused connections twice)`
        : postgresIsDown(facts, n)
        ? `${describe(n)} is unhealthy: Postgres does not answer the monitor's probe`
        : `${describe(n)} is unhealthy: its WAL receiver has not streamed for ${formatDurationMs(facts.settings.standbyStreamingTimeoutMs)}`),
  );
  const remaining = healthySyncStandbys(facts, primary, failed.map((n) => n.nodeId));
  if (remaining.length === 0 && facts.settings.numberSyncStandbys === 0 && primary.goalState === 'primary') {
    out.push(assign(primary, 'wait_primary', `no healthy synchronous standby left (${failed.map(describe).join(', ')} failed): synchronous replication off so writes continue`));
  }
  return nonEmpty(out, facts);
};

/** The primary being replaced by a failover or switchover in progress, if any. */
export function outgoingPrimary(facts: GroupFacts): NodeFacts | undefined {
  return facts.nodes.find((n) => OUTGOING_PRIMARY_STATES.has(n.goalState));
}

/**
 * The outgoing primary can no longer acknowledge commits: it failed, or it ran with
 * synchronous replication on and was assigned `demote_timeout` (failover), or a planned
 * demotion (`draining`, `prepare_maintenance`) has stopped its writes: its keeper reports that
 * state once Postgres takes none (every session ended, new ones refused, the shutdown
 * checkpoint begun; `stopWrites` in `@pgha/postgres`), or its Postgres is down.
 */
function outgoingIsFenced(facts: GroupFacts, old: NodeFacts | undefined): boolean {
  if (!old || old.goalState === 'demote_timeout') return true;
  // A silent keeper alone proves nothing: its Postgres may still answer and acknowledge
  // commits through another synchronous standby.
  return old.reportedState === old.goalState || postgresIsDown(facts, old);
}

/**
 * Starts an election after `old`: with two or more secondaries, each goes to `report_lsn`;
 * with one, the election runs at once (the fast path of a two-node group).
 */
export function startElection(facts: GroupFacts, old: NodeFacts | undefined, oldGoal?: { goal: NodeState; reason: string }): PlannedAssignment[] | undefined {
  const standbys = facts.nodes.filter((n) => n.nodeId !== old?.nodeId && n.goalState === 'secondary');
  // An election nobody can win (every candidate priority 0) is not started; nor one while no
  // standby's keeper reports: when the monitor hears from no standby either, it is the one cut
  // off, more likely than the primary dead, and "no standby streams from the primary" is then
  // no witness at all.
  if (!standbys.some((n) => n.candidatePriority > 0)) return undefined;
  if (!standbys.some((n) => keeperIsAlive(facts, n))) return undefined;
  let out: PlannedAssignment[];
  if (standbys.length >= 2) {
    out = standbys.map((n) => assign(n, 'report_lsn', `${describe(n)} reports its LSN for the election`));
  } else {
    // Only a standby that reached secondary (caught up, synchronous) may win at once.
    const result = elect(facts, old, standbys.filter((n) => isCurrentState(n, 'secondary')));
    if ('why' in result) return undefined;
    out = [assign(result.winner, result.behind ? 'fast_forward' : 'prepare_promotion', describeWinner(result))];
  }
  if (old && oldGoal) out.unshift(assign(old, oldGoal.goal, oldGoal.reason));
  return nonEmpty(out, facts);
}

/**
 * Rule `failover-start`: the primary has failed (probe fails, keeper silent or Postgres not
 * running, or the node died loudly; and no standby streaming) while it ran with synchronous replication on (`primary`
 * reported), so it cannot acknowledge a commit its synchronous standbys lack: it goes to
 * `demote_timeout` and the election starts ({@link startElection}).
 */
export const failoverStart: Plan = (facts) => {
  const primary = writableNode(facts);
  if (!primary || !isCurrentState(primary, 'primary') || !primaryHasFailed(facts, primary)) return undefined;
  const silent = primary.lastReportMs === null ? 'ever' : formatDurationMs(facts.nowMs - primary.lastReportMs);
  const down = diedLoudly(primary)
    ? "died loudly: its keeper's connections to the monitor closed, then its keeper's and its Postgres's ports refused connections twice"
    : `Postgres probe fails, keeper ${keeperIsAlive(facts, primary) ? 'reports Postgres down' : `silent for ${silent}`}`;
  return startElection(facts, primary, { goal: 'demote_timeout', reason: `${describe(primary)} failed: ${down}, no standby streams from it` });
};

/**
 * Rule `election-restart`: an election ended without a candidate (none was eligible, or the
 * candidate went back to `secondary`) while the group has no writable node and its outgoing
 * primary is fenced: the election starts again ({@link startElection}). It comes right after
 * `failover-start` in every phase; the two never both apply (that one needs a writable node).
 */
export const electionRestart: Plan = (facts) => {
  if (writableNode(facts)) return undefined;
  const old = outgoingPrimary(facts);
  if (!old || facts.nodes.some((n) => PROMOTION_STATES.has(n.goalState)) || !outgoingIsFenced(facts, old)) return undefined;
  return startElection(facts, old);
};

/**
 * Rule `election`: every standby in `report_lsn` has reported (or `electionTimeoutMs` has
 * passed since they were asked): the winner ({@link elect}) goes to `prepare_promotion`, or to
 * `fast_forward` when it is behind the most advanced standby.
 */
export const election: Plan = (facts) => {
  const voters = facts.nodes.filter((n) => n.goalState === 'report_lsn');
  if (voters.length === 0 || facts.nodes.some((n) => PROMOTION_STATES.has(n.goalState) && n.goalState !== 'report_lsn')) return undefined;
  const answered = voters.filter((v) => v.reportedState === 'report_lsn' && keeperIsAlive(facts, v));
  const askedMs = Math.max(...voters.map((v) => v.goalChangedMs ?? Number.POSITIVE_INFINITY));
  const timedOut = Number.isFinite(askedMs) && facts.nowMs - askedMs >= facts.settings.electionTimeoutMs;
  if (answered.length < voters.length && !timedOut) return undefined;
  const result = elect(facts, outgoingPrimary(facts), answered);
  if ('why' in result) return undefined;
  const late = voters.filter((v) => !answered.includes(v));
  const suffix = late.length > 0 ? ` (decided after ${formatDurationMs(facts.settings.electionTimeoutMs)} without ${late.map(describe).join(', ')})` : '';
  return [assign(result.winner, result.behind ? 'fast_forward' : 'prepare_promotion', `${describeWinner(result)}${suffix}`)];
};

/** Rule `fast-forward-done`: the winner has fetched the WAL it lacked: it may promote. */
export const fastForwardDone: Plan = (facts) => {
  const winner = facts.nodes.find((n) => isCurrentState(n, 'fast_forward'));
  if (!winner) return undefined;
  const ahead = reportingStandbys(facts, outgoingPrimary(facts)).find((r) => r.nodeId !== winner.nodeId && r.reportedLsn > winner.reportedLsn);
  if (ahead) return undefined;
  return [assign(winner, 'prepare_promotion', `${describe(winner)} has the most advanced WAL (LSN ${formatLsn(winner.reportedLsn)})`)];
};

/** What {@link switchoverProof} finds. */
export type SwitchoverProof =
  /** Not a switchover that needs it (see {@link switchoverProof}). */
  | { verdict: 'unneeded' }
  /** The candidate reported WAL at or past the old primary's shutdown checkpoint. */
  | { verdict: 'proven' }
  /** Not yet: the shutdown checkpoint is still to be reported, or the candidate still streams it. */
  | { verdict: 'waiting' }
  /** It will not be proven: an election must decide ({@link switchoverElection}); `why` says why. */
  | { verdict: 'unprovable'; why: string };

/**
 * Whether a switchover's `candidate` is known to hold every commit the outgoing primary `old`
 * acknowledged. The standbys' LSNs the monitor holds were reported before the old primary
 * stopped: a standby of the synchronous set may since have acknowledged commits the candidate
 * lacks (`ANY 1 (…)` with the candidate's stream broken just before, well within the
 * timeouts that would call it unhealthy). So, in a planned switchover (`old` in
 * `draining` or `prepare_maintenance`) where another node is a `secondary`, the candidate is
 * promoted only once it reports WAL at or past the old primary's shutdown checkpoint
 * (`NodeFacts.shutdownCheckpointLsn`: every commit lies before it), and an election decides
 * when that cannot come: the old primary stopped without a shutdown checkpoint (a crash, or
 * a keeper too old to report it) or went silent with its Postgres down, the candidate no
 * longer streams and lacks WAL before the checkpoint, or `electionTimeoutMs` has passed since
 * the switchover began (a WAL receiver that hangs while it still says it streams; the bound an
 * election puts on its voters).
 *
 * Not needed (`unneeded`): in a failover (`demote_timeout`), and once an election runs (a node in
 * `report_lsn`): the voters reported their LSNs after the old primary was fenced; with no
 * other `secondary`, the election's count of the synchronous set (`elect`) stands alone, as
 * in a failover of two nodes.
 */
export function switchoverProof(facts: GroupFacts, old: NodeFacts | undefined, candidate: NodeFacts): SwitchoverProof {
  if (!old || !PLANNED_STOP_STATES.has(old.goalState)) return { verdict: 'unneeded' };
  if (facts.nodes.some((n) => n.goalState === 'report_lsn')) return { verdict: 'unneeded' };
  if (otherSecondaries(facts, old, candidate).length === 0) return { verdict: 'unneeded' };
  const end = old.shutdownCheckpointLsn ?? null;
  if (end !== null && candidate.reportedLsn >= end) return { verdict: 'proven' };
  const sinceMs = old.goalChangedMs === undefined || old.goalChangedMs === null ? 0 : facts.nowMs - old.goalChangedMs;
  if (sinceMs >= facts.settings.electionTimeoutMs) {
    return {
      verdict: 'unprovable',
      why: `${describe(candidate)} (WAL up to ${formatLsn(candidate.reportedLsn)}) has not reported ${end === null ? `the WAL of ${describe(old)}, whose shutdown checkpoint is not reported either,` : `the shutdown checkpoint of ${describe(old)} at ${formatLsn(end)}`} ${formatDurationMs(sinceMs)} after the switchover began`,
    };
  }
  if (end !== null) {
    if (candidate.upstreamStreaming) return { verdict: 'waiting' };
    return {
      verdict: 'unprovable',
      why: `${describe(candidate)} has WAL up to ${formatLsn(candidate.reportedLsn)} and no longer streams, short of the shutdown checkpoint of ${describe(old)} at ${formatLsn(end)}`,
    };
  }
  const heard = keeperIsAlive(facts, old);
  if (heard ? old.reportedState === old.goalState && !old.postgresRunning : postgresIsDown(facts, old)) {
    return {
      verdict: 'unprovable',
      why: `${describe(old)} stopped without reporting a shutdown checkpoint (${heard ? 'its Postgres did not shut down cleanly' : 'its keeper is silent and its Postgres down'}), so its last WAL is not known`,
    };
  }
  return { verdict: 'waiting' };
}

/** The nodes in goal `secondary` other than a switchover's outgoing primary and its candidate. */
function otherSecondaries(facts: GroupFacts, old: NodeFacts, candidate: NodeFacts): NodeFacts[] {
  return facts.nodes.filter((n) => n.nodeId !== old.nodeId && n.nodeId !== candidate.nodeId && n.goalState === 'secondary');
}

/**
 * Rule `switchover-election`: the outgoing primary of a switchover is fenced and its
 * candidate, in `prepare_promotion`, cannot be shown to hold every acknowledged commit
 * ({@link switchoverProof} is `unprovable`): the candidate and every other `secondary` report
 * their LSN (`report_lsn`) and the election decides, as after a failure (rule `election`),
 * among LSNs reported after the old primary stopped.
 */
export const switchoverElection: Plan = (facts) => {
  const candidate = facts.nodes.find((n) => isCurrentState(n, 'prepare_promotion'));
  const old = outgoingPrimary(facts);
  if (!candidate || !old || !outgoingIsFenced(facts, old)) return undefined;
  const proof = switchoverProof(facts, old, candidate);
  if (proof.verdict !== 'unprovable') return undefined;
  const voters = [candidate, ...otherSecondaries(facts, old, candidate)];
  return nonEmpty(voters.map((v) => assign(v, 'report_lsn', `${describe(v)} reports its LSN for an election: ${proof.why}`)), facts);
};

/**
 * The nodes whose keepers should report now rather than at the end of their report interval
 * (the monitor answers their held reports at once): a switchover's candidate whose LSN is all
 * the promotion waits for ({@link switchoverProof} `waiting` with the old primary's shutdown
 * checkpoint known), when it has not reported since the old primary last did.
 *
 * @returns node ids, none most of the time.
 */
export function reportsWanted(facts: GroupFacts): number[] {
  const candidate = facts.nodes.find((n) => isCurrentState(n, 'prepare_promotion'));
  const old = outgoingPrimary(facts);
  if (!candidate || !old || (old.shutdownCheckpointLsn ?? null) === null) return [];
  if (switchoverProof(facts, old, candidate).verdict !== 'waiting') return [];
  return (candidate.lastReportMs ?? 0) <= (old.lastReportMs ?? 0) ? [candidate.nodeId] : [];
}

/**
 * Rule `promote-candidate`: the candidate reached `prepare_promotion`, is still eligible, the
 * outgoing primary can no longer acknowledge commits (see `outgoingIsFenced`), and either, in a
 * switchover, the candidate holds the old primary's last WAL ({@link switchoverProof}
 * `proven`: every commit it ever made, so no other standby's LSN or silence matters), or the
 * candidate is at or past every reporting standby's LSN and enough of the synchronous set
 * still reports for one of them to hold every acknowledged commit (the election's rule,
 * `elect`): promote. In a failover there is no demote timeout to wait out: the old primary ran
 * with synchronous replication on.
 */
export const promoteCandidate: Plan = (facts) => {
  const candidate = facts.nodes.find((n) => isCurrentState(n, 'prepare_promotion'));
  const old = outgoingPrimary(facts);
  if (!candidate || !outgoingIsFenced(facts, old) || !isEligible(facts, candidate)) return undefined;
  const proof = switchoverProof(facts, old, candidate).verdict;
  if (proof === 'waiting' || proof === 'unprovable') return undefined;
  if (proof === 'unneeded') {
    if (reportingStandbys(facts, old).some((r) => r.reportedLsn > candidate.reportedLsn)) return undefined;
    // The election's acknowledged-commit rule still holds now: a member of the synchronous set
    // that fell silent since the candidate was chosen may hold a commit no reporting standby has.
    if ('why' in elect(facts, old, [candidate])) return undefined;
  }
  const why = old?.goalState === 'demote_timeout' ? 'the old primary cannot acknowledge commits without its synchronous standbys' : 'the old primary has stopped';
  return [assign(candidate, 'stop_replication', `${describe(candidate)} promotes: ${why}`)];
};

/**
 * Rule `candidate-behind`: once the outgoing primary is fenced, a standby reports more WAL
 * than the candidate: the candidate fetches it first (`fast_forward`). Not in a switchover
 * whose candidate must show the old primary's shutdown checkpoint ({@link switchoverProof}
 * not `unneeded`): the other standbys' LSNs were reported at other moments while the old
 * primary still wrote, so one of them ahead proves nothing, and a candidate that streamed
 * until the old primary stopped has every record any of them has (the proof, or the election
 * when it cannot come, decides).
 */
export const candidateBehind: Plan = (facts) => {
  const candidate = facts.nodes.find((n) => isCurrentState(n, 'prepare_promotion'));
  const old = outgoingPrimary(facts);
  if (!candidate || !outgoingIsFenced(facts, old) || !isEligible(facts, candidate)) return undefined;
  if (switchoverProof(facts, old, candidate).verdict !== 'unneeded') return undefined;
  const ahead = reportingStandbys(facts, old).find((r) => r.reportedLsn > candidate.reportedLsn);
  if (!ahead) return undefined;
  return [assign(candidate, 'fast_forward', `${describe(ahead)} has more WAL (LSN ${formatLsn(ahead.reportedLsn)}) than ${describe(candidate)}: fetching it before promotion`)];
};

/**
 * Rule `candidate-changed`: the candidate is no longer eligible (candidate priority now 0,
 * keeper silent, Postgres down): it goes back to `report_lsn` (or `secondary`) and the election
 * runs again.
 */
export const candidateChanged: Plan = (facts) => {
  const candidate = facts.nodes.find((n) => n.goalState === 'prepare_promotion' || n.goalState === 'fast_forward');
  if (!candidate || isEligible(facts, candidate)) return undefined;
  const back = facts.nodes.some((n) => n.goalState === 'report_lsn') ? 'report_lsn' : 'secondary';
  return [assign(candidate, back, `${describe(candidate)} is no longer eligible for promotion (candidate priority ${candidate.candidatePriority}, keeper ${keeperIsAlive(facts, candidate) ? 'alive' : 'silent'}, Postgres ${candidate.postgresRunning ? 'running' : 'down'})`)];
};

/**
 * Rule `promotion-done`: the candidate promoted (`stop_replication` reached). It becomes
 * `wait_primary`; the old primary is `demoted` (or `maintenance` when it left for maintenance);
 * the other standbys `join_secondary` to follow the new primary.
 */
export const promotionDone: Plan = (facts) => {
  const candidate = facts.nodes.find((n) => isCurrentState(n, 'stop_replication'));
  if (!candidate) return undefined;
  const out = [assign(candidate, 'wait_primary', `${describe(candidate)} is promoted and takes writes; no standby is synchronous yet`)];
  for (const n of facts.nodes) {
    if (n.nodeId === candidate.nodeId) continue;
    if (n.goalState === 'prepare_maintenance') {
      out.push(assign(n, 'maintenance', `${describe(n)} is in maintenance; ${describe(candidate)} is the primary`));
    } else if (n.goalState === 'draining' || n.goalState === 'demote_timeout') {
      out.push(assign(n, 'demoted', `${describe(n)} is the old primary: it stays stopped until it rejoins as a standby of ${describe(candidate)}`));
    } else if (STANDBY_STATES.has(n.goalState) && n.goalState !== 'catchingup') {
      // A standby still catching up goes on catching up, from the new primary.
      out.push(assign(n, 'join_secondary', `${describe(n)} follows the new primary ${describe(candidate)}`));
    }
  }
  return nonEmpty(out, facts);
};

/**
 * Rule `lone-primary-single`: the writable node (`primary` or `wait_primary`, reached) is the
 * only node of its group: every other node was dropped. It becomes `single`, as the first
 * node of a group is. No node of the group could be promoted in its place, and none can be
 * synchronous, so nothing is lost (`synchronous_standby_names` is empty either way); what
 * changes is that the group reads as settled again (`pgha perform restart` accepts `single`,
 * not `wait_primary`). Candidate priority is not read: it chooses which node an election
 * promotes, and this node already is the primary with no other to prefer. A node that
 * registers, in any state from `init` on, keeps the rule from applying; once one registers,
 * `register-standby` takes the `single` back to `wait_primary`.
 */
export const lonePrimarySingle: Plan = (facts) => {
  const primary = settledPrimary(facts);
  if (!primary || (primary.goalState !== 'primary' && primary.goalState !== 'wait_primary')) return undefined;
  if (facts.nodes.some((n) => n.nodeId !== primary.nodeId && n.goalState !== 'dropped')) return undefined;
  return [assign(primary, 'single', `${describe(primary)} is the only node left in the group: single, writable, no replication`)];
};

/**
 * Rule `sync-standby-gone`: a `primary` has no quorum standby left in `secondary` (dropped,
 * in maintenance, replication quorum turned off) and number_sync_standbys is 0: it goes to
 * `wait_primary` so that writes do not wait for a standby that is not there.
 */
export const syncStandbyGone: Plan = (facts) => {
  const primary = writableNode(facts);
  if (!primary || primary.goalState !== 'primary' || facts.settings.numberSyncStandbys > 0) return undefined;
  if (quorumStandbys(facts, primary.nodeId).length > 0) return undefined;
  return [assign(primary, 'wait_primary', 'no standby with replication quorum is secondary: synchronous replication off')];
};

/**
 * Rule `maintenance-ready`: a standby waiting for maintenance is no longer part of the
 * primary's synchronous replication (the primary has settled on its new
 * `synchronous_standby_names`): it enters `maintenance`.
 */
export const maintenanceReady: Plan = (facts) => {
  const primary = settledPrimary(facts);
  const out = facts.nodes
    .filter((n) => n.goalState === 'wait_maintenance')
    .filter((n) => !primary || !listsNode(primary.synchronousStandbyNames, n.nodeId))
    .map((n) => assign(n, 'maintenance', `${describe(n)} is out of synchronous replication: maintenance`));
  return out.length > 0 ? out : undefined;
};

/**
 * Rule `demoted-rejoin`: a demoted old primary's keeper is back and a primary is settled:
 * it rewinds (pg_rewind, or a fresh base backup when rewinding fails) and catches up.
 */
export const demotedRejoin: Plan = (facts) => {
  const primary = settledPrimary(facts);
  if (!primary) return undefined;
  const out = facts.nodes
    .filter((n) => n.nodeId !== primary.nodeId && isCurrentState(n, 'demoted') && keeperIsAlive(facts, n))
    .map((n) => assign(n, 'catchingup', `${describe(n)} is back: it rewinds to follow ${describe(primary)} and catches up`));
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
        (isCurrentState(n, 'catchingup') || isCurrentState(n, 'join_secondary')) &&
        isStreaming(facts, n) &&
        n.postgresRunning &&
        n.reportedTimeline === primary.reportedTimeline &&
        walDifferenceWithin(facts, primary, n),
    )
    .map((n) =>
      assign(n, 'secondary', `${describe(n)} streams within ${facts.settings.catchupLagBytes} bytes of the primary (LSN ${formatLsn(n.reportedLsn)} of ${formatLsn(primary.reportedLsn)})`),
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
  return [assign(primary, 'primary', `${synced.map(describe).join(', ')} caught up: synchronous replication on`)];
};

/**
 * Every rule's plan, by its rule id (see the file's header), in no particular order (the
 * machine lists each phase's rules in priority order). The id is what the state machine names
 * the rule's guard and stamps on its assignments; events store it.
 */
export const PLANS = {
  'first-node-single': firstNodeSingle,
  'register-standby': registerStandby,
  'standby-start-catchingup': standbyStartCatchingup,
  'standby-failed': standbyFailed,
  'failover-start': failoverStart,
  'election-restart': electionRestart,
  'switchover-election': switchoverElection,
  'promote-candidate': promoteCandidate,
  'candidate-changed': candidateChanged,
  election,
  'fast-forward-done': fastForwardDone,
  'candidate-behind': candidateBehind,
  'promotion-done': promotionDone,
  'lone-primary-single': lonePrimarySingle,
  'sync-standby-gone': syncStandbyGone,
  'maintenance-ready': maintenanceReady,
  'demoted-rejoin': demotedRejoin,
  'standby-caught-up': standbyCaughtUp,
  'enable-sync': enableSync,
} as const satisfies Record<string, Plan>;

/** The id of one of the monitor's rules: a key of {@link PLANS}. */
export type RuleId = keyof typeof PLANS;
