/**
 * Keepers' reports, recorded and decided on in transactions they share (as Postgres groups
 * commits): while {@link REPORT_BATCHES_IN_FLIGHT} transactions are under way, the reports that
 * arrive queue and then go together. One transaction records every report of its batch under
 * the locks of their groups and reads the groups (`StoreTransaction.recordReports`, one round
 * trip on Postgres), writes the events the reports call for, decides once per group on what it
 * read (`GroupDriver.decideRead`), and commits. With a thousand keepers a round trip to the
 * store costs more than a decision, so this is what lets one monitor answer them all within
 * milliseconds (docs/monitor-capacity.md).
 *
 * A store that records heartbeats apart (`MonitorStore.recordHeartbeats`: reports that change
 * nothing but the time and the LSN; one round trip on Postgres instead of two) gets them first:
 * a heartbeat whose group is steady is answered from that, and only the other reports go to the
 * transaction (issue 17, idle cost: an idle formation's reports are all heartbeats).
 */
import type { NodeReport } from '@pgha/shared';
import { reportEvents } from '../store/event-records.js';
import { noSuchNode } from '../store/not-found.js';
import { groupKey, isHeartbeatReport, type NodeRecord, type ReportsRead } from '../store/records.js';
import type { MonitorStore, StoreTransaction } from '../store/store-port.js';
import type { GroupDriver, GroupOutcome } from './group-driver.js';
import type { MonitorLag } from './monitor-lag.js';

/** What a keeper's report did: the node as read, and its group after the decision. */
export interface ReportOutcome {
  node: NodeRecord;
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

/** Report transactions under way at once. */
const REPORT_BATCHES_IN_FLIGHT = 2;
/** Reports in one transaction at most. */
const REPORT_BATCH_MAX = 64;

/** Batches keepers' reports into shared transactions (see the module). */
export class ReportBatcher {
  private readonly queue: QueuedReport[] = [];
  private batches = 0;
  private pumpScheduled = false;

  constructor(
    private readonly store: MonitorStore,
    private readonly driver: GroupDriver,
    /** Measures each report from arrival to answer (the decisions' `monitorLagMs`). */
    private readonly lag: MonitorLag,
  ) {}

