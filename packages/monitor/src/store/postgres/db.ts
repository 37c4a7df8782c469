/**
 * The Postgres adapter's connection: Kysely over the monitor's own Postgres, schema `pgha`.
 * `CamelCasePlugin` is the only place where snake_case columns become camelCase properties
 * (nested JSON objects' keys included, which the report statement relies on). The table types
 * are the store's records (`records.ts`), so a row read is a record as it is.
 *
 * Part of the fast path (see `report-statement.ts`): {@link StoreClient} saves the round trip of
 * `begin`, and {@link prepareStatement} has Postgres plan the hot statements once per connection.
 */
import { CamelCasePlugin, CompiledQuery, Kysely, Migrator, PostgresDialect, type ColumnType, type Generated, type MigrationResult, type Transaction } from 'kysely';
import type pg from 'pg';
import { migrationProvider } from '@pgha/migrations';
import { PghaError, type NodeHealth, type NodeState, type PostgresParameter, type ReportedParameters, type TransitionProgress } from '@pgha/shared';
import { loadPgDriver, pgClientConfig, type PgConnectionParams } from '@pgha/postgres';
import { ExplicitPgClient } from '@pgha/postgres/pg-pool-client';
import type { EventRecord, FormationRecord, NewEvent } from '../records.js';

type Timestamp = ColumnType<Date, Date | string, Date | string>;

/** `pgha.formations`. */
export interface FormationsTable {
  formationId: string;
  kind: Generated<string>;
  dbname: Generated<string>;
  numberSyncStandbys: Generated<number>;
  settings: Generated<FormationRecord['settings']>;
  clientNetworks: Generated<string[]>;
  replicationPassword: string;
  monitorProbePassword: string;
  createdAt: Generated<Date>;
  /** jsonb `[{name, value}]` (migration 0014); written as JSON text. */
  postgresParameters: ColumnType<PostgresParameter[], string | undefined, string>;
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
  reportedState: Generated<NodeState>;
  goalState: Generated<NodeState>;
  reportedAt: Timestamp | null;
  postgresRunning: Generated<boolean>;
  isInRecovery: boolean | null;
  reportedLsn: Generated<string>;
  reportedTimeline: Generated<number>;
  upstreamStreaming: Generated<boolean>;
  lastStreamingAt: Timestamp | null;
  transitionInProgress: string | null;
  /** The keeper's last `transitionProgress` (jsonb); null when none. */
  transitionProgress: TransitionProgress | null;
  health: Generated<NodeHealth>;
  healthFailures: Generated<number>;
  healthCheckedAt: Timestamp | null;
  probeInRecovery: boolean | null;
  goalChangedAt: Generated<Date>;
  createdAt: Generated<Date>;
  reportedSyncStandbyNames: string | null;
  /** `pg_lsn`, read as `X/Y` text: where its shutdown checkpoint starts, as last reported; null: none (migration 0016). */
  shutdownCheckpointLsn: string | null;
  destroyRequested: Generated<boolean>;
  reportedProblem: string | null;
  /** Whether the node's Postgres accepts TLS (false: created with `--no-ssl`); see the health prober. */
  postgresSsl: Generated<boolean>;
  /** Where the node's keeper serves HTTP (`HOST:PORT`), as registered; null before migration 0007 or from an older keeper. */
  httpAddress: string | null;
  /** The last self-fence of the node recorded as an event (its keeper's clock); null when none (migration 0010). */
  lastSelfFenceAt: Timestamp | null;
  /** The revision of the node's goal, from `pgha.goal_revision_seq` at each goal write (`bigint`, as text; migration 0012). */
  goalRevision: Generated<string>;
  /** jsonb `[{name, value}]`: the node's own Postgres parameters (migration 0014); written as JSON text. */
  postgresParameters: ColumnType<PostgresParameter[], string | undefined, string>;
  /** jsonb: what its keeper last reported of its parameters; null: not reported (migration 0014). */
  reportedParameters: ColumnType<ReportedParameters | null, string | null | undefined, string | null>;
  /** Restarts of its Postgres asked for by the operator, when the last was, and the last its keeper carried out (migration 0015). */
  restartRequest: Generated<number>;
  restartRequestedAt: Timestamp | null;
  restartDone: Generated<number>;
}

