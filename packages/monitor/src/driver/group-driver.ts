/**
 * Runs the group state machine against the store, following pg_auto_failover's
 * `NodeActive`: in one transaction, (1) lock the group, (2) re-read it, (3) decide,
 * (4) write the goals and their event rows, (5) commit, which notifies the keepers.
 */
import type { Kysely, Transaction } from 'kysely';
import type { Logger } from 'pino';
import { ConflictError, applyAssignments, decide, decideUntilStable, groupNote, type Assignment, type EvaluateEvent, type GroupFacts, type NodeReport, type OperatorEvent } from '@pgha/shared';
import type { Database } from '../store/db.js';
import {
  getFormation,
  getFormationAndNow,
  groupFacts,
  listNodes,
  lockGroup,
  groupKey,
  lockNodeGroup,
  lockNodesGroups,
  noSuchNode,
  recordReportAndReadGroup,
  recordReportsAndReadGroups,
  snapshotAll,
  storeNowMs,
  writeAssignments,
  type FormationRow,
  type NodeRow,
} from '../store/monitor-store.js';

/**
 * What a group evaluation did and read: its assignments, the formation, and the group's rows
 * with the new goals applied (what a read after commit would see).
 */
export interface GroupOutcome {
  assignments: Assignment[];
  formation: FormationRow;
  nodes: NodeRow[];
}

/** What a keeper's report did: the node as read, and its group after the decision. */
export interface ReportOutcome {
  node: NodeRow;
  /** Absent when the node's goal is `dropped` and its keeper reports `dropped` (nothing recorded). */
  group?: GroupOutcome;
}

/** A report waiting for its batch. */
interface QueuedReport {
  nodeId: number;
  report: NodeReport;
  resolve: (outcome: ReportOutcome) => void;
  reject: (err: unknown) => void;
}

/** Report transactions under way at once (see {@link GroupDriver.report}). */
const REPORT_BATCHES_IN_FLIGHT = 4;
/** Reports in one transaction at most. */
const REPORT_BATCH_MAX = 64;

