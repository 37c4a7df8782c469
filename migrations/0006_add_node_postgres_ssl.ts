import type { Kysely } from 'kysely';

/**
 * Adds to `pgha.nodes` whether the node's Postgres accepts TLS (`postgres_ssl`), as its keeper
 * registered it (false for a node created with `--no-ssl`), so that the monitor's health probe
 * knows whether to connect with TLS without trying both. Nodes registered before this
 * migration were created with TLS unless `--no-ssl`, which the monitor cannot tell: they count
 * as TLS (the default of keeper create) until they register again.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('pgha').alterTable('nodes').addColumn('postgres_ssl', 'boolean', (c) => c.notNull().defaultTo(true)).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('pgha').alterTable('nodes').dropColumn('postgres_ssl').execute();
}
