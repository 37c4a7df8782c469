/**
 * The monitor schema's migrations, listed statically so that they work from the compiled
 * output without reading a directory. Files are named `NNNN_<verb>_<object>.ts` and never
 * edited once merged; add a new one instead.
 */
import type { Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001_create_monitor_schema.js';
import * as m0002 from './0002_add_node_sync_names_and_destroy.js';
import * as m0003 from './0003_add_node_group_index.js';
import * as m0004 from './0004_add_node_reported_problem.js';
import * as m0005 from './0005_create_node_credentials.js';
import * as m0006 from './0006_add_node_postgres_ssl.js';
import * as m0007 from './0007_add_node_http_address.js';
import * as m0008 from './0008_add_event_stream_order.js';
import * as m0009 from './0009_add_node_transition_progress.js';
import * as m0010 from './0010_add_node_last_self_fence.js';
import * as m0011 from './0011_rename_node_pg_is_running.js';
import * as m0012 from './0012_add_node_goal_revision.js';
import * as m0013 from './0013_add_formation_client_networks.js';
import * as m0014 from './0014_add_postgres_parameters.js';
import * as m0015 from './0015_add_node_restart_request.js';
import * as m0016 from './0016_add_node_shutdown_checkpoint_lsn.js';

/** Every migration by name, in order. */
export const MIGRATIONS: Record<string, Migration> = {
  '0001_create_monitor_schema': m0001,
  '0002_add_node_sync_names_and_destroy': m0002,
  '0003_add_node_group_index': m0003,
  '0004_add_node_reported_problem': m0004,
  '0005_create_node_credentials': m0005,
  '0006_add_node_postgres_ssl': m0006,
  '0007_add_node_http_address': m0007,
  '0008_add_event_stream_order': m0008,
  '0009_add_node_transition_progress': m0009,
  '0010_add_node_last_self_fence': m0010,
  '0011_rename_node_pg_is_running': m0011,
  '0012_add_node_goal_revision': m0012,
  '0013_add_formation_client_networks': m0013,
  '0014_add_postgres_parameters': m0014,
  '0015_add_node_restart_request': m0015,
  '0016_add_node_shutdown_checkpoint_lsn': m0016,
};

/** A Kysely `MigrationProvider` over {@link MIGRATIONS}. */
export const migrationProvider: MigrationProvider = {
  getMigrations: async () => MIGRATIONS,
};
