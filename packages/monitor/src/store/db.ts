/**
 * The monitor's store: Kysely over its own Postgres, schema `pgha`. `CamelCasePlugin` is the
 * only place where snake_case columns become camelCase properties.
 */
import { CamelCasePlugin, Kysely, Migrator, PostgresDialect, type ColumnType, type Generated } from 'kysely';
import pg from 'pg';
import { migrationProvider } from '@pgha/migrations';
import { PghaError } from '@pgha/shared';

type Timestamp = ColumnType<Date, Date | string, Date | string>;

/** `pgha.formations`. */
export interface FormationsTable {
  formationId: string;
  kind: Generated<string>;
  dbname: Generated<string>;
  numberSyncStandbys: Generated<number>;
  settings: Generated<Record<string, number>>;
  replicationPassword: string;
  monitorProbePassword: string;
  createdAt: Generated<Date>;
}

/** `pgha.nodes`. */
export interface NodesTable {
  nodeId: Generated<number>;
  formationId: string;
  groupId: Generated<number>;
  name: string;
  host: string;
  port: number;
  candidatePriority: Generated<number>;
  replicationQuorum: Generated<boolean>;
  reportedState: Generated<string>;
  goalState: Generated<string>;
  reportedAt: Timestamp | null;
  pgIsRunning: Generated<boolean>;
  isInRecovery: boolean | null;
  reportedLsn: Generated<string>;
  reportedTimeline: Generated<number>;
  upstreamStreaming: Generated<boolean>;
  lastStreamingAt: Timestamp | null;
  transitionInProgress: string | null;
  health: Generated<string>;
  healthFailures: Generated<number>;
  healthCheckedAt: Timestamp | null;
  probeInRecovery: boolean | null;
  goalChangedAt: Generated<Date>;
  createdAt: Generated<Date>;
  reportedSyncStandbyNames: string | null;
  destroyRequested: Generated<boolean>;
}

/** `pgha.events`. */
export interface EventsTable {
  eventId: Generated<string>;
  eventTime: Generated<Date>;
  formationId: string;
  groupId: number;
  nodeId: number;
  nodeName: string;
  reportedState: string;
  oldGoalState: string;
  newGoalState: string;
  reportedLsn: string;
  rule: string;
  reason: string;
}

/** The schema as Kysely sees it. */
export interface Database {
  formations: FormationsTable;
  nodes: NodesTable;
  events: EventsTable;
}

/** Where the monitor's Postgres listens: a Unix socket directory and port. */
export interface StoreConnection {
  host: string;
  port: number;
  user?: string;
  database?: string;
  max?: number;
}

/** Opens the store (a pool of `max` connections, 10 by default). */
export function openStore(conn: StoreConnection): Kysely<Database> {
  const pool = new pg.Pool({
    host: conn.host,
    port: conn.port,
    user: conn.user ?? 'postgres',
    database: conn.database ?? 'postgres',
    max: conn.max ?? 10,
    application_name: 'pgha_monitor',
  });
  pool.on('error', () => undefined);
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }), plugins: [new CamelCasePlugin()] }).withSchema('pgha');
}

/**
 * Applies every pending migration from `migrations/`.
 *
 * @throws PghaError `PGHA_ERR_STORE_UNAVAILABLE` naming the failed migration.
 */
export async function migrateToLatest(db: Kysely<Database>): Promise<string[]> {
  const migrator = new Migrator({ db: db.withoutPlugins() as unknown as Kysely<unknown>, provider: migrationProvider, migrationTableSchema: 'public' });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error) {
    throw new PghaError('PGHA_ERR_STORE_UNAVAILABLE', `migration ${failed?.migrationName ?? ''} failed: ${(error as Error).message}`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
