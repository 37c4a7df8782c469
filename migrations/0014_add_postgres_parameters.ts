import { sql, type Kysely } from 'kysely';

/**
 * Adds the Postgres parameters of a formation (`pgha set postgresql NAME VALUE`):
 * `pgha.formations.postgres_parameters` and each node's own over them,
 * `pgha.nodes.postgres_parameters` (jsonb arrays of `{name, value}`, by name: objects keyed by
 * parameter name would have their keys camel-cased on read), and what its keeper last reported
 * of them, `pgha.nodes.reported_parameters` (`{pendingRestart, running}`; null: not reported).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('pgha').alterTable('formations').addColumn('postgres_parameters', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`)).execute();
  await db.schema
    .withSchema('pgha')
    .alterTable('nodes')
    .addColumn('postgres_parameters', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('reported_parameters', 'jsonb')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('pgha').alterTable('nodes').dropColumn('reported_parameters').dropColumn('postgres_parameters').execute();
  await db.schema.withSchema('pgha').alterTable('formations').dropColumn('postgres_parameters').execute();
}