/** `pgha.node_credentials`: the SHA-256 (hex) of each node's keeper token. */
export interface NodeCredentialsTable {
  nodeId: number;
  tokenSha256: string;
  issuedAt: Generated<Date>;
}

/** `pgha.events`: an {@link EventRecord} and the id of the transaction that wrote it. */
export interface EventsTable extends NewEvent {
  eventId: Generated<string>;
  eventTime: Generated<Date>;
  /** The writing transaction's id (`xid8`, as text): the stream order, see `event-repository.ts`. */
  writerXid: Generated<string>;
}

/** The schema as Kysely sees it. */
export interface Database {
  formations: FormationsTable;
  nodes: NodesTable;
  events: EventsTable;
  nodeCredentials: NodeCredentialsTable;
}

/** A Kysely handle or a transaction. */
export type Db = Kysely<Database> | Transaction<Database>;

/** The store's clock in ms since the epoch (one clock for every monitor and every fact). */
export async function storeNowMs(db: Db): Promise<number> {
  const { rows } = await db.executeQuery<{ nowMs: number }>(CompiledQuery.raw('select (extract(epoch from clock_timestamp()) * 1000)::float8 as now_ms'));
  return Number(rows[0]!.nowMs);
}

/** Where the monitor's Postgres listens: a Unix socket directory and port. */
export interface StoreConnection {
  /** The Unix socket directory of the monitor's own Postgres. */
  host: string;
  port: number;
  /** Default `postgres`. */
  user?: string;
  /** Default `postgres`. */
  database?: string;
  max?: number;
}

/**
 * Every parameter of a session to the store (see `pg-connection.ts`: nothing from the
 * environment): its Unix socket, no TLS (libpq never uses TLS on a socket), no password
 * (peer access through the 0700 socket directory).
 *
 * @param applicationName - shown in `pg_stat_activity` (`pgha_monitor`, `pgha_monitor_listen`).
 */
export function storeConnectionParams(conn: StoreConnection, applicationName: string): PgConnectionParams {
  return {
    host: conn.host,
    port: conn.port,
    user: conn.user ?? 'postgres',
    database: conn.database ?? 'postgres',
    ssl: false,
    applicationName,
    connectTimeoutMs: 10_000,
  };
}

/**
 * A connection of the store's pool that saves a round trip per transaction: `begin` is held
 * back and sent with the transaction's first statement when that one has no parameters
 * (`begin; <statement>` in one simple query, answering the statement's last result), or just
 * before it otherwise. Postgres sees the same statements in the same order; only the round trip
 * that `begin` alone took is gone. With a thousand keepers reporting each second, round trips
 * are what the monitor and its Postgres spend most of their time on (`report-statement.ts`).
 * Only the Postgres adapter's pool uses it.
 */
class StoreClient extends ExplicitPgClient {
  private beginHeld = false;
  /** Named statements stopped working on this connection (the schema changed under them). */
  private unprepared = false;

  constructor(config?: string | pg.ClientConfig) {
    super(config);
    // The pool listens for errors only while a connection is idle. One checked out (a report
    // transaction) gets Postgres's FATAL at once when the store's postmaster dies, between
    // statements: without a listener that would crash the monitor. The statement in flight
    // fails anyway, and the pool drops the broken connection when it is released.
    this.on('error', () => undefined);
  }

  // pg.Client.query has many overloads; only Kysely's form (text, values) is rewritten.
  override query(...args: unknown[]): any {
    const [text, values, callback] = args;
    if (typeof text !== 'string' || callback !== undefined || (values !== undefined && !Array.isArray(values))) {
      return (super.query as (...a: unknown[]) => unknown)(...args);
    }
    const params = (values as unknown[] | undefined) ?? [];
    if (text === 'begin' && params.length === 0 && !this.beginHeld) {
      this.beginHeld = true;
      return Promise.resolve({ command: 'BEGIN', rowCount: null, rows: [], fields: [] });
    }
    // A simple query of several statements (a heartbeat's, `report-statement.ts`) answers each
    // statement's result: Kysely reads the last.
    if (!this.beginHeld) return this.run(text, params).then(lastResult);
    this.beginHeld = false;
    if (params.length === 0) {
      return super.query(`begin;\n${text}`).then(lastResult);
    }
    return super.query('begin').then(() => this.run(text, params));
  }

