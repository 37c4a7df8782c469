/**
 * Runs the group state machine against the store, following pg_auto_failover's
 * `NodeActive`: in one transaction, (1) lock the group, (2) re-read it, (3) decide,
 * (4) write the goals and their events, (5) commit, which notifies the keepers.
 * Reports reach it batched (`report-batcher.ts`); every decision judges keeper silence with
 * the monitor's own lag (`monitor-lag.ts`).
 */
import type { Logger } from 'pino';
import { ConflictError, applyAssignments, decide, decideUntilStable, groupNote, reportsWanted, type Assignment, type EvaluateEvent, type GroupFacts, type OperatorEvent } from '@pgha/shared';
import { GROUP_NOTE_RULE, nodeEvent } from '../store/event-records.js';
import { formationSettings, groupFacts } from '../store/group-facts.js';
import { groupKey, type FormationRecord, type GroupRead, type NodeRecord } from '../store/records.js';
import type { MonitorStore, StoreTransaction } from '../store/store-port.js';
import { MonitorLag } from './monitor-lag.js';
import { isSteadyGroup } from './steady-group.js';

/**
 * What a group evaluation did and read: its assignments, the formation, and the group's nodes
 * with the new goals applied (what a read after commit would see).
 */
export interface GroupOutcome {
  assignments: Assignment[];
  formation: FormationRecord;
  nodes: NodeRecord[];
}

/** How many groups {@link GroupDriver.evaluateAll} decides between two turns of the event loop. */
const YIELD_EVERY_GROUPS = 20;

/**
 * Every how many timer ticks {@link GroupDriver.evaluateAll} decides steady groups too (every
 * 5 s at the default 500 ms interval). On the other ticks a steady group is not decided: its
 * keepers were all heard within `freshWithinMs`, so no timeout is due, and every fact a
 * decision reads but the time and the LSN changed last in a report or command that was decided
 * on at once (`steady-group.ts`). The sweep is the net under that: a group whose last decision
 * was lost (a transaction that failed) is decided again within it.
 */
export const STEADY_SWEEP_EVERY_TICKS = 10;

/** Decides for groups and persists the outcome. */
export class GroupDriver {
  /**
   * The last note event of each group, as read back committed (see {@link recordNote}): a
   * group held up for the same reason is not looked up, nor evaluated by the timer, again.
   */
  private readonly lastNotes = new Map<string, string>();

  /**
   * Whether this monitor decides for a formation on its own initiative (the timer): always
   * with its own Postgres store; only for the formations it leads when monitors share etcd
   * (`ha/leadership.ts`). Reports and commands reach only the leader (others forward them).
   */
  decidesFor: (formationId: string) => boolean = () => true;

  /** Timer ticks so far ({@link STEADY_SWEEP_EVERY_TICKS}). */
  private ticks = 0;

  /**
   * When a node died loudly as this monitor saw it (`LoudDeathWatch.diedLoudlyMs`), a fact every
   * decision's facts carry (`NodeFacts.diedLoudlyMs`); null for none.
   */
  diedLoudlyMs: (nodeId: number) => number | null = () => null;

  /**
   * Asks keepers to report at once (`ReportNudges.ask`): after each decision, the nodes whose
   * report the group waits for (`reportsWanted`: a switchover's candidate whose LSN is all its
   * promotion needs), so that it comes now and not at the end of their report interval.
   */
  askReports: (nodeIds: readonly number[]) => void = () => undefined;

  /**
   * Whether a group's decision may be skipped when nothing but the time and the LSN changed
   * (`steady-group.ts`): it is steady, and none of its nodes died loudly (a fact this monitor
   * keeps in memory, not in the store).
   */
  isSteady(nodes: readonly NodeRecord[], nowMs: number, formation: FormationRecord): boolean {
    return isSteadyGroup(nodes, nowMs, formationSettings(formation)) && !nodes.some((n) => this.diedLoudlyMs(n.nodeId) !== null);
  }

  /** @param lag - the monitor's lag in answering reports, which every decision's facts carry. */
  constructor(
    private readonly store: MonitorStore,
    private readonly log: Logger,
    readonly lag: MonitorLag = new MonitorLag(),
  ) {}

  /**
   * Evaluates one group inside `tx`: locks it, optionally runs `before` (e.g. register a node)
   * under the lock, re-reads it, decides and writes the assignments.
   *
   * @returns the assignments made, in order.
   */
  async evaluateIn(tx: StoreTransaction, formationId: string, groupId: number, cause: EvaluateEvent['cause'], before?: () => Promise<void>): Promise<Assignment[]> {
    return (await this.evaluateGroupIn(tx, formationId, groupId, cause, before)).assignments;
  }

  /**
   * {@link evaluateIn}, also returning what the decision read: the formation and the group's
   * nodes with the new goals applied (what a read after commit would see), so that an answer
   * about the group needs no second read.
   */
  async evaluateGroupIn(tx: StoreTransaction, formationId: string, groupId: number, cause: EvaluateEvent['cause'], before?: () => Promise<void>): Promise<GroupOutcome> {
    await tx.lockGroup(formationId, groupId);
    if (before) await before();
    const read = await tx.readGroup(formationId, groupId);
    return this.decideRead(tx, read, read.nowMs, cause);
  }

