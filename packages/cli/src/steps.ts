/**
 * The steps of an operator command as they happen: every goal state the monitor assigns (read
 * from its events, so none is missed however short) and every state a keeper reports (read
 * from the formation's state, polled), with the time since the command was sent.
 * Source: pg_auto_failover's `pg_autoctl perform switchover` prints the events as they come;
 * Patroni's `patronictl switchover` prints only the outcome.
 */
import type { EventRow, NodeStateRow } from '@pgha/shared/base';

/** One change of one node, as `pgha perform …` prints it and `--json` lists it (`steps`). */
export interface Step {
  /** Time from sending the command to seeing the change, in ms. */
  elapsed_ms: number;
  node_id: number;
  name: string;
  /**
   * `goal`: the monitor assigned a goal state; `reported`: the keeper reached a state; `left`:
   * the node left the formation; `restart`: a restart of its Postgres was asked for
   * (`to: 'requested'`) or its keeper reported it done (`to: 'done'`), `from` the request number.
   */
  kind: 'goal' | 'reported' | 'left' | 'restart';
  from: string;
  to: string;
  /** For a goal: the monitor's reason, from its event. */
  reason?: string;
}

interface Known {
  name: string;
  goal: string;
  reported: string;
  restartRequested: number;
  restartDone: number;
}

function known(r: NodeStateRow): Known {
  return { name: r.name, goal: r.goal_state, reported: r.reported_state, restartRequested: r.restart?.requested ?? 0, restartDone: r.restart?.done ?? 0 };
}

/**
 * Follows a formation from the rows and events seen before a command to the ones seen after,
 * and says what changed in between, in the order it happened.
 *
 * ### Examples
 * ```ts
 * const steps = new StepTracker(rowsBefore, lastEventIdBefore, performance.now());
 * steps.observe(rowsNow, eventsNow, performance.now()) // [{kind: 'goal', name: 'node1', from: 'primary', to: 'draining', …}]
 * ```
 */
export class StepTracker {
  private readonly known = new Map<number, Known>();
  private lastEventId: number;
  /** Every step seen so far. */
  readonly steps: Step[] = [];

  /**
   * @param before - the formation's rows before the command.
   * @param lastEventId - the newest event id before the command (0 when none).
   * @param startedMs - when the command was sent (`performance.now()`).
   */
  constructor(before: readonly NodeStateRow[], lastEventId: number, private readonly startedMs: number) {
    for (const r of before) this.known.set(r.node_id, known(r));
    this.lastEventId = lastEventId;
  }

  /**
   * The steps new since the last call: first the goal changes among `events` (newer than any
   * seen), then the reported states (and goals no event showed) in `rows`, then the nodes
   * gone from `rows`.
   */
  observe(rows: readonly NodeStateRow[], events: readonly EventRow[], nowMs: number): Step[] {
    const elapsed_ms = Math.max(0, Math.round(nowMs - this.startedMs));
    const fresh: Step[] = [];
    const add = (nodeId: number, kind: Step['kind'], from: string, to: string, reason?: string): void => {
      const k = this.known.get(nodeId);
      fresh.push({ elapsed_ms, node_id: nodeId, name: k?.name ?? String(nodeId), kind, from, to, ...(reason ? { reason } : {}) });
    };
    for (const e of [...events].sort((a, b) => a.event_id - b.event_id)) {
      if (e.event_id <= this.lastEventId) continue;
      this.lastEventId = e.event_id;
      if (e.old_goal_state === e.new_goal_state) continue;
      const k = this.known.get(e.node_id) ?? { name: e.node_name, goal: e.old_goal_state, reported: e.reported_state, restartRequested: 0, restartDone: 0 };
      this.known.set(e.node_id, k);
      add(e.node_id, 'goal', e.old_goal_state, e.new_goal_state, e.reason);
      k.goal = e.new_goal_state;
    }
    for (const r of rows) {
      const k = this.known.get(r.node_id);
      if (!k) {
        this.known.set(r.node_id, known(r));
        continue;
      }
      if (r.goal_state !== k.goal) {
        add(r.node_id, 'goal', k.goal, r.goal_state);
        k.goal = r.goal_state;
      }
      if (r.reported_state !== k.reported) {
        add(r.node_id, 'reported', k.reported, r.reported_state);
        k.reported = r.reported_state;
      }
      const restart = r.restart ?? { requested: 0, done: 0 };
      if (restart.requested > k.restartRequested) add(r.node_id, 'restart', String(restart.requested), 'requested');
      if (restart.done > k.restartDone) add(r.node_id, 'restart', String(restart.done), 'done');
      k.restartRequested = Math.max(k.restartRequested, restart.requested);
      k.restartDone = Math.max(k.restartDone, restart.done);
    }
    const present = new Set(rows.map((r) => r.node_id));
    for (const [nodeId, k] of this.known) {
      if (present.has(nodeId)) continue;
      add(nodeId, 'left', k.reported, 'gone');
      this.known.delete(nodeId);
    }
    this.steps.push(...fresh);
    return fresh;
  }
}

/** A step as one line: `   212 ms  node1 (node 1)  goal: primary → draining`. */
export function formatStep(s: Step): string {
  const what =
    s.kind === 'left' ? 'left the formation'
    : s.kind === 'restart' ? (s.to === 'requested' ? `restart ${s.from} of Postgres requested` : `restart ${s.from} done: Postgres restarted, replication streams again`)
    : `${s.kind}: ${s.from} → ${s.to}`;
  return `${String(s.elapsed_ms).padStart(7)} ms  ${`${s.name} (node ${s.node_id})`.padEnd(18)}  ${what}`;
}
