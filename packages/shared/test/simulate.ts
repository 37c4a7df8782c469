/**
 * A tiny simulated monitor + keepers for sequence tests. All time is `facts.nowMs`; nothing
 * sleeps. The monitor runs `decideUntilStable` (or, for an operator command, `decide` on the
 * command and then `decideUntilStable`, as the group driver does) and applies the goals,
 * stamping `goalChangedMs`; a keeper "reaches" its goal by reporting `reportedState =
 * goalState` together with what its Postgres then looks like (see {@link keeperEffects});
 * every report refreshes `lastReportMs`.
 */
import {
  CANDIDATE_STATES,
  PLANNED_STOP_STATES,
  STANDBY_STATES,
  WRITABLE_STATES,
  applyAssignments,
  decide,
  decideUntilStable,
  MONITOR_EDGES,
  synchronousStandbyNames,
  writableGoalHolders,
  type Assignment,
  type EvaluateEvent,
  type GroupFacts,
  type NodeFacts,
  type NodeState,
  type OperatorEvent,
} from '@pgha/shared';
import { nodeOf, withNode } from './fact-builders.js';

const EDGE_KEYS = new Set(MONITOR_EDGES.map(([from, to]) => `${from}->${to}`));

/** True when the monitor declares the edge `from → goal` (or `from === goal`). */
export function isMonitorEdge(from: NodeState, goal: NodeState): boolean {
  return from === goal || EDGE_KEYS.has(`${from}->${goal}`);
}

/** Goals of a node whose Postgres may hold WAL of the old primary (a standby, or one leaving for maintenance). */
const HOLDS_WAL_GOALS: ReadonlySet<NodeState> = new Set([...STANDBY_STATES, 'wait_maintenance']);

/** Goals in which the keeper stops Postgres. */
const STOPPED_GOALS: ReadonlySet<NodeState> = new Set(['draining', 'prepare_maintenance', 'demote_timeout', 'demoted', 'dropped']);

function keeperAlive(facts: GroupFacts, node: NodeFacts): boolean {
  return node.lastReportMs !== null && facts.nowMs - node.lastReportMs <= facts.settings.nodeUnhealthyTimeoutMs;
}

/**
 * Runs `decideUntilStable` on `facts` and checks the safety rules on the outcome. Returns a
 * list of human-readable violations (empty when all hold):
 * - never two writable goals when the input had at most one;
 * - `fast_forward`/`prepare_promotion`/`stop_replication` only to a node with candidate
 *   priority > 0;
 * - `stop_replication` (the promotion itself) only to a node at or past the LSN of every other
 *   node whose keeper reports and that may hold the old primary's WAL (goal a standby state or
 *   `wait_maintenance`): never below a more advanced standby;
 * - rule `election` picks, among the standbys that answered (`report_lsn` reached, keeper
 *   alive, Postgres running, candidate priority > 0), the highest candidate priority, then the
 *   most advanced LSN;
 * - every assignment's edge from the node's reported state and from its previous goal is in
 *   `MONITOR_EDGES`;
 * - `single` only while every other node of the group is `init` (the first node) or `dropped`
 *   (the node left alone): never while another node could stream from it or be promoted.
 */
export function checkDecision(facts: GroupFacts, assignments: readonly Assignment[]): string[] {
  const violations: string[] = [];
  const before = writableGoalHolders(facts).length;
  let current = facts;
  for (const a of assignments) {
    const node = nodeOf(current, a.nodeId);
    if (!isMonitorEdge(node.reportedState, a.goalState)) {
      violations.push(`[${a.rule}] node ${a.nodeId}: reported ${node.reportedState} -> goal ${a.goalState} is not in MONITOR_EDGES`);
    }
    if (!isMonitorEdge(node.goalState, a.goalState)) {
      violations.push(`[${a.rule}] node ${a.nodeId}: previous goal ${node.goalState} -> goal ${a.goalState} is not in MONITOR_EDGES`);
    }
    if (a.goalState === 'single') {
      const others = current.nodes.filter((n) => n.nodeId !== node.nodeId && n.goalState !== 'init' && n.goalState !== 'dropped');
      if (others.length > 0) {
        violations.push(`[${a.rule}] node ${a.nodeId} is assigned single while ${others.map((n) => `node ${n.nodeId} (goal ${n.goalState})`).join(', ')} is in the group`);
      }
    }
    if (CANDIDATE_STATES.has(a.goalState) && node.candidatePriority === 0) {
      violations.push(`[${a.rule}] node ${a.nodeId} has candidate priority 0 but is assigned ${a.goalState}`);
    }
    if (a.goalState === 'stop_replication') {
      const ahead = current.nodes.filter(
        (n) => n.nodeId !== node.nodeId && HOLDS_WAL_GOALS.has(n.goalState) && keeperAlive(current, n) && n.reportedLsn > node.reportedLsn,
      );
      if (ahead.length > 0) {
        violations.push(
          `[${a.rule}] node ${a.nodeId} (LSN ${node.reportedLsn}) is promoted although ` +
            ahead.map((n) => `node ${n.nodeId} (LSN ${n.reportedLsn})`).join(', ') + ' reports more WAL',
        );
      }
    }
    if (a.rule === 'election') {
      const better = current.nodes.filter(
        (n) =>
          n.nodeId !== node.nodeId && n.reportedState === 'report_lsn' && n.goalState === 'report_lsn' && keeperAlive(current, n) &&
          n.postgresRunning && n.candidatePriority > 0 &&
          (n.candidatePriority > node.candidatePriority || (n.candidatePriority === node.candidatePriority && n.reportedLsn > node.reportedLsn)),
      );
      if (better.length > 0) {
        violations.push(`[election] node ${a.nodeId} (priority ${node.candidatePriority}, LSN ${node.reportedLsn}) wins over ` +
          better.map((n) => `node ${n.nodeId} (priority ${n.candidatePriority}, LSN ${n.reportedLsn})`).join(', '));
      }
    }
    current = applyAssignments(current, [a]);
  }
  const after = writableGoalHolders(current);
  if (before <= 1 && after.length > 1) {
    violations.push(`two writable goals: nodes ${after.join(', ')} (${after.map((id) => nodeOf(current, id).goalState).join(', ')})`);
  }
  return violations;
}

