/** The Postgres adapter's {@link GoalRepository}: goals in `pgha.nodes`, their events by the one writer. */
import { sql } from 'kysely';
import type { Assignment } from '@pgha/shared';
import { assignmentEvents } from '../event-records.js';
import type { NodeRecord } from '../records.js';
import type { EventWriter, GoalRepository } from '../store-port.js';
import type { Db } from './db.js';

/** See {@link GoalRepository}. Keepers long-polling their goal wake on `pgha_goal` (`GoalNotifier`). */
export class PgGoalRepository implements GoalRepository {
  /** @param durable - makes the transaction commit durably (see `PgTransaction`). */
  constructor(private readonly db: Db, private readonly events: EventWriter, private readonly durable: () => Promise<void>) {}

  /** One statement sets each node's last goal and notifies `pgha_goal` at commit; then the events. */
  async assign(_group: { formationId: string; groupId: number }, nodes: readonly NodeRecord[], assignments: readonly Assignment[]): Promise<void> {
    const events = assignmentEvents(nodes, assignments);
    if (events.length === 0) return;
    const goals = new Map<number, string>();
    for (const e of events) goals.set(e.nodeId, e.newGoalState);
    await this.durable();
    await sql`
      with updated as (
        update pgha.nodes n set goal_state = g.goal_state, goal_changed_at = clock_timestamp()
        from unnest(${[...goals.keys()]}::int4[], ${[...goals.values()]}::text[]) as g(node_id, goal_state)
        where n.node_id = g.node_id
        returning n.node_id
      )
      select pg_notify('pgha_goal', (select string_agg(node_id::text, ',') from updated))`.execute(this.db);
    await this.events.append(events);
  }

  async notify(nodeIds: readonly number[]): Promise<void> {
    if (nodeIds.length > 0) await sql`select pg_notify('pgha_goal', ${nodeIds.join(',')})`.execute(this.db);
  }
}