  /** Runs a statement, as a named prepared statement when it is one of {@link PREPARED}. */
  private run(text: string, params: unknown[]): Promise<unknown> {
    const name = this.unprepared ? undefined : PREPARED.get(text);
    if (!name) return super.query(text, params);
    return super.query({ name, text, values: params }).catch((err: { code?: string; message?: string }) => {
      // A migration changed a table under a prepared `select *` ("cached plan must not change
      // result type"): nothing ran; run it again unprepared, and stop preparing here.
      if (err.code !== '0A000' || !/cached plan/.test(err.message ?? '')) throw err;
      this.unprepared = true;
      return super.query(text, params);
    });
  }
}

/** The last statement's result of a simple query of several (pg answers an array of them). */
function lastResult(results: unknown): unknown {
  return Array.isArray(results) ? results[results.length - 1] : results;
}

/** SQL texts run as named prepared statements, and their names (see {@link prepareStatement}). */
const PREPARED = new Map<string, string>();

/**
 * Has every connection of the store run `text` as a named prepared statement: Postgres parses
 * and plans it once per connection instead of at every execution. For the statements of the
 * hot paths (see `QueryTemplate`), where planning cost Postgres more than running them.
 */
export function prepareStatement(text: string): void {
  if (!PREPARED.has(text)) PREPARED.set(text, `pgha_${PREPARED.size + 1}`);
}

/** Opens the store (a pool of `max` connections, 10 by default). */
export function openStore(conn: StoreConnection): Kysely<Database> {
  const pool = new (loadPgDriver().Pool)({
    ...pgClientConfig(storeConnectionParams(conn, 'pgha_monitor')),
    max: conn.max ?? 10,
    Client: StoreClient,
  });
  pool.on('error', () => undefined);
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }), plugins: [new CamelCasePlugin()] }).withSchema('pgha');
}

/**
 * Applies every pending migration from `migrations/`.
 *
 * @returns the names of the migrations applied, in order (none when the store is up to date).
 * @throws PghaError `PGHA_ERR_STORE_UNAVAILABLE` naming the migration that failed, or those
 *   left pending ({@link migrationFailureMessage}).
 */
export async function migrateToLatest(db: Kysely<Database>): Promise<string[]> {
  const migrator = new Migrator({ db: db.withoutPlugins() as unknown as Kysely<unknown>, provider: migrationProvider, migrationTableSchema: 'public' });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const known = Object.keys(await migrationProvider.getMigrations()).sort();
    throw new PghaError('PGHA_ERR_STORE_UNAVAILABLE', migrationFailureMessage(results, known, error), {
      cause: error,
      hint: "see the log of the monitor's Postgres in <pgdata>.pgha/log, then run the monitor again (the migrations applied stay applied)",
    });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/**
 * The message of a failed {@link migrateToLatest}, which always names migrations: the one that
 * failed (`migration 0004_x failed: …`); else the ones left unapplied; else, when none ran
 * because the store could not be reached or its migration table read (Kysely then returns no
 * results), the migrations the monitor has, first to last. Pure.
 *
 * @param results - Kysely's `MigrationResultSet.results`.
 * @param known - every migration name, in order.
 * @param error - Kysely's `MigrationResultSet.error`.
 *
 * ### Examples
 * ```ts
 * migrationFailureMessage(undefined, ['0001_a', '0002_b'], new Error('connect ENOENT /run/.s.PGSQL.5430'))
 * // 'no migration ran: could not reach the store, or read its migration table, to apply migrations 0001_a to 0002_b: connect ENOENT /run/.s.PGSQL.5430'
 * ```
 */
export function migrationFailureMessage(results: readonly MigrationResult[] | undefined, known: readonly string[], error: unknown): string {
  const reason = error instanceof Error ? error.message : String(error);
  const failed = results?.find((r) => r.status === 'Error');
  if (failed) return `migration ${failed.migrationName} failed: ${reason}`;
  const pending = (results ?? []).filter((r) => r.status === 'NotExecuted').map((r) => r.migrationName);
  if (pending.length > 0) return `migration${pending.length > 1 ? 's' : ''} ${pending.join(', ')} not applied: ${reason}`;
  const range = known.length <= 1 ? `migration ${known[0] ?? '(none known)'}` : `migrations ${known[0]} to ${known[known.length - 1]}`;
  return `no migration ran: could not reach the store, or read its migration table, to apply ${range}: ${reason}`;
}
