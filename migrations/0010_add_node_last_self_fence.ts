import type { Kysely } from 'kysely';

/**
 * Adds to `pgha.nodes` the time of the last self-fence of the node that the monitor recorded
 * (`last_self_fence_at`: when its keeper signalled Postgres to stop, by the keeper's clock), so
 * that a self-fence its keeper reports again (a retried report, two reports racing, a keeper
 * restarted before it heard the answer) writes its `keeper-self-fenced` event once. Null while
 * the node never reported one.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('pgha').alterTable('nodes').addColumn('last_self_fence_at', 'timestamptz').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('pgha').alterTable('nodes').dropColumn('last_self_fence_at').execute();
}
