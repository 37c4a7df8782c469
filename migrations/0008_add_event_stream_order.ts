import { sql, type Kysely } from 'kysely';

/**
 * Lets readers follow `pgha.events` as it grows without missing or repeating a row
 * (`GET /v1/formations/:formation/events/stream`, the `pgha_failovers_total` counters):
 *
 * - `writer_xid`: the id of the transaction that wrote the row (`pg_current_xact_id()`).
 *   Event ids come from a sequence when the row is inserted, not when it commits, so a reader
 *   that went by `event_id` alone could pass over a row of a transaction still running. A reader
 *   instead takes rows in (`writer_xid`, `event_id`) order, and only those whose `writer_xid` is
 *   below its snapshot's xmin (`pg_snapshot_xmin(pg_current_snapshot())`): every transaction
 *   there has ended, so no row can appear later before one it has passed. Rows written before
 *   this migration get 0 (they sort first, by event id).
 * - two indexes for those reads, per formation and over all of them;
 * - a statement trigger that sends `pg_notify('pgha_event', <formation>)` for each formation
 *   with new rows, delivered at commit, so that streams wake at once.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table pgha.events add column writer_xid xid8 not null default '0'`.execute(db);
  await sql`alter table pgha.events alter column writer_xid set default pg_current_xact_id()`.execute(db);
  await sql`create index events_formation_writer_idx on pgha.events (formation_id, writer_xid, event_id)`.execute(db);
  await sql`create index events_writer_idx on pgha.events (writer_xid, event_id)`.execute(db);
  await sql`create function pgha.notify_events() returns trigger language plpgsql as $$
    begin
      perform pg_notify('pgha_event', f.formation_id) from (select distinct formation_id from inserted) f;
      return null;
    end $$`.execute(db);
  await sql`create trigger events_notify after insert on pgha.events referencing new table as inserted for each statement execute function pgha.notify_events()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop trigger events_notify on pgha.events`.execute(db);
  await sql`drop function pgha.notify_events()`.execute(db);
  await sql`drop index pgha.events_writer_idx`.execute(db);
  await sql`drop index pgha.events_formation_writer_idx`.execute(db);
  await sql`alter table pgha.events drop column writer_xid`.execute(db);
}
