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

  /**
   * One statement sets each node's last goal with a new revision from `pgha.goal_revision_seq`
   * (under the group's lock, so a later write of the node's goal takes a larger one) and
   * notifies `pgha_goal` at commit; then the events.
   */
  async assign(_group: { formationId: string; groupId: number }, nodes: readonly NodeRecord[], assignments: readonly Assignment[]): Promise<ReadonlyMap<number, string>> {
    const events = assignmentEvents(nodes, assignments);
    if (events.length === 0) return new Map();
    const goals = new Map<number, string>();
    for (const e of events) goals.set(e.nodeId, e.newGoalState);
    await this.durable();
    const { rows } = await sql<{ revisions: Record<string, string> }>`
      with updated as (
        update pgha.nodes n set goal_state = g.goal_state, goal_changed_at = clock_timestamp(), goal_revision = nextval('pgha.goal_revision_seq')
        from unnest(${[...goals.keys()]}::int4[], ${[...goals.values()]}::text[]) as g(node_id, goal_state)
        where n.node_id = g.node_id
        returning n.node_id, n.goal_revision
      )
      select pg_notify('pgha_goal', (select string_agg(node_id::text, ',') from updated)) as notified,
        (select coalesce(json_object_agg(node_id, goal_revision::text), '{}') from updated) as revisions`.execute(this.db);
    await this.events.append(events);
    return new Map(Object.entries(rows[0]?.revisions ?? {}).map(([nodeId, revision]) => [Number(nodeId), revision]));
  }

  async notify(nodeIds: readonly number[]): Promise<void> {
    if (nodeIds.length > 0) await sql`select pg_notify('pgha_goal', ${nodeIds.join(',')})`.execute(this.db);
  }
}