/** One monitor decision: the assignments made and the facts with their goals applied. */
export interface MonitorStep {
  assignments: Assignment[];
  facts: GroupFacts;
}

/** The monitor decides (until stable) and applies the goals. */
export function monitorDecides(facts: GroupFacts, cause: EvaluateEvent['cause'] = 'report'): MonitorStep {
  const assignments = decideUntilStable(facts, { type: 'evaluate', cause });
  return { assignments, facts: applyInOrder(facts, assignments) };
}

/**
 * Applies assignments one by one, so that a node assigned twice in one `decideUntilStable` run
 * ends at its last goal (as the monitor's store, writing them in order, leaves it). A node
 * whose goal changes gets `goalChangedMs = facts.nowMs`, as the store stamps `goal_changed_at`.
 */
export function applyInOrder(facts: GroupFacts, assignments: readonly Assignment[]): GroupFacts {
  const applied = assignments.reduce((f, a) => applyAssignments(f, [a]), facts);
  return {
    ...applied,
    nodes: applied.nodes.map((n, i) => (n.goalState !== facts.nodes[i]?.goalState ? { ...n, goalChangedMs: facts.nowMs } : n)),
  };
}

/**
 * What a keeper's Postgres looks like once it has reached `goal` (what its report then says),
 * given the other nodes' last reports:
 * - `draining`, `prepare_maintenance`, `demote_timeout`, `demoted`: Postgres stopped, not streaming;
 *   a planned stop (`draining`, `prepare_maintenance`) of a running primary also reports its
 *   shutdown checkpoint, at its last reported LSN;
 * - `fast_forward`: it fetched the WAL of the most advanced other standby that runs (its upstream);
 * - `join_secondary`, `catchingup`: it streams from the new primary once that one is settled
 *   (reported its writable goal), at its LSN and timeline; until then it keeps its LSN;
 * - `report_lsn`, `prepare_promotion`: it keeps its LSN and no longer streams;
 * - `primary`, `apply_settings`: it runs with the `synchronous_standby_names` the monitor
 *   computes now (and reports it); `single`, `wait_primary`, `stop_replication` run without;
 *   `join_primary` keeps what runs;
 * - anything else: unchanged.
 */
export function keeperEffects(facts: GroupFacts, nodeId: number, goal: NodeState): Partial<NodeFacts> {
  const node = nodeOf(facts, nodeId);
  if (STOPPED_GOALS.has(goal)) {
    // A planned stop of a running primary is clean: its control file keeps where the shutdown checkpoint starts.
    const clean = PLANNED_STOP_STATES.has(goal) && node.postgresRunning && WRITABLE_STATES.has(node.reportedState);
    return { postgresRunning: false, upstreamStreaming: false, ...(clean ? { shutdownCheckpointLsn: node.reportedLsn } : {}) };
  }
  switch (goal) {
    case 'fast_forward': {
      const upstream = facts.nodes
        .filter((n) => n.nodeId !== nodeId && HOLDS_WAL_GOALS.has(n.goalState) && n.postgresRunning)
        .reduce<NodeFacts | undefined>((best, n) => (!best || n.reportedLsn > best.reportedLsn ? n : best), undefined);
      return upstream && upstream.reportedLsn > node.reportedLsn
        ? { postgresRunning: true, reportedLsn: upstream.reportedLsn, reportedTimeline: upstream.reportedTimeline, upstreamStreaming: false }
        : { postgresRunning: true, upstreamStreaming: false };
    }
    case 'join_secondary':
    case 'catchingup': {
      const primary = facts.nodes.find(
        (n) => n.nodeId !== nodeId && WRITABLE_STATES.has(n.goalState) && n.reportedState === n.goalState && n.postgresRunning,
      );
      return primary
        ? { postgresRunning: true, upstreamStreaming: true, reportedLsn: primary.reportedLsn, reportedTimeline: primary.reportedTimeline }
        : { upstreamStreaming: false };
    }
    case 'report_lsn':
    case 'prepare_promotion':
      return { upstreamStreaming: false };
    case 'primary':
    case 'apply_settings':
      return { postgresRunning: true, synchronousStandbyNames: synchronousStandbyNames(facts, nodeId) };
    case 'single':
    case 'wait_primary':
    case 'stop_replication':
      return { postgresRunning: true, synchronousStandbyNames: '' };
    default:
      return {};
  }
}

