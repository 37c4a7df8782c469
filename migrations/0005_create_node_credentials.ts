import { sql, type Kysely } from 'kysely';

/**
 * Adds `pgha.node_credentials`: the SHA-256 of each node's keeper token (issued at
 * registration, replaced by the next one), so that a keeper reports only for its own node.
 * The token itself is never stored.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .withSchema('pgha')
    .createTable('node_credentials')
    .addColumn('node_id', 'integer', (c) => c.primaryKey().references('pgha.nodes.node_id').onDelete('cascade'))
    .addColumn('token_sha256', 'text', (c) => c.notNull())
    .addColumn('issued_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('pgha').dropTable('node_credentials').execute();
}
