/**
 * A tiny simulated monitor + keepers for sequence tests. All time is `facts.nowMs`; nothing
 * sleeps. The monitor runs `decideUntilStable` and applies the goals; a keeper "reaches" its
 * goal by reporting `reportedState = goalState`; every report refreshes `lastReportMs`.
 */
import {
  applyAssignments,
  decideUntilStable,
  isPromotable,
  MONITOR_EDGES,
  writableGoalHolders,
  type Assignment,
  type GroupEvent,
  type GroupFacts,
  type NodeFacts,
  type NodeState,
} from '@pgha/shared';
import { nodeOf, withNode } from './fact-builders.js';

const EDGE_KEYS = new Set(MONITOR_EDGES.map(([from, to]) => `${from}->${to}`));

/** True when the monitor declares the edge `from → goal` (or `from === goal`). */
export function isMonitorEdge(from: NodeState, goal: NodeState): boolean {
  return from === goal || EDGE_KEYS.has(`${from}->${goal}`);
}

/**
 * Runs `decideUntilStable` on `facts` and checks the safety rules on the outcome. Returns a
 * list of human-readable violations (empty when all hold):
 * - never two writable goals when the input had at most one;
 * - `prepare_promotion`/`stop_replication` only to a node with candidate priority > 0 that is
 *   not behind another promotable secondary;
 * - every assignment's edge from the node's reported state and from its previous goal is in
 *   `MONITOR_EDGES`.
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
    if (a.goalState === 'prepare_promotion' || a.goalState === 'stop_replication') {
      if (node.candidatePriority === 0) {
        violations.push(`[${a.rule}] node ${a.nodeId} has candidate priority 0 but is assigned ${a.goalState}`);
      }
      const ahead = current.nodes.filter(
        (n) => n.nodeId !== node.nodeId && isPromotable(current, n) && n.reportedLsn > node.reportedLsn,
      );
      if (ahead.length > 0) {
        violations.push(
          `[${a.rule}] node ${a.nodeId} (LSN ${node.reportedLsn}) is assigned ${a.goalState} although promotable ` +
            ahead.map((n) => `node ${n.nodeId} (LSN ${n.reportedLsn})`).join(', ') + ' is more advanced',
        );
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
export function monitorDecides(facts: GroupFacts, cause: GroupEvent['cause'] = 'report'): MonitorStep {
  const assignments = decideUntilStable(facts, { type: 'evaluate', cause });
  return { assignments, facts: applyInOrder(facts, assignments) };
}

/**
 * Applies assignments one by one, so that a node assigned twice in one `decideUntilStable` run
 * ends at its last goal (as the monitor's store, writing them in order, leaves it).
 */
export function applyInOrder(facts: GroupFacts, assignments: readonly Assignment[]): GroupFacts {
  return assignments.reduce((f, a) => applyAssignments(f, [a]), facts);
}

/**
 * A group under test: facts plus the history of assignments. Methods return `this` so that a
 * sequence reads as a script; `decide()` records assignments and checks the safety rules.
 */
export class SimulatedGroup {
  readonly history: Assignment[] = [];
  readonly violations: string[] = [];
  lastAssignments: Assignment[] = [];

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
  decide(cause: GroupEvent['cause'] = 'report'): this {
    const step = monitorDecides(this.facts, cause);
    this.violations.push(...checkDecision(this.facts, step.assignments));
    this.lastAssignments = step.assignments;
    this.history.push(...step.assignments);
    this.facts = step.facts;
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

  /** The node's keeper reaches its goal state and reports it. */
  reach(nodeId: number, patch: Partial<NodeFacts> = {}): this {
    return this.report(nodeId, { reportedState: this.goal(nodeId), ...patch });
  }

  /** Goal assignments of the last decision, as `{nodeId: goal}`. */
  lastGoals(): Record<number, NodeState> {
    return Object.fromEntries(this.lastAssignments.map((a) => [a.nodeId, a.goalState]));
  }

  /** Rules that fired in the last decision, in order, without repeats. */
  lastRules(): string[] {
    return [...new Set(this.lastAssignments.map((a) => a.rule))];
  }
}