  /**
   * A keeper's report, recorded and decided on in a transaction shared with the other reports
   * that wait.
   *
   * A report whose group's decision changed no goal is answered as soon as the decision is
   * taken, while its transaction commits: its answer holds only goals committed before (read
   * under the group's lock), so it serves nothing unwritten; if the commit then fails, the
   * report is lost and the keeper's next one (every `keeperReportIntervalMs`) takes its place.
   * A report whose decision changed a goal is answered after the commit, as every decision is
   * written before it is served; so is a report carrying a self-fence (`NodeReport.selfFence`),
   * whose event is committed durably, since its keeper stops sending the fence once answered.
   *
   * @throws NotFoundError when the node does not exist.
   */
  report(nodeId: number, report: NodeReport): Promise<ReportOutcome> {
    return new Promise<ReportOutcome>((resolve, reject) => {
      const answered = this.lag.arrived();
      this.queue.push({
        nodeId,
        report,
        resolve: (outcome) => {
          answered();
          resolve(outcome);
        },
        reject: (err) => {
          answered();
          reject(err);
        },
      });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    // The reports that arrive in this turn of the event loop join the same batch.
    setImmediate(() => {
      this.pumpScheduled = false;
      while (this.batches < REPORT_BATCHES_IN_FLIGHT && this.queue.length > 0) {
        const batch = this.queue.splice(0, REPORT_BATCH_MAX);
        this.batches++;
        void this.run(batch).finally(() => {
          this.batches--;
          if (this.queue.length > 0) this.schedule();
        });
      }
    });
  }

  /** The reports of `batch`: heartbeats first, if the store takes them apart, then a transaction for the rest. */
  private async run(batch: QueuedReport[]): Promise<void> {
    const rest = await this.answerHeartbeats(batch);
    if (rest.length > 0) await this.runTransaction(rest);
  }

  /**
   * Records the reports of `batch` that are heartbeats (`MonitorStore.recordHeartbeats`) and
   * answers those whose group is steady, as the transaction would without deciding
   * (`steady-group.ts`); the reports left to the transaction: every other one, and every one of
   * a node that sent another in the batch that is not a heartbeat. A failure of the store here
   * leaves every report to the transaction.
   */
  private async answerHeartbeats(batch: QueuedReport[]): Promise<QueuedReport[]> {
    if (!this.store.recordHeartbeats) return batch;
    const last = new Map(batch.map((q) => [q.nodeId, q]));
    const candidates = [...last.values()].filter((q) => batch.every((o) => o.nodeId !== q.nodeId || isHeartbeatReport(o.report)));
    if (candidates.length === 0) return batch;
    let read: ReportsRead;
    try {
      read = await this.store.recordHeartbeats(candidates.map((q) => ({ nodeId: q.nodeId, report: q.report })));
    } catch {
      return batch;
    }
    const outcomes = new Map<number, ReportOutcome>();
    for (const q of candidates) {
      const input = read.inputs.get(q.nodeId);
      const g = input && read.groups.get(groupKey(input.node.formationId, input.node.groupId));
      if (!input || !g || input.factsChanged !== false || !this.driver.isSteady(g.nodes, read.nowMs, g.formation)) continue;
      outcomes.set(q.nodeId, { node: input.node, group: { assignments: [], formation: g.formation, nodes: g.nodes } });
    }
    const rest: QueuedReport[] = [];
    for (const q of batch) {
      const outcome = outcomes.get(q.nodeId);
      if (outcome) q.resolve(outcome);
      else rest.push(q);
    }
    return rest;
  }

  /** One transaction for `batch`; when it fails, each report not answered yet again in its own. */
  private async runTransaction(batch: QueuedReport[]): Promise<void> {
    const answered = new Set<QueuedReport>();
    let outcomes: Map<QueuedReport, ReportOutcome | Error>;
    try {
      outcomes = await this.store.transaction(async (tx) => {
        const result = await this.recordAndDecide(tx, batch);
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
      await Promise.all(left.map((q) => this.runTransaction([q])));
      return;
    }
    for (const [q, outcome] of outcomes) {
      if (answered.has(q)) continue;
      if (outcome instanceof Error) q.reject(outcome);
      else q.resolve(outcome);
    }
  }

  /** The work of {@link run} inside `tx`: each report's outcome, or its error. */
  private async recordAndDecide(tx: StoreTransaction, batch: readonly QueuedReport[]): Promise<Map<QueuedReport, ReportOutcome | Error>> {
    // A keeper whose reports overlap (a heartbeat during a transition): its last one counts.
    const last = new Map(batch.map((q) => [q.nodeId, q]));
    const read = await tx.recordReports([...last.values()].map((q) => ({ nodeId: q.nodeId, report: q.report })));
    await tx.events.append([...last.values()].flatMap((q) => {
      const recorded = read.inputs.get(q.nodeId);
      return recorded ? reportEvents(recorded, q.report) : [];
    }));
    // A group whose reports all changed nothing but the time and the LSN, and which is steady,
    // is not decided again here: the timer decides it (steady-group.ts).
    const changed = new Map<string, boolean>();
    for (const q of last.values()) {
      const input = read.inputs.get(q.nodeId);
      if (!input) continue;
      const key = groupKey(input.node.formationId, input.node.groupId);
      changed.set(key, (changed.get(key) ?? false) || input.factsChanged !== false);
    }
    const decided = new Map<string, GroupOutcome>();
    for (const [key, g] of read.groups) {
      const skip = changed.get(key) === false && this.driver.isSteady(g.nodes, read.nowMs, g.formation);
      decided.set(key, skip ? { assignments: [], formation: g.formation, nodes: g.nodes } : await this.driver.decideRead(tx, g, read.nowMs, 'report'));
    }
    const outcomes = new Map<QueuedReport, ReportOutcome | Error>();
    for (const q of batch) {
      const input = read.inputs.get(q.nodeId);
      if (!input) {
        outcomes.set(q, noSuchNode(q.nodeId));
        continue;
      }
      const group = decided.get(groupKey(input.node.formationId, input.node.groupId));
      // Not recorded: its goal is `dropped` and its keeper reports `dropped`.
      outcomes.set(q, group && !(input.node.goalState === 'dropped' && q.report.reportedState === 'dropped') ? { node: input.node, group } : { node: input.node });
    }
    return outcomes;
  }
}
