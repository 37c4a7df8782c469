/**
 * Runs the group state machine against the store, following pg_auto_failover's
 * `NodeActive`: in one transaction, (1) lock the group, (2) re-read it, (3) decide,
 * (4) write the goals and their event rows, (5) commit, which notifies the keepers.
 */
import type { Kysely, Transaction } from 'kysely';
import type { Logger } from 'pino';
import { decideUntilStable, type Assignment, type GroupEvent } from '@pgha/shared';
import type { Database } from '../store/db.js';
import { getFormation, groupFacts, listNodes, lockGroup, storeNowMs, writeAssignments } from '../store/monitor-store.js';

/** Decides for groups and persists the outcome. */
export class GroupDriver {
  constructor(private readonly db: Kysely<Database>, private readonly log: Logger) {}

  /**
   * Evaluates one group inside `trx` (which must be a transaction): locks it, optionally runs
   * `before` (e.g. record a report) under the lock, decides and writes the assignments.
   *
   * @returns the assignments made, in order.
   */
  async evaluateIn(trx: Transaction<Database>, formationId: string, groupId: number, cause: GroupEvent['cause'], before?: () => Promise<void>): Promise<Assignment[]> {
    await lockGroup(trx, formationId, groupId);
    if (before) await before();
    const formation = await getFormation(trx, formationId);
    const nodes = await listNodes(trx, formationId, groupId);
    if (nodes.length === 0) return [];
    const nowMs = await storeNowMs(trx);
    const assignments = decideUntilStable(groupFacts(formation, groupId, nodes, nowMs), { type: 'evaluate', cause });
    if (assignments.length > 0) {
      await writeAssignments(trx, formationId, groupId, nodes, assignments);
      for (const a of assignments) {
        const node = nodes.find((n) => n.nodeId === a.nodeId);
        this.log.info({ formation: formationId, group: groupId, nodeId: a.nodeId, rule: a.rule, goal: a.goalState }, `Setting goal state of node ${a.nodeId} "${node?.name}" to ${a.goalState}: ${a.reason}`);
      }
    }
    return assignments;
  }

  /** Evaluates one group in its own transaction. */
  async evaluate(formationId: string, groupId: number, cause: GroupEvent['cause']): Promise<Assignment[]> {
    return this.db.transaction().execute((trx) => this.evaluateIn(trx, formationId, groupId, cause));
  }
}
