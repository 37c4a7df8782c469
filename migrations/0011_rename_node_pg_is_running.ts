import type { Kysely } from 'kysely';

/**
 * Renames `pgha.nodes.pg_is_running` to `postgres_running`: one name for "the keeper found its
 * Postgres running", as the keeper's report (`postgresRunning`), its view and `/state`
 * (`postgres_running`) spell it (issue 14, "one name for each thing").
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('pgha').alterTable('nodes').renameColumn('pg_is_running', 'postgres_running').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('pgha').alterTable('nodes').renameColumn('postgres_running', 'pg_is_running').execute();
}
