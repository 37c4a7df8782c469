import type { Kysely } from 'kysely';

/**
 * Adds to `pgha.nodes` the restarts of the node's Postgres asked for by the operator
 * (`pgha perform restart`): `restart_request` counts the requests, `restart_requested_at` is
 * when the last one was made (null: never), `restart_done` is the last request its keeper
 * reported carried out. A restart is under way while `restart_done < restart_request`.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .withSchema('pgha')
    .alterTable('nodes')
    .addColumn('restart_request', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('restart_requested_at', 'timestamptz')
    .addColumn('restart_done', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('pgha').alterTable('nodes').dropColumn('restart_request').dropColumn('restart_requested_at').dropColumn('restart_done').execute();
}
