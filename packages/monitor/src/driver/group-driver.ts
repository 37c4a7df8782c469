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
  lockRecordReportsAndReadGroups,
  noSuchNode,
  requireDurableCommit,
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
  /** When it was queued (`performance.now()`, ms). */
  queuedMs: number;
  resolve: (outcome: ReportOutcome) => void;
  reject: (err: unknown) => void;
}

/** Report transactions under way at once (see {@link GroupDriver.report}). */
const REPORT_BATCHES_IN_FLIGHT = 2;
/** Reports in one transaction at most. */
const REPORT_BATCH_MAX = 64;

/** How long a slow answer to a report counts in {@link GroupDriver.monitorLagMs} (ms). */
const LAG_WINDOW_MS = 10_000;

/**
 * A pause this long (ms) in the reports of all keepers together counts as the monitor's own
 * lag (see {@link GroupDriver.monitorLagMs}): with keepers reporting every 500 ms, no report
 * from any of them for 1 s means the monitor could not hear them.
 */
const ALL_SILENT_GAP_MS = 1_000;

/** The largest value recorded within the last `windowMs` (one slot per second). */
class RecentMax {
  private readonly slots = new Map<number, number>();

  constructor(private readonly windowMs: number) {}

  record(value: number): void {
    const second = Math.floor(performance.now() / 1000);
    this.slots.set(second, Math.max(this.slots.get(second) ?? 0, value));
    for (const s of this.slots.keys()) if (s <= second - this.windowMs / 1000) this.slots.delete(s);
  }

