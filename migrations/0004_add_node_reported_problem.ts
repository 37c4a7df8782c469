import type { Kysely } from 'kysely';

/**
 * Adds to `pgha.nodes` the problem a keeper last reported (why its node cannot reach its goal,
 * e.g. a full disk), shown by `pgha show state`.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('pgha').alterTable('nodes').addColumn('reported_problem', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('pgha').alterTable('nodes').dropColumn('reported_problem').execute();
}
