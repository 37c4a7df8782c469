/**
 * The failover election, pure. Source: pg_auto_failover's candidate selection
 * (`pgautofailover.get_most_advanced_standby`, `fast_forward`), with one rule made explicit:
 * never promote below a commit that synchronous replication acknowledged.
 */
import { formatLsn } from '../lsn.js';
import { parseSynchronousStandbyNames } from '../standby-names.js';
import { ELECTORATE_STATES } from '../states.js';
import type { GroupFacts, NodeFacts } from './facts.js';
import { keeperIsAlive } from './guards.js';

function describe(node: NodeFacts): string {
  return `node ${node.nodeId} "${node.name}"`;
}

/**
 * The synchronous set the old primary committed with: the quorum standbys the monitor counts,
 * plus any node named in the `synchronous_standby_names` the old primary last reported (it may
 * not have applied a change yet), and the smallest `n` of `ANY n` either says. `absent` are the
 * node ids that list names which are no longer in the group (dropped after the old primary's
 * last report): they may hold an acknowledged commit and will never report, so they count as
 * members that stay silent.
 */
export function synchronousSet(facts: GroupFacts, oldPrimary: NodeFacts | undefined): { members: NodeFacts[]; absent: number[]; n: number } {
  const reported = parseSynchronousStandbyNames(oldPrimary?.synchronousStandbyNames ?? '');
  const named = new Set(reported.names.map((name) => /^pgha_node_(\d+)$/.exec(name)?.[1]).filter((id) => id !== undefined).map(Number));
  const members = facts.nodes.filter(
    (n) => n.nodeId !== oldPrimary?.nodeId && ((n.replicationQuorum && ELECTORATE_STATES.has(n.goalState)) || named.has(n.nodeId)),
  );
  const absent = [...named].filter((id) => id !== oldPrimary?.nodeId && !facts.nodes.some((n) => n.nodeId === id));
  const k = members.length + absent.length;
  const computedN = Math.min(k, Math.max(1, facts.settings.numberSyncStandbys));
  const n = reported.count !== undefined ? Math.min(reported.count, computedN) : computedN;
  return { members, absent, n: Math.max(1, n) };
}

/** Standbys whose LSN is known now: their keeper reports. */
export function reportingStandbys(facts: GroupFacts, oldPrimary: NodeFacts | undefined): NodeFacts[] {
  return facts.nodes.filter((n) => n.nodeId !== oldPrimary?.nodeId && ELECTORATE_STATES.has(n.goalState) && keeperIsAlive(facts, n));
}

/** Node may win an election: candidate priority > 0, keeper alive, Postgres running. */
export function isEligible(facts: GroupFacts, node: NodeFacts): boolean {
  return node.candidatePriority > 0 && keeperIsAlive(facts, node) && node.postgresRunning;
}

/** What an election concludes. */
export type ElectionResult =
  | { winner: NodeFacts; mostAdvanced: NodeFacts; behind: boolean }
  | { why: string };

/**
 * Elects the node to promote after `oldPrimary` (undefined when it is gone).
 *
 * The acknowledged-commit rule: commits waited for n of the k members of the synchronous set
 * (a member dropped since the old primary's last report included: it never reports again),
 * so an acknowledged commit is on at least n of them. Once k − n + 1 members report, one of
 * them has it, and the most advanced reporting standby has it too. With fewer reporting, no
 * election: it could lose a commit.
 *
 * The winner is the eligible reporting standby with the highest candidate priority, ties by
 * the most advanced LSN, then the lowest node id. When it is behind the most advanced
 * reporting standby, `behind` is true: it must `fast_forward` first. No election either while
 * a node in maintenance is past the most advanced reporting standby (it may hold commits
 * acknowledged before it left synchronous replication).
 */
export function elect(facts: GroupFacts, oldPrimary: NodeFacts | undefined, among?: readonly NodeFacts[]): ElectionResult {
  const reporting = reportingStandbys(facts, oldPrimary);
  const { members, absent, n } = synchronousSet(facts, oldPrimary);
  const k = members.length + absent.length;
  const need = k - n + 1;
  const reportingMembers = members.filter((m) => reporting.some((r) => r.nodeId === m.nodeId));
  if (k === 0) {
    return { why: 'no promotion: no standby counts toward synchronous replication (replication quorum), so none is known to have every acknowledged commit' };
  }
  if (reportingMembers.length < need) {
    const silent = [
      ...members.filter((m) => !reporting.includes(m)).map(describe),
      ...absent.map((id) => `node ${id} (dropped, still in the old primary's synchronous_standby_names)`),
    ].join(', ');
    return { why: `no promotion: ${reportingMembers.length} of ${k} synchronous standbys reported and ${need} are needed to be sure to keep every acknowledged commit (silent: ${silent})` };
  }
  const pool = (among ?? reporting).filter((c) => reporting.includes(c) && isEligible(facts, c));
  const ranked = [...pool].sort((a, b) =>
    b.candidatePriority - a.candidatePriority || (a.reportedLsn !== b.reportedLsn ? (b.reportedLsn > a.reportedLsn ? 1 : -1) : a.nodeId - b.nodeId),
  );
  const winner = ranked[0];
  if (!winner) return { why: 'no promotion: no reporting standby is eligible (candidate priority > 0, keeper alive, Postgres running)' };
  const mostAdvanced = reporting.reduce((best, r) => (r.reportedLsn > best.reportedLsn ? r : best), winner);
  const ahead = aheadInMaintenance(facts, oldPrimary, mostAdvanced);
  if (ahead) {
    return {
      why: `no promotion: ${describe(ahead)} is in maintenance with WAL up to ${formatLsn(ahead.reportedLsn)}, past every reporting standby (${describe(mostAdvanced)} at ${formatLsn(mostAdvanced.reportedLsn)}), and may hold commits acknowledged before it left synchronous replication; end its maintenance (pgha maintenance disable --name ${ahead.name}) so that the election counts it`,
    };
  }
  return { winner, mostAdvanced, behind: mostAdvanced.reportedLsn > winner.reportedLsn };
}

/**
 * A node in `maintenance` (with replication quorum, on the old primary's timeline or later)
 * whose last reported LSN is past `mostAdvanced`'s, if any. A standby leaves the synchronous
 * set for maintenance once the primary no longer lists it, but the commits acknowledged by it
 * before that may be on it alone when the other standbys lagged; it no longer reports for the
 * election, so promoting any other node could lose them.
 */
function aheadInMaintenance(facts: GroupFacts, oldPrimary: NodeFacts | undefined, mostAdvanced: NodeFacts): NodeFacts | undefined {
  const timeline = oldPrimary?.reportedTimeline ?? mostAdvanced.reportedTimeline;
  return facts.nodes.find(
    (n) => n.goalState === 'maintenance' && n.replicationQuorum && n.reportedTimeline >= timeline && n.reportedLsn > mostAdvanced.reportedLsn,
  );
}

/** One line about an election's winner, for event reasons. */
export function describeWinner(result: { winner: NodeFacts; mostAdvanced: NodeFacts; behind: boolean }): string {
  const w = result.winner;
  const base = `${describe(w)} wins the election (candidate priority ${w.candidatePriority}, LSN ${formatLsn(w.reportedLsn)})`;
  return result.behind ? `${base}; it first fetches the WAL up to ${formatLsn(result.mostAdvanced.reportedLsn)} from ${describe(result.mostAdvanced)}` : base;
}
