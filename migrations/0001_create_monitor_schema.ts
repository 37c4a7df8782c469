import { sql, type Kysely } from 'kysely';

/**
 * The monitor's schema: formations, nodes and the append-only events table.
 * Columns are snake_case; the monitor's store maps them to camelCase.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createSchema('pgha').ifNotExists().execute();
  const s = db.schema.withSchema('pgha');

  await s
    .createTable('formations')
    .addColumn('formation_id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull().defaultTo('pgsql'))
    .addColumn('dbname', 'text', (c) => c.notNull().defaultTo('postgres'))
    .addColumn('number_sync_standbys', 'integer', (c) => c.notNull().defaultTo(0).check(sql`number_sync_standbys >= 0`))
    .addColumn('settings', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('replication_password', 'text', (c) => c.notNull())
    .addColumn('monitor_probe_password', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await s
    .createTable('nodes')
    .addColumn('node_id', 'serial', (c) => c.primaryKey())
    .addColumn('formation_id', 'text', (c) => c.notNull().references('pgha.formations.formation_id').onDelete('cascade'))
    .addColumn('group_id', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('host', 'text', (c) => c.notNull())
    .addColumn('port', 'integer', (c) => c.notNull())
    .addColumn('candidate_priority', 'integer', (c) => c.notNull().defaultTo(50).check(sql`candidate_priority between 0 and 100`))
    .addColumn('replication_quorum', 'boolean', (c) => c.notNull().defaultTo(true))
    .addColumn('reported_state', 'text', (c) => c.notNull().defaultTo('init'))
    .addColumn('goal_state', 'text', (c) => c.notNull().defaultTo('init'))
    .addColumn('reported_at', 'timestamptz')
    .addColumn('pg_is_running', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('is_in_recovery', 'boolean')
    .addColumn('reported_lsn', sql`pg_lsn`, (c) => c.notNull().defaultTo(sql`'0/0'::pg_lsn`))
    .addColumn('reported_timeline', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('upstream_streaming', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('last_streaming_at', 'timestamptz')
    .addColumn('transition_in_progress', 'text')
    .addColumn('health', 'text', (c) => c.notNull().defaultTo('unknown'))
    .addColumn('health_failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('health_checked_at', 'timestamptz')
    .addColumn('probe_in_recovery', 'boolean')
    .addColumn('goal_changed_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('nodes_formation_name_key', ['formation_id', 'name'])
    .addUniqueConstraint('nodes_host_port_key', ['host', 'port'])
    .execute();

  await s
    .createTable('events')
    .addColumn('event_id', 'bigserial', (c) => c.primaryKey())
    .addColumn('event_time', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('formation_id', 'text', (c) => c.notNull())
    .addColumn('group_id', 'integer', (c) => c.notNull())
    .addColumn('node_id', 'integer', (c) => c.notNull())
    .addColumn('node_name', 'text', (c) => c.notNull())
    .addColumn('reported_state', 'text', (c) => c.notNull())
    .addColumn('old_goal_state', 'text', (c) => c.notNull())
    .addColumn('new_goal_state', 'text', (c) => c.notNull())
    .addColumn('reported_lsn', sql`pg_lsn`, (c) => c.notNull())
    .addColumn('rule', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .execute();
  await s.createIndex('events_formation_time_idx').on('events').columns(['formation_id', 'event_id']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropSchema('pgha').ifExists().cascade().execute();
}
