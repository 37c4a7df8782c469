import type { Kysely } from 'kysely';

/**
 * Adds to `pgha.nodes`: the `synchronous_standby_names` a primary reports running with (the
 * election counts the standbys it names), and whether a drop asked to destroy the data.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .withSchema('pgha')
    .alterTable('nodes')
    .addColumn('reported_sync_standby_names', 'text')
    .addColumn('destroy_requested', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('pgha').alterTable('nodes').dropColumn('reported_sync_standby_names').dropColumn('destroy_requested').execute();
}
