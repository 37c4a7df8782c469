import { sql, type Kysely } from 'kysely';

/**
 * Indexes `pgha.nodes` by (formation, group): every decision reads a group's nodes, a
 * thousand times a second with a thousand keepers. Leaves room on each page (fillfactor 70)
 * so that a report's update of its row stays on the page (a HOT update, no index writes).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('pgha').createIndex('nodes_formation_group_idx').on('nodes').columns(['formation_id', 'group_id']).execute();
  await sql`alter table pgha.nodes set (fillfactor = 70)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table pgha.nodes reset (fillfactor)`.execute(db);
  await db.schema.withSchema('pgha').dropIndex('nodes_formation_group_idx').execute();
}
