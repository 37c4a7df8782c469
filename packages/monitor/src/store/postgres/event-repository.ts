/**
 * The Postgres adapter's {@link EventWriter} (the one writer of `pgha.events`) and
 * {@link EventStream}.
 *
 * Stream order. An event's id comes from a sequence when its row is inserted, not when its
 * transaction commits: a reader that went by id alone could read id 11, committed, while id 10
 * is still in a running transaction, and never read 10. So rows are read in (`writer_xid`,
 * `event_id`) order (the writing transaction's id, migration 0008), and only the rows
 * **settled** at the read: written by a transaction older than every transaction still running
 * (`writer_xid < pg_snapshot_xmin(pg_current_snapshot())`). Every row not yet visible then has
 * a larger `writer_xid` than every settled one, so it can only come after the reader's
 * position. A row is held back while an older transaction runs (milliseconds: reports and
 * decisions are short): {@link EventBatch.heldBack} says so, and the reader looks again soon.
 * A cursor is `<writer_xid>:<event_id>`.
 *
 * Source: pg_auto_failover's `pgautofailover.event` table, whose last events `pg_autoctl show
 * events --watch` reads again every 500 ms; here each event is read once, in this order.
 */
import { sql } from 'kysely';
import { STREAM_START, type EventBatch, type EventCursor, type EventRecord, type NewEvent, type OperationCounts } from '../records.js';
import type { EventStream, EventWriter } from '../store-port.js';
import { OPERATION_EVENTS } from '../event-records.js';
import type { Db } from './db.js';

/** An event row as read, with the id of the transaction that wrote it. */
type EventRow = EventRecord & { writerXid: string };

/** The cursor just after the event (`writerXid`, `eventId`). */
function cursorOf(row: { writerXid: string; eventId: string }): EventCursor {
  return `${row.writerXid}:${row.eventId}` as EventCursor;
}

/** The (`writer_xid`, `event_id`) of a cursor; both 0 for {@link STREAM_START}. */
function positionOf(cursor: EventCursor): { writerXid: string; eventId: string } {
  if (cursor === STREAM_START) return { writerXid: '0', eventId: '0' };
  const m = /^([0-9]+):([0-9]+)$/.exec(cursor);
  if (!m) throw new Error(`not an event cursor of the Postgres store: "${cursor}"`);
  return { writerXid: m[1]!, eventId: m[2]! };
}

function withoutXid(row: EventRow): EventRecord {
  const { writerXid: _x, ...event } = row;
  return event;
}

/** See {@link EventWriter}. */
export class PgEventWriter implements EventWriter {
  /** @param durable - makes the transaction commit durably (see `PgTransaction`). */
  constructor(private readonly db: Db, private readonly durable: () => Promise<void>) {}

  /** One multi-row insert: rows get their ids in the order given. The `events_notify` trigger wakes event streams at commit. */
  async append(events: readonly NewEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.durable();
    await this.db.insertInto('events').values(events.map((e) => ({ ...e }))).execute();
  }
}

/** See {@link EventStream}. */
export class PgEventStream implements EventStream {
  constructor(private readonly db: Db) {}

  async latest(formationId: string, count: number): Promise<EventRecord[]> {
    const rows = await this.db.selectFrom('events').selectAll().where('formationId', '=', formationId).orderBy('eventId', 'desc').limit(count).execute();
    return rows.reverse().map(withoutXid);
  }

  async lastOfRule(formationId: string, groupId: number, rule: string): Promise<EventRecord | undefined> {
    const row = await this.db.selectFrom('events').selectAll().where('formationId', '=', formationId).where('groupId', '=', groupId).where('rule', '=', rule).orderBy('eventId', 'desc').limit(1).executeTakeFirst();
    return row && withoutXid(row);
  }

  async readAfter(formationId: string, after: EventCursor, limit: number): Promise<EventBatch> {
    const from = positionOf(after);
    const { rows } = await sql<EventRow & { settled: boolean }>`
      select e.*, e.writer_xid < pg_snapshot_xmin(pg_current_snapshot()) as settled
      from pgha.events e
      where e.formation_id = ${formationId} and (e.writer_xid, e.event_id) > (${from.writerXid}::xid8, ${from.eventId}::int8)
      order by e.writer_xid, e.event_id
      limit ${limit}`.execute(this.db);
    const settled = rows.filter((r) => r.settled);
    const last = settled[settled.length - 1];
    return { events: settled.map(({ settled: _s, ...e }) => withoutXid(e)), cursor: last ? cursorOf(last) : after, heldBack: settled.length < rows.length };
  }

  async readLast(formationId: string, count: number): Promise<EventBatch> {
    const { rows } = await sql<EventRow>`
      select e.*
      from pgha.events e
      where e.formation_id = ${formationId} and e.writer_xid < pg_snapshot_xmin(pg_current_snapshot())
      order by e.writer_xid desc, e.event_id desc
      limit ${Math.max(1, count)}`.execute(this.db);
    const last = rows[0];
    return { events: rows.slice(0, count).reverse().map(withoutXid), cursor: last ? cursorOf(last) : STREAM_START, heldBack: false };
  }

  async cursorAfterEvent(eventId: bigint): Promise<EventCursor> {
    const { rows } = await sql<{ writerXid: string; eventId: string }>`
      select e.writer_xid, e.event_id from pgha.events e
      where e.event_id <= ${String(eventId)}::int8 order by e.event_id desc limit 1`.execute(this.db);
    return rows[0] ? cursorOf(rows[0]) : STREAM_START;
  }

  /** One statement: the kinds of {@link OPERATION_EVENTS} as a `case`, counted in Postgres. */
  async countOperationsAfter(after: EventCursor): Promise<OperationCounts> {
    const from = positionOf(after);
    const kind = sql.join(
      OPERATION_EVENTS.map((o) => sql`when rule in (${sql.join(o.rules)}) and new_goal_state in (${sql.join(o.newGoalStates)}) then ${o.kind}`),
      sql` `,
    );
    const { rows } = await sql<{ formationId: string | null; kind: string; n: number; writerXid: string | null; eventId: string | null }>`
      with fresh as (
        select formation_id, rule, new_goal_state, writer_xid, event_id from pgha.events
        where (writer_xid, event_id) > (${from.writerXid}::xid8, ${from.eventId}::int8)
          and writer_xid < pg_snapshot_xmin(pg_current_snapshot())
      ), kinds as (
        select formation_id, case ${kind} end as kind from fresh
      ), last as (
        select writer_xid, event_id from fresh order by writer_xid desc, event_id desc limit 1
      )
      select formation_id, kind, count(*)::int as n, null::text as writer_xid, null::text as event_id from kinds where kind is not null group by formation_id, kind
      union all
      select null, 'cursor', 0, writer_xid::text, event_id::text from last`.execute(this.db);
    const last = rows.find((r) => r.kind === 'cursor');
    return {
      counts: rows.filter((r) => r.kind !== 'cursor').map((r) => ({ formationId: r.formationId!, kind: r.kind as 'failover' | 'switchover', n: Number(r.n) })),
      cursor: last ? cursorOf({ writerXid: last.writerXid!, eventId: last.eventId! }) : after,
    };
  }
}
