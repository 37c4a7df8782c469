/**
 * Reading `pgha.events` as it grows, for the event stream and the failover counters, so that
 * no event is missed or read twice.
 *
 * An event's id comes from a sequence when its row is inserted, not when its transaction
 * commits: a reader that went by id alone could read id 11, committed, while id 10 is still in
 * a running transaction, and never read 10. So rows are read in **stream order**, (`writer_xid`,
 * `event_id`) (the writing transaction's id, migration 0007), and only the rows **settled** at
 * the read: written by a transaction older than every transaction still running
 * (`writer_xid < pg_snapshot_xmin(pg_current_snapshot())`). Every row not yet visible then has a
 * larger `writer_xid` than every settled one, so it can only come after the reader's position.
 * A row is held back while an older transaction runs (milliseconds: reports and decisions are
 * short): {@link EventBatch.heldBack} says so, and the reader looks again soon.
 *
 * Source: pg_auto_failover's `pgautofailover.event` table, whose last events `pg_autoctl show
 * events --watch` reads again every 500 ms; here each event is read once, in this order.
 */
import { sql } from 'kysely';
import type { Selectable } from 'kysely';
import type { EventsTable } from './db.js';
import type { Db } from './monitor-store.js';

/** A position in stream order: after the event `eventId` written by transaction `writerXid`. */
export interface EventCursor {
  /** `xid8` as decimal text. */
  writerXid: string;
  /** `bigint` as decimal text. */
  eventId: string;
}

/** Before every event. */
export const STREAM_START: EventCursor = { writerXid: '0', eventId: '0' };

/** An event row as read. */
export type EventRecord = Selectable<EventsTable>;

/** What one read returned. */
export interface EventBatch {
  /** Settled events after the cursor, in stream order. */
  events: EventRecord[];
  /** The cursor after `events` (the one given when there are none). */
  cursor: EventCursor;
  /** Rows after the cursor exist that are not settled yet: read again soon. */
  heldBack: boolean;
}

/** The cursor just after `row`. */
function cursorOf(row: { writerXid: string; eventId: string }): EventCursor {
  return { writerXid: String(row.writerXid), eventId: String(row.eventId) };
}

/**
 * The formation's settled events after `after`, in stream order, at most `limit`.
 */
export async function readEventsAfter(db: Db, formationId: string, after: EventCursor, limit: number): Promise<EventBatch> {
  const { rows } = await sql<EventRecord & { settled: boolean }>`
    select e.*, e.writer_xid < pg_snapshot_xmin(pg_current_snapshot()) as settled
    from pgha.events e
    where e.formation_id = ${formationId} and (e.writer_xid, e.event_id) > (${after.writerXid}::xid8, ${after.eventId}::int8)
    order by e.writer_xid, e.event_id
    limit ${limit}`.execute(db);
  const settled = rows.filter((r) => r.settled).map(({ settled: _s, ...e }) => e);
  const last = settled[settled.length - 1];
  return { events: settled, cursor: last ? cursorOf(last) : after, heldBack: settled.length < rows.length };
}

/**
 * The formation's last `count` settled events (0 for none), in stream order, and the cursor
 * after every settled event of the formation: where a stream that starts now continues.
 */
export async function readLastEvents(db: Db, formationId: string, count: number): Promise<EventBatch> {
  const { rows } = await sql<EventRecord>`
    select e.*
    from pgha.events e
    where e.formation_id = ${formationId} and e.writer_xid < pg_snapshot_xmin(pg_current_snapshot())
    order by e.writer_xid desc, e.event_id desc
    limit ${Math.max(1, count)}`.execute(db);
  const last = rows[0];
  return { events: rows.slice(0, count).reverse(), cursor: last ? cursorOf(last) : STREAM_START, heldBack: false };
}

/**
 * The cursor just after event `eventId` (a stream's `Last-Event-ID`); after the nearest event
 * before it when that one is gone (or never existed), or {@link STREAM_START}.
 */
export async function cursorAfterEvent(db: Db, eventId: bigint): Promise<EventCursor> {
  const { rows } = await sql<{ writerXid: string; eventId: string }>`
    select e.writer_xid, e.event_id from pgha.events e
    where e.event_id <= ${String(eventId)}::int8 order by e.event_id desc limit 1`.execute(db);
  return rows[0] ? cursorOf(rows[0]) : STREAM_START;
}

/** What {@link countOperationsAfter} counted. */
export interface OperationCounts {
  /** New failovers and switchovers per formation since the cursor. */
  counts: { formationId: string; kind: 'failover' | 'switchover'; n: number }[];
  cursor: EventCursor;
}

/**
 * Failovers and switchovers among the settled events (of every formation) after `after`, in
 * one statement, counted on the outgoing primary's event row (one per operation):
 *
 * - a **failover**: rule `failover-start` taking the primary to `demote_timeout` (the monitor
 *   found it failed), or rule `perform-failover` on the primary (`pgha perform failover`);
 * - a **switchover**: rules `perform-switchover`, `perform-promotion` and `enable-maintenance`
 *   taking the primary to `draining` or `prepare_maintenance`.
 */
export async function countOperationsAfter(db: Db, after: EventCursor): Promise<OperationCounts> {
  const { rows } = await sql<{ formationId: string | null; kind: string; n: number; writerXid: string | null; eventId: string | null }>`
    with fresh as (
      select formation_id, rule, new_goal_state, writer_xid, event_id from pgha.events
      where (writer_xid, event_id) > (${after.writerXid}::xid8, ${after.eventId}::int8)
        and writer_xid < pg_snapshot_xmin(pg_current_snapshot())
    ), kinds as (
      select formation_id, case
        when rule = 'failover-start' and new_goal_state = 'demote_timeout' then 'failover'
        when rule = 'perform-failover' and new_goal_state in ('demote_timeout', 'draining') then 'failover'
        when rule in ('perform-switchover', 'perform-promotion', 'enable-maintenance') and new_goal_state in ('draining', 'prepare_maintenance') then 'switchover'
      end as kind from fresh
    ), last as (
      select writer_xid, event_id from fresh order by writer_xid desc, event_id desc limit 1
    )
    select formation_id, kind, count(*)::int as n, null::text as writer_xid, null::text as event_id from kinds where kind is not null group by formation_id, kind
    union all
    select null, 'cursor', 0, writer_xid::text, event_id::text from last`.execute(db);
  const last = rows.find((r) => r.kind === 'cursor');
  return {
    counts: rows.filter((r) => r.kind !== 'cursor').map((r) => ({ formationId: r.formationId!, kind: r.kind as 'failover' | 'switchover', n: Number(r.n) })),
    cursor: last ? { writerXid: last.writerXid!, eventId: last.eventId! } : after,
  };
}