  /**
   * Decides for a group whose lock `tx` holds and which was read under it (`nowMs`: the store's
   * clock at the read), and writes the assignments with their events.
   */
  async decideRead(tx: StoreTransaction, group: GroupRead, nowMs: number, cause: EvaluateEvent['cause']): Promise<GroupOutcome> {
    const { formation, nodes } = group;
    if (nodes.length === 0) return { assignments: [], formation, nodes };
    const facts = groupFacts(formation, group.groupId, nodes, nowMs, this.lag.lagMs(), this.diedLoudlyMs);
    const assignments = decideUntilStable(facts, { type: 'evaluate', cause });
    const after = applyAssignments(facts, assignments);
    await this.recordNote(tx, group, after);
    const wanted = reportsWanted(after);
    if (wanted.length > 0) this.askReports(wanted);
    let revisions: ReadonlyMap<number, string> = new Map();
    if (assignments.length > 0) {
      revisions = await tx.goals.assign(group, nodes, assignments);
      for (const a of assignments) {
        const node = nodes.find((n) => n.nodeId === a.nodeId);
        this.log.info({ formation: group.formationId, group: group.groupId, nodeId: a.nodeId, rule: a.rule, goal: a.goalState }, `Setting goal state of node ${a.nodeId} "${node?.name}" to ${a.goalState}: ${a.reason}`);
      }
    }
    const goals = new Map(assignments.map((a) => [a.nodeId, a.goalState]));
    return { assignments, formation, nodes: goals.size === 0 ? nodes : nodes.map((n) => (goals.has(n.nodeId) ? { ...n, goalState: goals.get(n.nodeId)!, goalRevision: revisions.get(n.nodeId) ?? n.goalRevision } : n)) };
  }

  /**
   * Writes an event when the group is held up for a new reason (no safe candidate, an election
   * waiting), so that `pgha show events` says why nothing happens.
   */
  private async recordNote(tx: StoreTransaction, group: GroupRead, facts: GroupFacts): Promise<void> {
    const note = groupNote(facts);
    if (!note) return;
    const key = groupKey(group.formationId, group.groupId);
    if (this.lastNotes.get(key) === note.message) return;
    const last = await tx.stream.lastOfRule(group.formationId, group.groupId, GROUP_NOTE_RULE);
    if (last?.reason === note.message) {
      this.lastNotes.set(key, note.message);
      return;
    }
    const node = group.nodes.find((n) => n.nodeId === note.nodeId);
    if (!node) return;
    await tx.events.append([nodeEvent(node, GROUP_NOTE_RULE, note.message)]);
    this.log.warn({ formation: group.formationId, group: group.groupId, nodeId: node.nodeId }, note.message);
  }

  /**
   * Carries out an operator command on a group, in one transaction: lock, re-read, decide the
   * command, write its assignments, then let the rules that follow from them run.
   *
   * @param before - runs in the transaction after the command is accepted, before its goals are written.
   * @returns the assignments, and a note when the command needed no change.
   * @throws ConflictError with the reason when the command cannot be done now (nothing is written).
   */
  async command(formationId: string, groupId: number, event: OperatorEvent, before?: (tx: StoreTransaction) => Promise<void>): Promise<{ assignments: Assignment[]; note?: string }> {
    return this.store.transaction(async (tx) => {
      await tx.lockGroup(formationId, groupId);
      const read = await tx.readGroup(formationId, groupId);
      const decision = decide(groupFacts(read.formation, groupId, read.nodes, read.nowMs, this.lag.lagMs(), this.diedLoudlyMs), event);
      if (decision.refusal) throw new ConflictError(decision.refusal);
      if (before) await before(tx);
      await tx.goals.assign(read, read.nodes, decision.assignments);
      for (const a of decision.assignments) this.log.info({ formation: formationId, group: groupId, nodeId: a.nodeId, rule: a.rule, goal: a.goalState }, `Setting goal state of node ${a.nodeId} to ${a.goalState}: ${a.reason}`);
      const followUps = await this.evaluateIn(tx, formationId, groupId, 'settings');
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
   * thousands of quiet groups cost one read instead of a transaction each. A steady group
   * (`steady-group.ts`) is not even looked at, but on every {@link STEADY_SWEEP_EVERY_TICKS}-th
   * call.
   *
   * @returns how many groups were evaluated under their lock.
   */
  async evaluateAll(cause: EvaluateEvent['cause']): Promise<number> {
    const sweep = this.ticks++ % STEADY_SWEEP_EVERY_TICKS === 0;
    const { formations, nodes, nowMs } = await this.store.snapshot(this.decidesFor);
    const lagMs = this.lag.lagMs();
    const byFormation = new Map(formations.map((f) => [f.formationId, f]));
    const groups = new Map<string, { formationId: string; groupId: number; nodes: NodeRecord[] }>();
    for (const n of nodes) {
      const key = groupKey(n.formationId, n.groupId);
      const g = groups.get(key) ?? { formationId: n.formationId, groupId: n.groupId, nodes: [] };
      g.nodes.push(n);
      groups.set(key, g);
    }
    let evaluated = 0;
    let looked = 0;
    for (const g of groups.values()) {
      if (!this.decidesFor(g.formationId)) continue;
      // Deciding takes about 0.1 ms a group: let requests in between.
      if (++looked % YIELD_EVERY_GROUPS === 0) await new Promise((r) => setImmediate(r));
      const formation = byFormation.get(g.formationId);
      if (formation && !sweep && this.isSteady(g.nodes, nowMs, formation)) continue;
      if (formation) {
        const facts = groupFacts(formation, g.groupId, g.nodes, nowMs, lagMs, this.diedLoudlyMs);
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
    return this.store.transaction((tx) => this.evaluateIn(tx, formationId, groupId, cause));
  }
}