/** How many groups {@link GroupDriver.evaluateAll} decides between two turns of the event loop. */
const YIELD_EVERY_GROUPS = 20;

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
    return (await this.evaluateGroupIn(trx, formationId, groupId, cause, before)).assignments;
  }

  /**
   * {@link evaluateIn}, also returning what the decision read: the formation and the group's
   * rows with the new goals applied (what a read after commit would see), so that an answer
   * about the group needs no second read.
   */
  async evaluateGroupIn(
    trx: Transaction<Database>,
    formationId: string,
    groupId: number,
    cause: EvaluateEvent['cause'],
    before?: () => Promise<void>,
  ): Promise<GroupOutcome> {
    await lockGroup(trx, formationId, groupId);
    if (before) await before();
    return this.decideLocked(trx, formationId, groupId, cause, await listNodes(trx, formationId, groupId));
  }

  private readonly reportQueue: QueuedReport[] = [];
  private reportBatches = 0;
  private reportPumpScheduled = false;

  /**
   * A keeper's report, in its own transaction or, when reports arrive faster than their
   * transactions end, in one transaction with the others that wait (as Postgres groups
   * commits): every report of a batch is recorded and its group decided on under the group's
   * lock exactly as {@link reportIn} does, in the same three round trips for the whole batch.
   * A batch takes at most one report per group (the next one waits for the next batch), so
   * each decision follows one report, as before; groups are locked in (formation, group)
   * order. With a thousand keepers a round trip to the store costs more than a decision, so
   * this is what lets one monitor answer them all within milliseconds.
   *
   * @throws NotFoundError when the node does not exist.
   */
  report(nodeId: number, report: NodeReport): Promise<ReportOutcome> {
    return new Promise<ReportOutcome>((resolve, reject) => {
      this.reportQueue.push({ nodeId, report, resolve, reject });
      this.scheduleReportBatches();
    });
  }

  private scheduleReportBatches(): void {
    if (this.reportPumpScheduled) return;
    this.reportPumpScheduled = true;
    // The reports that arrive in this turn of the event loop join the same batch.
    setImmediate(() => {
      this.reportPumpScheduled = false;
      while (this.reportBatches < REPORT_BATCHES_IN_FLIGHT && this.reportQueue.length > 0) {
        const batch = this.reportQueue.splice(0, REPORT_BATCH_MAX);
        this.reportBatches++;
        void this.runReportBatch(batch).finally(() => {
          this.reportBatches--;
          if (this.reportQueue.length > 0) this.scheduleReportBatches();
        });
      }
    });
  }

  /** One transaction for `batch`; a report that cannot join it waits for the next one. */
  private async runReportBatch(batch: QueuedReport[]): Promise<void> {
    const deferred: QueuedReport[] = [];
    let outcomes: Map<QueuedReport, ReportOutcome | Error>;
    try {
      outcomes = await this.db.transaction().execute((trx) => this.reportBatchIn(trx, batch, deferred));
    } catch (err) {
      if (batch.length === 1) {
        batch[0]!.reject(err);
        return;
      }
      // One report's failure must not fail the others: each again in its own transaction.
      await Promise.all(
        batch.map((q) => this.db.transaction().execute((trx) => this.reportIn(trx, q.nodeId, q.report)).then(q.resolve, q.reject)),
      );
      return;
    }
    for (const [q, outcome] of outcomes) {
      if (outcome instanceof Error) q.reject(outcome);
      else q.resolve(outcome);
    }
    if (deferred.length > 0) {
      this.reportQueue.unshift(...deferred);
      this.scheduleReportBatches();
    }
  }

  /** The work of {@link runReportBatch} inside `trx`; fills `deferred` with the reports left for later. */
  private async reportBatchIn(trx: Transaction<Database>, batch: readonly QueuedReport[], deferred: QueuedReport[]): Promise<Map<QueuedReport, ReportOutcome | Error>> {
    const outcomes = new Map<QueuedReport, ReportOutcome | Error>();
    const rows = new Map((await lockNodesGroups(trx, batch.map((q) => q.nodeId))).map((n) => [n.nodeId, n]));
    const groupsTaken = new Set<string>();
    const toRecord: { q: QueuedReport; node: NodeRow }[] = [];
    for (const q of batch) {
      const node = rows.get(q.nodeId);
      if (!node) {
        outcomes.set(q, noSuchNode(q.nodeId));
      } else if (node.goalState === 'dropped' && q.report.reportedState === 'dropped') {
        outcomes.set(q, { node });
      } else if (groupsTaken.has(groupKey(node.formationId, node.groupId))) {
        deferred.push(q);
      } else {
        groupsTaken.add(groupKey(node.formationId, node.groupId));
        toRecord.push({ q, node });
      }
    }
    if (toRecord.length === 0) return outcomes;
    const { groups, nowMs } = await recordReportsAndReadGroups(trx, toRecord.map(({ q }) => ({ nodeId: q.nodeId, report: q.report })));
    for (const { q, node } of toRecord) {
      const g = groups.get(groupKey(node.formationId, node.groupId));
      const group = g
        ? await this.decideLocked(trx, g.formationId, g.groupId, 'report', g.nodes, { formation: g.formation, nowMs })
        : await this.decideLocked(trx, node.formationId, node.groupId, 'report', []);
      outcomes.set(q, { node, group });
    }
    return outcomes;
  }

  /**
   * A keeper's report, inside `trx`: reads the node and locks its group, records the report
   * and re-reads the group under the lock, decides and writes the assignments (what
   * `getNode` then `evaluateGroupIn(…, 'report', () => record the report)` do), in three round
   * trips to the store with `begin` and `commit` instead of seven. When the node's goal is
   * `dropped` and its keeper reports `dropped`, nothing is recorded: the caller removes the
   * node.
   *
   * @throws NotFoundError when the node does not exist.
   */
  async reportIn(trx: Transaction<Database>, nodeId: number, report: NodeReport): Promise<ReportOutcome> {
    const node = await lockNodeGroup(trx, nodeId);
    if (node.goalState === 'dropped' && report.reportedState === 'dropped') return { node };
    const read = await recordReportAndReadGroup(trx, node, report);
    return { node, group: await this.decideLocked(trx, node.formationId, node.groupId, 'report', read.nodes, read) };
  }

  /**
   * Decides for a group whose lock `trx` holds and whose rows `nodes` were read under it (and
   * its formation with the store's clock, when read with them).
   */
  private async decideLocked(
    trx: Transaction<Database>,
    formationId: string,
    groupId: number,
    cause: EvaluateEvent['cause'],
    nodes: NodeRow[],
    read?: { formation: FormationRow; nowMs: number },
  ): Promise<GroupOutcome> {
    const { formation, nowMs } = read ?? (await getFormationAndNow(trx, formationId));
    if (nodes.length === 0) return { assignments: [], formation, nodes };
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
    const goals = new Map(assignments.map((a) => [a.nodeId, a.goalState]));
    return { assignments, formation, nodes: goals.size === 0 ? nodes : nodes.map((n) => (goals.has(n.nodeId) ? { ...n, goalState: goals.get(n.nodeId)! } : n)) };
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

  /**
   * Re-evaluates every group whose decision may have changed with time (the timer: keeper
   * silent, streaming timeout, election timeout). One unlocked read of every group decides in
   * memory which groups a locked evaluation would change, or would write a note for; only
   * those are evaluated, each in its own transaction under its lock ({@link evaluate}), where
   * the decision is taken again on fresh facts. A group the look finds nothing to do for is
   * one where the locked evaluation would do nothing either (same facts, same clock), so
   * thousands of quiet groups cost one read instead of a transaction each.
   *
   * @returns how many groups were evaluated under their lock.
   */
  async evaluateAll(cause: EvaluateEvent['cause']): Promise<number> {
    const { formations, nodes, nowMs } = await snapshotAll(this.db);
    const byFormation = new Map(formations.map((f) => [f.formationId, f]));
    const groups = new Map<string, { formationId: string; groupId: number; nodes: NodeRow[] }>();
    for (const n of nodes) {
      const key = `${n.formationId}\u0000${n.groupId}`;
      const g = groups.get(key) ?? { formationId: n.formationId, groupId: n.groupId, nodes: [] };
      g.nodes.push(n);
      groups.set(key, g);
    }
    let evaluated = 0;
    let looked = 0;
    for (const g of groups.values()) {
      // Deciding takes about 0.1 ms a group: let requests in between.
      if (++looked % YIELD_EVERY_GROUPS === 0) await new Promise((r) => setImmediate(r));
      const formation = byFormation.get(g.formationId);
      if (formation) {
        const facts = groupFacts(formation, g.groupId, g.nodes, nowMs);
        const assignments = decideUntilStable(facts, { type: 'evaluate', cause });
        if (assignments.length === 0 && !groupNote(applyAssignments(facts, assignments))) continue;
      }
      evaluated++;
      await this.evaluate(g.formationId, g.groupId, cause).catch((err: Error) => this.log.warn({ err: err.message, formation: g.formationId, group: g.groupId }, `${cause} evaluation failed`));
    }
    return evaluated;
  }

  /** Evaluates one group in its own transaction. */
  async evaluate(formationId: string, groupId: number, cause: EvaluateEvent['cause']): Promise<Assignment[]> {
    return this.db.transaction().execute((trx) => this.evaluateIn(trx, formationId, groupId, cause));
  }
}
