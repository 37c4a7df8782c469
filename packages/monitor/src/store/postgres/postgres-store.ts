/**
 * The Postgres adapter of the store port (`store-port.ts`): the monitor's own Postgres, schema
 * `pgha` (`migrations/`), through Kysely. A {@link PgSession} gives the repositories on a pool
 * handle (each call its own statement) or on a transaction ({@link PgTransaction}).
 *
 * Locks: a group's lock is a transaction-level advisory lock on (`hashtext('pgha:' ||
 * formation)`, group), a formation's the row `FOR NO KEY UPDATE`. Always the formation's
 * first, then groups in (formation, group) order, so that no two transactions deadlock.
 * Source: pg_auto_failover's `LockFormation` / `LockNodeGroup` (`pgautofailover` advisory locks).
 */
import { CompiledQuery, sql, type Kysely, type Transaction } from 'kysely';
import type { NodeReport } from '@pgha/shared';
import type { FormationRecord, GroupRead, NodeGroupRead, ReportsRead, StoreSnapshot } from '../records.js';
import type { MonitorStore, StoreSession, StoreTransaction } from '../store-port.js';
import { migrateToLatest, openStore, storeNowMs, type Database, type Db, type StoreConnection } from './db.js';
import { PgCredentialRepository } from './credential-repository.js';
import { PgEventStream, PgEventWriter } from './event-repository.js';
import { noSuchFormation } from '../not-found.js';
import { FORMATION_COLUMNS, PgFormationRepository } from './formation-repository.js';
import { PgGoalRepository } from './goal-repository.js';
import { LIST_GROUP_NODES, PgNodeRepository } from './node-repository.js';
import { PgProbeRepository } from './probe-repository.js';
import { QueryTemplate } from './query-template.js';
import { recordReports } from './report-statement.js';
import { PgSettingsRepository } from './settings-repository.js';

/** Repositories on one handle: the pool (each call on its own) or a transaction. */
class PgSession implements StoreSession {
  readonly formations: PgFormationRepository;
  readonly nodes: PgNodeRepository;
  readonly events: PgEventWriter;
  readonly stream: PgEventStream;
  readonly probes: PgProbeRepository;
  readonly credentials: PgCredentialRepository;

  constructor(protected readonly db: Db) {
    this.formations = new PgFormationRepository(db);
    this.nodes = new PgNodeRepository(db);
    this.events = new PgEventWriter(db, () => this.durable());
    this.stream = new PgEventStream(db);
    this.probes = new PgProbeRepository(db);
    this.credentials = new PgCredentialRepository(db);
  }

  nowMs(): Promise<number> {
    return storeNowMs(this.db);
  }

  /** Outside a transaction every statement commits durably. */
  protected durable(): Promise<void> {
    return Promise.resolve();
  }
}

/** The formation and the store's clock in one round trip (a decision's read after the group's nodes). */
const GET_FORMATION_AND_NOW = new QueryTemplate<FormationRecord & { storeNowMs: number }>((db, p) =>
  db
    .selectFrom('formations')
    .select(FORMATION_COLUMNS)
    .select(sql<number>`(extract(epoch from clock_timestamp()) * 1000)::float8`.as('storeNowMs'))
    .where('formationId', '=', p('formationId')),
);

/** One transaction of the store. */
class PgTransaction extends PgSession implements StoreTransaction {
  readonly goals: PgGoalRepository;
  readonly settings: PgSettingsRepository;
  /** Whether `synchronous_commit` is off in this transaction ({@link recordReports} turned it off). */
  private asyncCommit = false;

  constructor(private readonly trx: Transaction<Database>) {
    super(trx);
    this.goals = new PgGoalRepository(trx, this.events, () => this.durable());
    this.settings = new PgSettingsRepository(trx);
  }

  async lockGroup(formationId: string, groupId: number): Promise<void> {
    await LOCK_GROUP.execute(this.trx, { key: `pgha:${formationId}`, groupId });
  }

  lockFormation(formationId: string): Promise<FormationRecord> {
    return this.formations.lock(formationId);
  }

  async readGroup(formationId: string, groupId: number): Promise<GroupRead & { nowMs: number }> {
    const nodes = await LIST_GROUP_NODES.execute(this.trx, { formationId, groupId });
    const row = await GET_FORMATION_AND_NOW.executeTakeFirst(this.trx, { formationId });
    if (!row) throw noSuchFormation(formationId);
    const { storeNowMs: nowMs, ...formation } = row;
    return { formationId, groupId, formation, nodes, nowMs: Number(nowMs) };
  }

  async recordReports(reports: readonly { nodeId: number; report: NodeReport }[]): Promise<ReportsRead> {
    const read = await recordReports(this.trx, reports);
    this.asyncCommit = true;
    return read;
  }

  /**
   * Makes the transaction commit durably (`synchronous_commit = on`, the store's default) after
   * {@link recordReports} turned it off: every goal and event is on disk before it is served.
   */
  protected override async durable(): Promise<void> {
    if (!this.asyncCommit) return;
    this.asyncCommit = false;
    await this.trx.executeQuery(SYNCHRONOUS_COMMIT_ON);
  }
}

const LOCK_GROUP = new QueryTemplate<unknown>((_db, p) => sql`select pg_advisory_xact_lock(hashtext(${p('key')}), ${p('groupId')})`);
const SYNCHRONOUS_COMMIT_ON = CompiledQuery.raw('set local synchronous_commit = on');

/** Postgres connection failures and shutdown errors: the store is down. */
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', '57P01', '57P02', '57P03', '08006', '08001', '08003']);

/** The store on the monitor's Postgres (see the module). */
export class PostgresStore extends PgSession implements MonitorStore {
  /** @param kysely - a handle from `openStore` (its plugins: schema `pgha`, `CamelCasePlugin`). */
  constructor(private readonly kysely: Kysely<Database>) {
    super(kysely);
  }

  transaction<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T> {
    return this.kysely.transaction().execute((trx) => work(new PgTransaction(trx)));
  }

  async snapshot(only: (formationId: string) => boolean = () => true): Promise<StoreSnapshot> {
    const formations = (await this.formations.list()).filter((f) => only(f.formationId));
    const nodes = (await this.kysely.selectFrom('nodes').selectAll().where('goalState', '!=', 'dropped').orderBy('formationId').orderBy('groupId').orderBy('nodeId').execute()).filter((n) => only(n.formationId));
    return { formations, nodes, nowMs: await this.nowMs() };
  }

  async readNodeGroup(nodeId: number): Promise<NodeGroupRead> {
    const node = await this.nodes.get(nodeId);
    const [formation, nodes] = await Promise.all([this.formations.get(node.formationId), this.nodes.list(node.formationId, { groupId: node.groupId })]);
    return { node, formation, nodes };
  }

  isUnavailable(err: unknown): boolean {
    const code = (err as { code?: string }).code ?? '';
    return UNAVAILABLE_CODES.has(code) || /Connection terminated/.test(String((err as Error).message));
  }

  /** Applies every pending migration (see `migrateToLatest`); the names applied, in order. */
  migrate(): Promise<string[]> {
    return migrateToLatest(this.kysely);
  }

  async close(): Promise<void> {
    await this.kysely.destroy();
  }
}

/** Opens the Postgres store (a pool of `conn.max` connections, 10 by default). */
export function openPostgresStore(conn: StoreConnection): PostgresStore {
  return new PostgresStore(openStore(conn));
}
