import { sql, type Kysely } from 'kysely';

/**
 * Adds to `pgha.nodes` where the node's shutdown checkpoint starts, as its keeper last reported
 * it (`NodeReport.shutdownCheckpointLsn`, read from its control file once that says `shut
 * down`): null while Postgres runs, after a crash, on a standby, and from keepers older than it.
 * Read by the switchover rules (`NodeFacts.shutdownCheckpointLsn`).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('pgha').alterTable('nodes').addColumn('shutdown_checkpoint_lsn', sql`pg_lsn`).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('pgha').alterTable('nodes').dropColumn('shutdown_checkpoint_lsn').execute();
}
