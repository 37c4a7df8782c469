import { sql, type Kysely } from 'kysely';

/**
 * Adds `pgha.formations.client_networks`: the networks clients may connect from to every node
 * of the formation (`ADDRESS/PREFIX` each, in the order given), which the keepers write into
 * their managed pg_hba.conf block with TLS and SCRAM only. Existing formations get none.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .withSchema('pgha')
    .alterTable('formations')
    .addColumn('client_networks', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'::text[]`))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('pgha').alterTable('formations').dropColumn('client_networks').execute();
}
