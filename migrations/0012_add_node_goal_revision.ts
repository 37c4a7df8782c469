import { sql, type Kysely } from 'kysely';

/**
 * Adds `pgha.nodes.goal_revision`: the revision of the node's goal, taken from the sequence
 * `pgha.goal_revision_seq` each time the goal is written (registration included, by the
 * column's default; every existing node gets one now), so that a goal written later always has
 * a larger revision. Keepers never act on a goal of a lower revision than one they applied
 * (`NodeGoal.goalRevision`; on the etcd store it is the commit's mod revision).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create sequence pgha.goal_revision_seq`.execute(db);
  await db.schema
    .withSchema('pgha')
    .alterTable('nodes')
    .addColumn('goal_revision', 'bigint', (c) => c.notNull().defaultTo(sql`nextval('pgha.goal_revision_seq')`))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('pgha').alterTable('nodes').dropColumn('goal_revision').execute();
  await sql`drop sequence pgha.goal_revision_seq`.execute(db);
}