  max(): number {
    const oldest = Math.floor(performance.now() / 1000) - this.windowMs / 1000;
    let max = 0;
    for (const [s, v] of this.slots) if (s > oldest) max = Math.max(max, v);
    return max;
  }
}

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
  /**
   * The last note event of each group, as read back committed (see {@link recordNote}): a
   * group held up for the same reason is not looked up, nor evaluated by the timer, again.
   */
  private readonly lastNotes = new Map<string, string>();
  /** Recent time to answer a report (see {@link monitorLagMs}). */
  private readonly lag = new RecentMax(LAG_WINDOW_MS);
  /** When the last report arrived (`performance.now()` ms; at first, when the driver started). */
  private lastReportQueuedMs = performance.now();
  /** Reports in transactions under way. */
  private readonly inFlight = new Set<QueuedReport>();

  /**
   * How far behind the monitor has lately been in answering keepers' reports (ms): the longest
   * time a report took to be answered, or pause in all keepers' reports (the monitor cut off,
   * see {@link ALL_SILENT_GAP_MS}), within the last {@link LAG_WINDOW_MS}; or, if longer, the
   * age of the oldest report still waiting, or the silence of all keepers so far. Decisions
   * judge keeper silence with this much more time (`GroupFacts.monitorLagMs`): a keeper waits
   * for the answer to a report before it sends the next one, so the monitor's own backlog ages
   * every keeper's last report.
   */
  monitorLagMs(): number {
    const now = performance.now();
    let oldest = now;
    for (const q of this.inFlight) oldest = Math.min(oldest, q.queuedMs);
    if (this.reportQueue[0]) oldest = Math.min(oldest, this.reportQueue[0].queuedMs);
    // No keeper at all has reported for a while (the monitor is cut off): the silence so far.
    const allSilent = now - this.lastReportQueuedMs > ALL_SILENT_GAP_MS ? now - this.lastReportQueuedMs : 0;
    return Math.round(Math.max(this.lag.max(), now - oldest, allSilent));
  }
  private reportBatches = 0;
  private reportPumpScheduled = false;

  /**
   * A keeper's report, recorded and decided on in a transaction it shares with the other
   * reports that wait (as Postgres groups commits): while {@link REPORT_BATCHES_IN_FLIGHT}
   * transactions are under way, the reports that arrive queue and then go together. One
   * transaction records every report of its batch under the locks of their groups, reads the
   * groups (one round trip, see `lockRecordReportsAndReadGroups`), decides once per group on
   * what it read, writes the assignments, and commits. A group whose nodes reported together
   * is decided once on all their reports, as the timer decides on whatever the facts are.
   *
   * A report whose group's decision changed no goal is answered as soon as the decision is
   * taken, while its transaction commits: its answer holds only goals committed before (read
   * under the group's lock), so it serves nothing unwritten; if the commit then fails, the
   * report is lost and the keeper's next one (every `keeperReportIntervalMs`) takes its place.
   * A report whose decision changed a goal is answered after the commit, as every decision
   * is written before it is served; so is a report carrying a self-fence (`NodeReport.selfFence`),
   * durably committed, since its keeper stops sending the fence once answered. With a thousand keepers a round trip to the store costs
   * more than a decision, so this is what lets one monitor answer them all within milliseconds.
   *
   * @throws NotFoundError when the node does not exist.
   */
  report(nodeId: number, report: NodeReport): Promise<ReportOutcome> {
    return new Promise<ReportOutcome>((resolve, reject) => {
      const queuedMs = performance.now();
      // No keeper at all reported for a while: the monitor itself was cut off (or stopped).
      // Every keeper's last report is that much older through no fault of its own: count the
      // gap as lag, so that the first reports after it are not taken for the others' silence.
      if (queuedMs - this.lastReportQueuedMs > ALL_SILENT_GAP_MS) this.lag.record(queuedMs - this.lastReportQueuedMs);
      this.lastReportQueuedMs = queuedMs;
      const done = () => this.lag.record(performance.now() - queuedMs);
      this.reportQueue.push({
        nodeId,
        report,
        queuedMs,
        resolve: (outcome) => {
          done();
          resolve(outcome);
        },
        reject: (err) => {
          done();
          reject(err);
        },
      });
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

  /** One transaction for `batch`; when it fails, each report not answered yet again in its own. */
  private async runReportBatch(batch: QueuedReport[]): Promise<void> {
    for (const q of batch) this.inFlight.add(q);
    try {
      await this.runReportBatchIn(batch);
    } finally {
      for (const q of batch) this.inFlight.delete(q);
    }
  }

  private async runReportBatchIn(batch: QueuedReport[]): Promise<void> {
    const answered = new Set<QueuedReport>();
    let outcomes: Map<QueuedReport, ReportOutcome | Error>;
    try {
      outcomes = await this.db.transaction().execute(async (trx) => {
        const result = await this.reportBatchIn(trx, batch);
        for (const [q, outcome] of result) {
          // A self-fence is answered after the commit: its keeper forgets it once answered.
          if (outcome instanceof Error || !outcome.group || outcome.group.assignments.length > 0 || q.report.selfFence) continue;
          q.resolve(outcome);
          answered.add(q);
        }
        return result;
      });
    } catch (err) {
      const left = batch.filter((q) => !answered.has(q));
      if (batch.length === 1) {
        for (const q of left) q.reject(err);
        return;
      }
      // One report's failure must not fail the others.
      await Promise.all(left.map((q) => this.runReportBatchIn([q])));
      return;
    }
    for (const [q, outcome] of outcomes) {
      if (answered.has(q)) continue;
      if (outcome instanceof Error) q.reject(outcome);
      else q.resolve(outcome);
    }
  }

  /** The work of {@link runReportBatch} inside `trx`: each report's outcome, or its error. */
  private async reportBatchIn(trx: Transaction<Database>, batch: readonly QueuedReport[]): Promise<Map<QueuedReport, ReportOutcome | Error>> {
    // A keeper whose reports overlap (a heartbeat during a transition): its last one counts.
    const last = new Map(batch.map((q) => [q.nodeId, q]));
    const read = await lockRecordReportsAndReadGroups(trx, [...last.values()].map((q) => ({ nodeId: q.nodeId, report: q.report })));
    // A self-fence's event must outlive a crash of the monitor's Postgres: its keeper stops sending it once answered.
    if ([...last.values()].some((q) => q.report.selfFence)) await requireDurableCommit(trx);
    const decided = new Map<string, GroupOutcome>();
    for (const [key, g] of read.groups) {
      decided.set(key, await this.decideLocked(trx, g.formationId, g.groupId, 'report', g.nodes, { formation: g.formation, nowMs: read.nowMs }));
    }
    const outcomes = new Map<QueuedReport, ReportOutcome | Error>();
    for (const q of batch) {
      const node = read.inputs.get(q.nodeId);
      if (!node) {
        outcomes.set(q, noSuchNode(q.nodeId));
        continue;
      }
      const group = decided.get(groupKey(node.formationId, node.groupId));
      // Not recorded: its goal is `dropped` and its keeper reports `dropped`.
      outcomes.set(q, group && !(node.goalState === 'dropped' && q.report.reportedState === 'dropped') ? { node, group } : { node });
    }
    return outcomes;
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
    const facts = groupFacts(formation, groupId, nodes, nowMs, this.monitorLagMs());
    const assignments = decideUntilStable(facts, { type: 'evaluate', cause });
    await this.recordNote(trx, formationId, groupId, nodes, applyAssignments(facts, assignments));
    if (assignments.length > 0) {
      await requireDurableCommit(trx);
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
    const key = groupKey(formationId, groupId);
    if (this.lastNotes.get(key) === note.message) return;
    const last = await trx.selectFrom('events').select(['reason']).where('formationId', '=', formationId).where('groupId', '=', groupId).where('rule', '=', 'group-note').orderBy('eventId', 'desc').limit(1).executeTakeFirst();
    if (last?.reason === note.message) {
      this.lastNotes.set(key, note.message);
      return;
    }
    const node = nodes.find((n) => n.nodeId === note.nodeId);
    if (!node) return;
    await requireDurableCommit(trx);
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
      const decision = decide(groupFacts(formation, groupId, nodes, nowMs, this.monitorLagMs()), event);
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
    const lagMs = this.monitorLagMs();
    const byFormation = new Map(formations.map((f) => [f.formationId, f]));
    const groups = new Map<string, { formationId: string; groupId: number; nodes: NodeRow[] }>();
    for (const n of nodes) {
      const key = groupKey(n.formationId, n.groupId);
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
        const facts = groupFacts(formation, g.groupId, g.nodes, nowMs, lagMs);
        const assignments = decideUntilStable(facts, { type: 'evaluate', cause });
        const note = assignments.length === 0 ? groupNote(applyAssignments(facts, assignments)) : undefined;
        if (assignments.length === 0 && (!note || this.lastNotes.get(groupKey(g.formationId, g.groupId)) === note.message)) continue;
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
