import type { Kysely } from 'kysely';

/**
 * Adds to `pgha.nodes` how far the node's long transition has come, as its keeper last
 * reported it (`transition_progress`, JSON `{phase, doneBytes, totalBytes}`, e.g. a base
 * backup), for `pgha show state` and `pgha watch`. Null when nothing long is under way.
 * (Numbered 0008: 0007 is taken by the keeper HTTP address of issue 7, merged separately.)
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('pgha').alterTable('nodes').addColumn('transition_progress', 'jsonb').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('pgha').alterTable('nodes').dropColumn('transition_progress').execute();
}
