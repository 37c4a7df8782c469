/**
 * Why a group that needs a new primary does not get one yet, in one sentence for
 * `pgha show state` and `pgha show events`. Pure, like the decisions it explains.
 */
import { formatDurationMs } from '../duration.js';
import { CANDIDATE_STATES } from '../states.js';
import { elect, isEligible } from './election.js';
import type { GroupFacts } from './facts.js';
import { isCurrentState, keeperIsAlive, primaryHasFailed, writableNode } from './guards.js';
import { outgoingPrimary } from './plans.js';

/** A remark about one node of the group. */
export interface GroupNote {
  nodeId: number;
  message: string;
}

/**
 * The reason a failed primary is not replaced, or an election is still waiting; undefined
 * when nothing is held up.
 */
export function groupNote(facts: GroupFacts): GroupNote | undefined {
  const primary = writableNode(facts);
  if (primary && primaryHasFailed(facts, primary)) {
    if (!isCurrentState(primary, 'primary')) {
      return {
        nodeId: primary.nodeId,
        message: `no failover: node ${primary.nodeId} "${primary.name}" failed while ${primary.reportedState} (synchronous replication off), so no standby is known to have every acknowledged commit`,
      };
    }
    const result = elect(facts, primary, facts.nodes.filter((n) => n.nodeId !== primary.nodeId && isCurrentState(n, 'secondary')));
    if ('why' in result) return { nodeId: primary.nodeId, message: result.why };
    return undefined;
  }
  const voters = facts.nodes.filter((n) => n.goalState === 'report_lsn');
  const waiting = voters.filter((v) => v.reportedState !== 'report_lsn' || !keeperIsAlive(facts, v));
  const old = outgoingPrimary(facts);
  if (voters.length > 0 && waiting.length > 0) {
    return {
      nodeId: waiting[0]!.nodeId,
      message: `election waits for ${waiting.map((w) => `node ${w.nodeId} "${w.name}"`).join(', ')} to report its LSN (at most ${formatDurationMs(facts.settings.electionTimeoutMs)})`,
    };
  }
  // No candidate (no election under way, or every voter reported): what the election says.
  if (!primary && old && !facts.nodes.some((n) => CANDIDATE_STATES.has(n.goalState))) {
    const result = elect(facts, old);
    if ('why' in result) return { nodeId: old.nodeId, message: result.why };
  }
  // A candidate chosen while enough of the synchronous set reported, which no longer does.
  const candidate = facts.nodes.find((n) => isCurrentState(n, 'prepare_promotion'));
  if (!primary && old && candidate && isEligible(facts, candidate)) {
    const result = elect(facts, old, [candidate]);
    if ('why' in result) return { nodeId: candidate.nodeId, message: result.why };
  }
  return undefined;
}