/**
 * A group under test: facts plus the history of assignments. Methods return `this` so that a
 * sequence reads as a script; `decide()` and `command()` record assignments and check the
 * safety rules.
 */
export class SimulatedGroup {
  readonly history: Assignment[] = [];
  readonly violations: string[] = [];
  lastAssignments: Assignment[] = [];
  /** The last command's refusal (undefined when it was carried out). */
  lastRefusal: string | undefined;
  /** The last command's note. */
  lastNote: string | undefined;

  constructor(public facts: GroupFacts) {}

  get nowMs(): number {
    return this.facts.nowMs;
  }

  node(nodeId: number): NodeFacts {
    return nodeOf(this.facts, nodeId);
  }

  goal(nodeId: number): NodeState {
    return this.node(nodeId).goalState;
  }

  /** The monitor decides and applies; the assignments are kept in `lastAssignments`. */
  decide(cause: EvaluateEvent['cause'] = 'report'): this {
    const step = monitorDecides(this.facts, cause);
    this.record(step.assignments);
    this.facts = step.facts;
    return this;
  }

  /**
   * An operator command, as the group driver runs it: `decide` on the command; when it is
   * carried out, its goals are applied and the rules that follow run (`decideUntilStable`).
   * `lastAssignments` holds both; `lastRefusal`/`lastNote` what the command answered.
   */
  command(event: OperatorEvent): this {
    const decision = decide(this.facts, event);
    this.lastRefusal = decision.refusal;
    this.lastNote = decision.note;
    if (decision.refusal) {
      this.lastAssignments = [];
      return this;
    }
    this.violations.push(...checkDecision(this.facts, decision.assignments));
    this.facts = applyInOrder(this.facts, decision.assignments);
    this.history.push(...decision.assignments);
    const step = monitorDecides(this.facts, 'settings');
    this.violations.push(...checkDecision(this.facts, step.assignments));
    this.history.push(...step.assignments);
    this.facts = step.facts;
    this.lastAssignments = [...decision.assignments, ...step.assignments];
    return this;
  }

  /** Simulated time passes. Nobody reports. */
  advance(ms: number): this {
    this.facts = { ...this.facts, nowMs: this.facts.nowMs + ms };
    return this;
  }

  /** Changes facts of one node directly (a probe result, a crash). */
  set(nodeId: number, patch: Partial<NodeFacts>): this {
    this.facts = withNode(this.facts, nodeId, patch);
    return this;
  }

  /** The node's keeper reports (its heartbeat), with what it sees in `patch`. */
  report(nodeId: number, patch: Partial<NodeFacts> = {}): this {
    const node = this.node(nodeId);
    const streaming = patch.upstreamStreaming ?? node.upstreamStreaming;
    return this.set(nodeId, {
      lastReportMs: this.nowMs,
      ...(streaming ? { lastStreamingMs: this.nowMs } : {}),
      ...patch,
    });
  }

  /**
   * The node's keeper reaches its goal state and reports it, with what its Postgres then looks
   * like ({@link keeperEffects}); `patch` overrides any of it.
   */
  reach(nodeId: number, patch: Partial<NodeFacts> = {}): this {
    const goal = this.goal(nodeId);
    return this.report(nodeId, { reportedState: goal, ...keeperEffects(this.facts, nodeId, goal), ...patch });
  }

  /** Goal assignments of the last decision, as `{nodeId: goal}`. */
  lastGoals(): Record<number, NodeState> {
    return Object.fromEntries(this.lastAssignments.map((a) => [a.nodeId, a.goalState]));
  }

  /** Rules that fired in the last decision, in order, without repeats. */
  lastRules(): string[] {
    return [...new Set(this.lastAssignments.map((a) => a.rule))];
  }

  /** `[nodeId, reportedState, goalState]` of every node. */
  states(): Array<[number, NodeState, NodeState]> {
    return this.facts.nodes.map((n) => [n.nodeId, n.reportedState, n.goalState]);
  }

  private record(assignments: Assignment[]): void {
    this.violations.push(...checkDecision(this.facts, assignments));
    this.lastAssignments = assignments;
    this.history.push(...assignments);
  }
}
