/**
 * Runs the group state machine against the store, following pg_auto_failover's
 * `NodeActive`: in one transaction, (1) lock the group, (2) re-read it, (3) decide,
 * (4) write the goals and their event rows, (5) commit, which notifies the keepers.
 */
import type { Kysely, Transaction } from 'kysely';
import type { Logger } from 'pino';
import { ConflictError, applyAssignments, decide, decideUntilStable, groupNote, type Assignment, type EvaluateEvent, type GroupFacts, type OperatorEvent } from '@pgha/shared';
import type { Database } from '../store/db.js';
import { getFormation, groupFacts, listNodes, lockGroup, storeNowMs, writeAssignments, type NodeRow } from '../store/monitor-store.js';

/** Decides for groups and persists the outcome. */
export class GroupDriver {
  constructor(private readonly db: Kysely<Database>, private readonly log: Logger) {}

  /**
   * Evaluates one group inside `trx` (which must be a transaction): locks it, optionally runs
   * `before` (e.g. record a report) under the lock, decides and writes the assignments.
   *
   * @returns the assignments made, in order.
   */
  async evaluateIn(trx: Transaction<Database>, formationId: string, groupId: number, cause: EvaluateEvent['cause'], before?: () => Promise<void>): Promise<Assignment[]> {
    await lockGroup(trx, formationId, groupId);
    if (before) await before();
    const formation = await getFormation(trx, formationId);
    const nodes = await listNodes(trx, formationId, groupId);
    if (nodes.length === 0) return [];
    const nowMs = await storeNowMs(trx);
    const facts = groupFacts(formation, groupId, nodes, nowMs);
    const assignments = decideUntilStable(facts, { type: 'evaluate', cause });
    await this.recordNote(trx, formationId, groupId, nodes, applyAssignments(facts, assignments));
    if (assignments.length > 0) {
      await writeAssignments(trx, formationId, groupId, nodes, assignments);
      for (const a of assignments) {
        const node = nodes.find((n) => n.nodeId === a.nodeId);
        this.log.info({ formation: formationId, group: groupId, nodeId: a.nodeId, rule: a.rule, goal: a.goalState }, `Setting goal state of node ${a.nodeId} "${node?.name}" to ${a.goalState}: ${a.reason}`);
      }
    }
    return assignments;
  }

  /**
   * Writes an event when the group is held up for a new reason (no safe candidate, an election
   * waiting), so that `pgha show events` says why nothing happens.
   */
  private async recordNote(trx: Transaction<Database>, formationId: string, groupId: number, nodes: readonly NodeRow[], facts: GroupFacts): Promise<void> {
    const note = groupNote(facts);
    if (!note) return;
    const last = await trx.selectFrom('events').select(['reason']).where('formationId', '=', formationId).where('groupId', '=', groupId).where('rule', '=', 'group-note').orderBy('eventId', 'desc').limit(1).executeTakeFirst();
    if (last?.reason === note.message) return;
    const node = nodes.find((n) => n.nodeId === note.nodeId);
    if (!node) return;
    await trx.insertInto('events').values({
      formationId, groupId, nodeId: node.nodeId, nodeName: node.name, reportedState: node.reportedState,
      oldGoalState: node.goalState, newGoalState: node.goalState, reportedLsn: node.reportedLsn, rule: 'group-note', reason: note.message,
    }).execute();
    this.log.warn({ formation: formationId, group: groupId, nodeId: node.nodeId }, note.message);
  }

  /**
   * Carries out an operator command on a group, in one transaction: lock, re-read, decide the
   * command, write its assignments, then let the rules that follow from them run.
   *
   * @returns the assignments, and a note when the command needed no change.
   * @throws ConflictError with the reason when the command cannot be done now (nothing is written).
   */
  async command(formationId: string, groupId: number, event: OperatorEvent, before?: (trx: Transaction<Database>) => Promise<void>): Promise<{ assignments: Assignment[]; note?: string }> {
    return this.db.transaction().execute(async (trx) => {
      await lockGroup(trx, formationId, groupId);
      const formation = await getFormation(trx, formationId);
      const nodes = await listNodes(trx, formationId, groupId);
      const nowMs = await storeNowMs(trx);
      const decision = decide(groupFacts(formation, groupId, nodes, nowMs), event);
      if (decision.refusal) throw new ConflictError(decision.refusal);
      if (before) await before(trx);
      await writeAssignments(trx, formationId, groupId, nodes, decision.assignments);
      for (const a of decision.assignments) this.log.info({ formation: formationId, group: groupId, nodeId: a.nodeId, rule: a.rule, goal: a.goalState }, `Setting goal state of node ${a.nodeId} to ${a.goalState}: ${a.reason}`);
      const followUps = await this.evaluateIn(trx, formationId, groupId, 'settings');
      return { assignments: [...decision.assignments, ...followUps], ...(decision.note ? { note: decision.note } : {}) };
    });
  }

  /** Evaluates one group in its own transaction. */
  async evaluate(formationId: string, groupId: number, cause: EvaluateEvent['cause']): Promise<Assignment[]> {
    return this.db.transaction().execute((trx) => this.evaluateIn(trx, formationId, groupId, cause));
  }
}
