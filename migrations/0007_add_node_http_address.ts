import type { Kysely } from 'kysely';

/**
 * Adds to `pgha.nodes` where the node's keeper serves its HTTP health routes (`http_address`,
 * `HOST:PORT`), as its keeper registered it, for `pgha show haproxy`. Null for nodes
 * registered before this migration (their keepers had no HTTP server) until they register
 * again.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('pgha').alterTable('nodes').addColumn('http_address', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('pgha').alterTable('nodes').dropColumn('http_address').execute();
}
